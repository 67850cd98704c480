"""The Runs tab's components and how they are laid out: the leaderboard (its filters, its columns' widths),
the comparisons, the Sweeps and Studies views and the "Manage a run" box. `layout(shown)` builds them inside the
caller's `gr.Tab` and returns them as a `RunsView`; `workbench.ui.tabs.runs` wires them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from workbench.ui import plots
from workbench.ui.layout import column_widths
from workbench.ui.tabs import runs_export
from workbench.ui.tabs.runs_studies import StudyView, studies_layout
from workbench.ui.tabs.runs_sweeps import SweepView, sweep_layout
from workbench.views import runs as rd

LIVE_SECONDS = 10  # how often the leaderboard is redrawn while a run is running
# Percent of the leaderboard's width: at 1024 px every column fits its header and usual values (the
# longest model and augmentation names wrap), Name most of what is left; Notes takes the rest.
LEADERBOARD_WIDTHS = {
    "Kind": 7,
    "ID": 3.5,
    "Name": 9,
    "Model": 7.5,
    "Loss": 11,
    "Augmentations": 7,
    "Status": 8,
    "Best val acc %": 4.8,
    "Final val acc %": 4.8,
    "Test acc %": 4.8,
    "Reviewed test %": 7.5,  # "Reviewed" whole at 1024 px (Model, Augment and Notes gave it their share)
    "Params": 6.5,
    "Train min": 5,
    "Tags": 6.4,
}
# With jobs on a Ray cluster, the node column's share comes from the name, loss and augmentation columns.
NODE_WIDTHS = {**LEADERBOARD_WIDTHS, "Name": 8, "Loss": 9.5, "Augmentations": 6.5, "Node": 6.5}
# On a page with logins, the By column's share comes from the name and augmentation columns and from Notes (the
# headers of the number columns must stay whole: at 1024 px "Params" and "Train min" were cut with less).
BY_SHARES = {"Name": -1.5, "Augmentations": -1, "By": 4}


def leaderboard_widths(nodes: bool, owners: bool) -> dict:
    widths = NODE_WIDTHS if nodes else LEADERBOARD_WIDTHS
    if not owners:
        return widths
    return {**widths, **{c: widths.get(c, 0) + share for c, share in BY_SHARES.items()}}


@dataclass(eq=False)
class RunsView:
    """The tab's components."""

    summary: gr.Markdown
    status_filter: gr.Dropdown
    model_filter: gr.Dropdown
    loss_filter: gr.Dropdown
    tag_filter: gr.Dropdown
    by_filter: gr.Dropdown  # who made the run (or ensemble)
    show_archived: gr.Checkbox
    show_ensembles: gr.Checkbox
    sort_by: gr.Dropdown
    refresh: gr.Button
    leaderboard: gr.Dataframe
    export: gr.Button
    export_file: gr.File
    selection: gr.Dropdown  # runs to compare
    metric: gr.Dropdown
    x_axis: gr.Radio
    smoothing: gr.Slider
    curves: gr.Plot
    per_class: gr.Plot
    accuracy_metric: gr.Dropdown
    group_by: gr.Radio
    scatter: gr.Plot
    groups: gr.Plot
    pick: gr.Dropdown  # the run to manage
    clone: gr.Button
    details: gr.Markdown
    notes: gr.Textbox
    tags: gr.Textbox
    save: gr.Button
    archive: gr.Button
    sure: gr.Checkbox
    delete: gr.Button
    action_status: gr.Markdown
    model_export: runs_export.ModelExport  # the picked run's model, downloaded in a chosen format
    timer: gr.Timer  # ticks while the tab is shown; redraws the leaderboard only while a run is running
    sweeps: SweepView  # a sweep's table and paired comparison (workbench.ui.tabs.runs_sweeps)
    studies: StudyView  # Optuna studies: trials, best, figures (workbench.ui.tabs.runs_studies)

    @property
    def filters(self) -> list:
        """The leaderboard's filters, in the order of `rd.LeaderboardFilters`' fields."""
        return [
            self.status_filter,
            self.model_filter,
            self.loss_filter,
            self.tag_filter,
            self.show_archived,
            self.show_ensembles,
            self.sort_by,
            self.by_filter,
        ]


