"""The Runs tab's Sweeps view: pick a sweep (runs tagged `sweep:NAME`); its table in the seed's layout, one
row per setting with mean ± std over seeds, and a paired comparison of one varied setting (the loss, by
default) against a baseline value for every other setting, paired by seed. The tables are
`workbench.views.sweeps`'; this module only lays them out and refreshes them."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr
import pandas as pd

from workbench.errors import UserError
from workbench.inspect.reviewed import with_reviewed
from workbench.ui.layout import column_widths
from workbench.ui.refresh import Refresh
from workbench.views import sweeps as views

NONE_YET = (
    "No sweeps yet: queue one from the Train tab's **Sweep** box, `python -m workbench sweep`, or a "
    "sweep preset (`make train-all` trains the classic one)."
)
PAIR_COLUMNS = (
    "Setting",
    "Compared",
    "Seeds",
    "Baseline %",
    "Other %",
    "Difference (pp)",
    "Spread (std, pp)",
    "Reading",
)
TABLE_COLUMNS = (
    "Network",
    "GPUs",
    "Parameters",
    "Batch",
    "Epochs",
    "Loss",
    "Seeds",
    "Training time",
    "Val acc %",
    "Test acc %",
)  # the seed's table before any sweep (a sweep adds what it varies)
PAIR_WIDTHS = {"Seeds": 6, "Baseline %": 12, "Other %": 12, "Difference (pp)": 10, "Spread (std, pp)": 9}


@dataclass(eq=False)
class SweepView:
    pick: gr.Dropdown
    compare: gr.Dropdown
    baseline: gr.Dropdown
    metric: gr.Dropdown
    summary: gr.Markdown
    table: gr.Dataframe
    pairs: gr.Dataframe


def sweep_layout() -> SweepView:
    with gr.Accordion("Sweeps", open=True, elem_id="sweeps-view"):
        with gr.Row():
            pick = gr.Dropdown(
                [], value=None, label="Sweep", info="runs tagged sweep:NAME", scale=2, elem_id="sweeps-pick"
            )
            compare = gr.Dropdown(
                [], value=None, label="Compare", info="a setting the sweep varies", elem_id="sweeps-compare"
            )
            baseline = gr.Dropdown(
                [], value=None, label="against", info="the baseline value", elem_id="sweeps-baseline"
            )
            metric = gr.Dropdown(
                ["Test accuracy", "Final validation accuracy"],
                value="Test accuracy",
                label="Accuracy compared",
                info="in the paired table",
                elem_id="sweeps-metric",
            )
        summary = gr.Markdown(NONE_YET, elem_id="sweeps-summary")
        table = gr.Dataframe(
            value=[],
            headers=list(TABLE_COLUMNS),
            interactive=False,
            wrap=True,
            label="One row per setting: mean ± std over seeds",
            elem_id="sweeps-table",
        )
        pairs = gr.Dataframe(
            value=[],
            headers=list(PAIR_COLUMNS),
            interactive=False,
            wrap=True,
            column_widths=column_widths(PAIR_COLUMNS, PAIR_WIDTHS),
            label="Paired by seed: the other value minus the baseline, in percentage points",
            elem_id="sweeps-pairs",
        )
    return SweepView(pick, compare, baseline, metric, summary, table, pairs)


def show(store, pick=None, compare=None, baseline=None, metric="Test accuracy") -> dict:
    """Everything the view shows, by component name: the sweep picked (the newest when none is), the
    comparison (the loss when the sweep varies it) and both tables."""
    runs = with_reviewed(store, store.seen_runs(include_archived=True))
    found = views.sweep_names(runs)
    empty = pd.DataFrame(columns=list(PAIR_COLUMNS))
    if not found:
        return {
            "pick": gr.update(choices=[], value=None),
            "compare": gr.update(choices=[], value=None),
            "baseline": gr.update(choices=[], value=None),
            "summary": NONE_YET,
            "table": pd.DataFrame(columns=list(TABLE_COLUMNS)),
            "pairs": empty,
        }
    names = [info["name"] for info in found]
    name = views.parse_sweep_choice(pick) if pick else names[0]
    name = name if name in names else names[0]
    info = found[names.index(name)]
    members = views.sweep_runs(runs, name)
    columns = views.table_columns(members)
    table = pd.DataFrame(views.display(views.sweep_table(members), columns), columns=columns)
    options = views.factors(members)
    compare = compare if compare in options else ("loss" if "loss" in options else next(iter(options), None))
    values = views.factor_values(members, compare) if compare else []
    baseline = baseline if baseline in values else next(iter(values), None)
    pairs = views.paired(members, compare, baseline, metric) if compare else []
    active = f", {info['active']} queued or running" if info["active"] else ""
    text = (
        f"**{name}**: {info['runs']} runs, {info['completed']} completed{active}. Each row pools a setting's "
        "completed seeds (val: the final epoch's accuracy)."
    )
    if compare and not pairs:
        text += f" No setting has both {compare} values completed for a common seed yet."
    elif pairs:
        text += (
            f" Below, each other {compare} against **{baseline}**, seed by seed: a difference beyond two "
            "standard errors of the seeds' differences reads as helps or hurts."
        )
    return {
        "pick": gr.update(choices=[views.sweep_choice(i) for i in found], value=views.sweep_choice(info)),
        "compare": gr.update(choices=options, value=compare),
        "baseline": gr.update(choices=values, value=baseline),
        "summary": text,
        "table": table,
        "pairs": pd.DataFrame(views.display(pairs, list(PAIR_COLUMNS)), columns=list(PAIR_COLUMNS)) if pairs else empty,
    }


def wire_sweep_view(store, view: SweepView, refresh_button) -> Refresh:
    """The view's refresh, run on its own controls and the tab's Refresh button; the page also runs it when
    the tab is opened."""
    outputs = [view.pick, view.compare, view.baseline, view.summary, view.table, view.pairs]

    def refresh(pick, compare, baseline, metric):
        try:
            shown = show(store, pick, compare, baseline, metric)
        except UserError as exc:
            gr.Warning(str(exc))
            return {view.summary: f"⚠️ {exc}"}
        return {getattr(view, key): value for key, value in shown.items()}

    sweeps = Refresh(refresh, [view.pick, view.compare, view.baseline, view.metric], outputs)
    sweeps.on(
        [view.pick.input, view.compare.input, view.baseline.input, view.metric.input, refresh_button.click],
        api_name="runs_sweeps",
        show_progress="hidden",
    )
    return sweeps