def layout(shown=rd.COLUMNS) -> RunsView:
    """The tab's components, the leaderboard with the `shown` columns (`rd.columns`)."""
    c: dict[str, Any] = {}
    c["summary"] = gr.Markdown("Loading runs... (press Refresh if this stays)")
    with gr.Row():
        c["status_filter"] = gr.Dropdown([], value=[], multiselect=True, label="Status")
        c["model_filter"] = gr.Dropdown([], value=[], multiselect=True, label="Model")
        c["loss_filter"] = gr.Dropdown([], value=[], multiselect=True, label="Loss")
        c["tag_filter"] = gr.Dropdown([], value=[], multiselect=True, label="Tags (any)")
        c["by_filter"] = gr.Dropdown([], value=[], multiselect=True, label="By", elem_id="runs-by-filter")
    with gr.Row():
        c["show_archived"] = gr.Checkbox(False, label="Show archived")
        c["show_ensembles"] = gr.Checkbox(
            True, label="Show ensembles", info="hidden while a status/model/loss/tag filter is on"
        )
        c["sort_by"] = gr.Dropdown(list(rd.SORTS), value=rd.DEFAULT_SORT, label="Sort by")
        c["refresh"] = gr.Button("Refresh", variant="secondary", elem_id="runs-refresh")
    c["leaderboard"] = gr.Dataframe(
        value=[],
        headers=rd.shown_headers(shown),
        datatype=rd.datatypes(shown),
        interactive=False,
        wrap=True,
        max_height=480,
        show_search="search",
        column_widths=column_widths(shown, leaderboard_widths(rd.NODE in shown, rd.BY in shown)),
        label="Leaderboard (click a column header to sort, a row to pick the run below)",
        elem_id="runs-leaderboard",
    )
    with gr.Row():
        c["export"] = gr.Button("Export table as CSV", size="sm")
        c["export_file"] = gr.File(label="Leaderboard CSV", visible=False, interactive=False)

    with gr.Accordion("Compare runs", open=True):
        c["selection"] = gr.Dropdown(
            [],
            value=[],
            multiselect=True,
            label="Runs to compare",
            info="pick runs to overlay their curves and per-class accuracy",
        )
        with gr.Row():
            c["metric"] = gr.Dropdown(list(rd.CURVE_METRICS), value="Validation accuracy", label="Metric")
            c["x_axis"] = gr.Radio(list(rd.X_AXES), value="Epoch", label="X axis")
            c["smoothing"] = gr.Slider(0, 0.95, value=0, step=0.05, label="Smoothing (EMA)")
        c["curves"] = gr.Plot(plots.curves([]), label="Curves")
        c["per_class"] = gr.Plot(plots.per_class([]), label="Per-class accuracy")
        with gr.Row():
            c["accuracy_metric"] = gr.Dropdown(
                list(rd.ACCURACY_METRICS), value="Test accuracy", label="Accuracy for the overview"
            )
            c["group_by"] = gr.Radio(
                list(rd.GROUP_BY),
                value="Setting",
                label="Group by",
                info="Setting: runs that differ only in their seed, the seeds as the spread",
            )
        with gr.Row():
            c["scatter"] = gr.Plot(label="Parameters vs accuracy")
            c["groups"] = gr.Plot(label="Accuracy by group")

    c["sweeps"] = sweep_layout()
    c["studies"] = studies_layout()

    with gr.Accordion("Manage a run", open=True):
        with gr.Row():
            c["pick"] = gr.Dropdown([], value=None, label="Run", scale=3, elem_id="runs-pick")
            c["clone"] = gr.Button("Clone into its form", variant="primary", scale=1, elem_id="runs-clone")
        c["details"] = gr.Markdown()
        with gr.Row():
            c["notes"] = gr.Textbox(label="Notes", lines=2, scale=3)
            c["tags"] = gr.Textbox(label="Tags", placeholder="baseline, seed-sweep", scale=2, info="comma-separated")
        with gr.Row():
            c["save"] = gr.Button("Save notes and tags")
            c["archive"] = gr.Button("Archive")
            c["sure"] = gr.Checkbox(False, label="I am sure")
            c["delete"] = gr.Button("Delete run and files", variant="stop")
        c["action_status"] = gr.Markdown(elem_id="runs-action-status")
        c["model_export"] = runs_export.layout()
    c["timer"] = gr.Timer(LIVE_SECONDS, active=False)
    return RunsView(**c)
