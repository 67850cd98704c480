"""Ensemble tab: pick completed runs, mix them with a slider per member, search weights on validation,
and see validation and test accuracy, NLL and ECE, reliability and member agreement, live.

Everything is computed from stored logits (`workbench.ensemble.lab`); no model is re-run. The tables and texts
it shows are `workbench.ui.tabs.ensemble_tables` (no Gradio); here are the components and their handlers.
"""

from dataclasses import dataclass
from typing import Any

import gradio as gr

from workbench.constants import AuditAction
from workbench.ensemble import combine as ens
from workbench.ensemble import lab
from workbench.errors import UserError
from workbench.ui import plots
from workbench.ui.refresh import Refresh
from workbench.ui.tabs.ensemble_snapshots import add_snapshot_picker, snapshot_choices, wire_snapshot_picker
from workbench.ui.tabs.ensemble_tables import (
    METRIC_COLUMNS,
    empty_metrics,
    member_choices,
    method_note,
    metrics_table,
    percent,
    settings_and_weights,
    settings_of,
    top_table,
)
from workbench.ui.widgets import LAST

MAX_SLIDERS = 8
METHOD_CHOICES = [("weighted mean", "mean"), ("majority vote", "vote")]
SPACE_CHOICES = [("probabilities", "prob"), ("logits", "logit")]


@dataclass(eq=False)
class EnsembleView:
    """The tab's components."""

    runs: gr.Dropdown  # the members
    refresh: gr.Button
    unavailable: gr.Markdown
    snapshot_run: gr.Dropdown  # "this run's snapshots" (`workbench.ui.tabs.ensemble_snapshots`)
    use_snapshots: gr.Button
    method: gr.Radio
    space: gr.Radio
    temperature: gr.Checkbox
    tta: gr.Checkbox
    translate: gr.Checkbox
    sliders: list  # MAX_SLIDERS gr.Slider, one weight per member; the unused ones hidden
    equal: gr.Button
    grid: gr.Button
    greedy: gr.Button
    optimize: gr.Button
    message: gr.Markdown
    metrics: gr.Dataframe
    search_plot: gr.Plot
    top: gr.Dataframe
    reliability: gr.Plot
    agreement: gr.Plot
    name: gr.Textbox
    save: gr.Button
    saved: gr.Dropdown
    load: gr.Button
    delete: gr.Button
    distil: gr.Button  # "Distil into one model": wired by the page (`workbench.ui.tabs.distill_form`)

    @property
    def settings(self) -> list:
        """The components of `lab.Settings`, in `settings_of`'s argument order."""
        return [self.method, self.space, self.temperature, self.tta, self.translate]


@dataclass(eq=False)
class EnsembleTab:
    view: EnsembleView
    refresh: Refresh  # the member choices, the runs that cannot be combined, the saved ensembles


def _chosen_id(ensemble_id) -> int:
    if ensemble_id is None:
        raise UserError("choose a saved ensemble first")
    return int(ensemble_id)


class _Handlers:
    """The tab's event handlers over the store's logits; each returns its outputs by component."""

    def __init__(self, ctx, view: EnsembleView):
        self.ctx, self.store, self.room, self.v = ctx, ctx.store, lab.Lab(ctx.store), view

    def saved_choices(self):
        return [
            (
                f"{e['id']}: {e['name']} (val {100 * (e['val_accuracy'] or 0):.2f}%, test "
                f"{100 * (e['test_accuracy'] or 0):.2f}%)",
                e["id"],
            )
            for e in self.store.list_ensembles()
        ]

    def refresh(self, selected):
        choices, unavailable = member_choices(self.store, selected)
        keep = [r for r in (selected or []) if r in {v for _, v in choices}]
        saved = gr.update(choices=self.saved_choices())
        return gr.update(choices=choices, value=keep), unavailable, saved, snapshot_choices(self.store)

    def narrowed(self, selected) -> dict:
        """The member choices for this selection, the value left alone (the user may be picking)."""
        choices, unavailable = member_choices(self.store, selected)
        return {self.v.runs: gr.update(choices=choices), self.v.unavailable: unavailable}

    def search_cleared(self, member_ids=()) -> dict:
        """No search shown: no plot, the table's headers for these members."""
        return {self.v.search_plot: None, self.v.top: top_table(member_ids)}

    def slider_updates(self, members, weights) -> dict:
        """One slider per member, labelled with its run and showing its weight; the rest hidden."""
        updates = {}
        for i, slider in enumerate(self.v.sliders):
            if members is not None and i < len(members.ids):
                updates[slider] = gr.update(
                    visible=True, value=round(float(weights[i]), 3), label=f"{members.ids[i]}: {members.names[i]}"
                )
            else:
                updates[slider] = gr.update(visible=False)
        return updates

    def figures(self, members, settings, weights, full=True) -> dict:
        """The metrics table and reliability diagram, and with `full` the agreement heatmap."""
        scored = lab.score(members, weights, settings)
        figures = {
            self.v.metrics: metrics_table(scored, settings),
            self.v.reliability: plots.reliability_diagram(lab.reliability(members, scored, settings)),
        }
        if full:
            figures[self.v.agreement] = plots.agreement_heatmap(
                ens.agreement_matrix(scored["test_member_probs"]), [f"{i}" for i in members.ids]
            )
        return figures

    def select(self, run_ids, *settings_values):
        """A new selection: equal weights, everything recomputed, the previous search's results cleared."""
        run_ids, settings = run_ids or [], settings_of(*settings_values)
        cleared = {
            **self.slider_updates(None, []),
            self.v.metrics: empty_metrics(settings),
            **self.search_cleared(run_ids if len(run_ids) <= MAX_SLIDERS else ()),
            **self.narrowed(run_ids),
        }
        if len(run_ids) > MAX_SLIDERS:
            raise_message = f"**Select at most {MAX_SLIDERS} runs** (greedy selection handles more in the CLI)."
            return {**cleared, self.v.message: raise_message}
        try:
            members = self.room.load(run_ids)
            weights = [1.0] * len(members.ids)
            figures = self.figures(members, settings, weights)
        except UserError as exc:
            return {**cleared, self.v.message: f"**{exc}**"}
        return {**cleared, self.v.message: method_note(settings), **self.slider_updates(members, weights), **figures}

    def resettle(self, run_ids, *values):
        """New settings (method, averaging, temperature, TTA): the weights stay as they are, the figures
        follow, and a search made under the old settings is cleared."""
        settings, weights = settings_and_weights(*values)
        cleared = {**self.search_cleared(run_ids or ()), self.v.metrics: empty_metrics(settings)}
        try:
            members = self.room.load(run_ids)
            figures = self.figures(members, settings, weights[: len(members.ids)])
        except UserError as exc:
            return {**cleared, self.v.message: f"**{exc}**"}
        return {**cleared, self.v.message: method_note(settings), **figures}

    def move(self, run_ids, *values):
        """A slider moved: recompute the ensemble's figures for the current weights."""
        settings, weights = settings_and_weights(*values)
        try:
            members = self.room.load(run_ids)
        except UserError:
            return gr.skip()
        try:
            figures = self.figures(members, settings, weights[: len(members.ids)], full=False)
        except UserError as exc:
            return {self.v.message: f"**{exc}**"}
        # The message is left alone: a search that pushes new weights into the sliders fires this too,
        # and its note ("Grid search over ...") must stay visible.
        return figures

    def run_search(self, how, run_ids, *settings_values):
        """A weight search on validation: its weights into the sliders (largest at 1, like every weight
        shown), and its plot and table in place of the previous search's (a search without one clears it)."""
        settings = settings_of(*settings_values)
        try:
            members = self.room.load(run_ids)
            found = lab.search(members, settings, how)
        except UserError as exc:
            return {self.v.message: f"**{exc}**", **self.search_cleared(run_ids or ())}
        shown = {**self.search_cleared(members.ids), **self.slider_updates(members, found["weights"])}
        if how == "grid":
            top = top_table(
                members.ids,
                [[*[round(w, 3) for w in row["weights"]], round(100 * row["accuracy"], 2)] for row in found["top"]],
            )
            note = (
                f"Grid search over {found['combinations']:,} combinations: best validation accuracy "
                f"{100 * found['val_accuracy']:.2f}%."
            )
            return {
                **shown,
                self.v.message: note,
                self.v.top: top,
                self.v.search_plot: plots.grid_heatmap(found["grid"], members.names),
            }
        if how == "greedy":
            note = f"Greedy selection: best validation NLL after {found['best_step']} selections."
            return {
                **shown,
                self.v.message: note,
                self.v.search_plot: plots.greedy_trajectory(found["trajectory"], found["best_step"]),
            }
        note = f"Optimised weights: validation NLL {found['val_nll']:.4f} (equal weights: {found['uniform_nll']:.4f})."
        return {**shown, self.v.message: note}

    def equal(self, run_ids):
        try:
            members = self.room.load(run_ids)
        except UserError as exc:
            return {self.v.message: f"**{exc}**"}
        return {self.v.message: "", **self.slider_updates(members, [1.0] * len(members.ids))}

    def save(self, name, run_ids, *values):
        settings, weights = settings_and_weights(*values)
        try:
            members = self.room.load(run_ids)
            scored = lab.score(members, weights[: len(members.ids)], settings, with_members=False)
            ensemble_id = lab.save(self.store, members, scored, settings, name, by=self.ctx.user().name)
        except UserError as exc:
            return f"**{exc}**", gr.skip()
        return (
            f"Saved ensemble {ensemble_id}: **{name}** (val {100 * scored['val']['accuracy']:.2f}%, "
            f"test {100 * scored['test']['accuracy']:.2f}%)",
            gr.update(choices=self.saved_choices(), value=ensemble_id),
        )

    def load_saved(self, ensemble_id):
        v = self.v
        try:
            saved = self.store.get_ensemble(_chosen_id(ensemble_id))
            settings = lab.settings_of(saved)
            members = self.room.load(saved["members"])
            weights = lab.relative_weights(saved["weights"])  # ensembles saved before one scale was kept
            figures = self.figures(members, settings, weights)
        except UserError as exc:
            return {v.message: f"**{exc}**"}
        choices, unavailable = member_choices(self.store, members.ids)
        return {
            v.message: f"Loaded ensemble {saved['id']}: **{saved['name']}**",
            v.runs: gr.update(choices=choices, value=members.ids),
            v.unavailable: unavailable,
            v.method: settings.method,
            v.space: settings.space,
            v.temperature: settings.temperature,
            v.tta: settings.tta,
            v.translate: settings.translate,
            v.name: saved["name"],
            **self.slider_updates(members, weights),
            **figures,
            v.search_plot: None,
            # The saved weights (on the sliders' scale) and the validation accuracy they were saved with.
            v.top: top_table(members.ids, [[*(round(float(w), 3) for w in weights), percent(saved["val_accuracy"])]]),
        }

    def delete(self, ensemble_id):
        try:
            saved = self.store.get_ensemble(_chosen_id(ensemble_id))
            what = f"ensemble {saved['id']}"
            user = self.ctx.check_owner(saved.get("created_by"), "delete", what)
            self.store.delete_ensemble(saved["id"])
            self.store.record(user.name, AuditAction.DELETE_ENSEMBLE, what, saved["name"])
        except UserError as exc:
            return f"**{exc}**", gr.skip()
        return f"Deleted ensemble {ensemble_id}.", gr.update(choices=self.saved_choices(), value=None)


def _layout() -> EnsembleView:
    c: dict[str, Any] = {}
    gr.Markdown(
        "Combine completed runs trained on the same split. Weights and temperatures are chosen on the "
        "**validation** split; **test** figures are reported for the chosen weights, never used to choose. "
        "Weights are relative: the largest is 1, and only their ratios matter."
    )
    with gr.Row():
        c["runs"] = gr.Dropdown(
            [], value=[], multiselect=True, label=f"Members (up to {MAX_SLIDERS})", elem_id="ensemble-runs", scale=4
        )
        c["refresh"] = gr.Button("Refresh runs", scale=1)
    c["unavailable"] = gr.Markdown(elem_id="ensemble-unavailable")
    c["snapshot_run"], c["use_snapshots"] = add_snapshot_picker()
    with gr.Row():
        c["method"] = gr.Radio(METHOD_CHOICES, value="mean", label="Method")
        c["space"] = gr.Radio(SPACE_CHOICES, value="prob", label="Average")
        c["temperature"] = gr.Checkbox(False, label="Temperature scaling (fitted per member on validation)")
        c["tta"] = gr.Checkbox(False, label="Flip test-time augmentation")
        c["translate"] = gr.Checkbox(False, label="Translate test-time augmentation")
    with gr.Row():
        c["sliders"] = [
            gr.Slider(0, 1, value=1, step=0.01, label=f"member {i + 1}", visible=False, elem_id=f"ensemble-weight-{i}")
            for i in range(MAX_SLIDERS)
        ]
    with gr.Row():
        c["equal"] = gr.Button("Equal weights")
        c["grid"] = gr.Button("Grid search (step 0.1)", variant="primary")
        c["greedy"] = gr.Button("Greedy selection")
        c["optimize"] = gr.Button("Optimise weights (NLL)")
    c["message"] = gr.Markdown(elem_id="ensemble-message")
    c["metrics"] = gr.Dataframe(
        headers=METRIC_COLUMNS, value=[], interactive=False, elem_id="ensemble-metrics", label="Ensemble and members"
    )
    with gr.Row():
        c["search_plot"] = gr.Plot(label="Weight search")
        c["top"] = gr.Dataframe(value=top_table(), interactive=False, label="Top weight combinations (validation)")
    with gr.Row():
        c["reliability"] = gr.Plot(label="Reliability")
        c["agreement"] = gr.Plot(label="Agreement")
    with gr.Row():
        c["name"] = gr.Textbox(label="Ensemble name", scale=3)
        c["save"] = gr.Button("Save ensemble", scale=1)
    with gr.Row():
        c["saved"] = gr.Dropdown([], label="Saved ensembles", scale=3, elem_id="ensemble-saved")
        c["load"] = gr.Button("Load into sliders", scale=1)
        c["delete"] = gr.Button("Delete", variant="stop", scale=1)
        c["distil"] = gr.Button("Distil into one model", scale=1, elem_id="ensemble-distil")
    return EnsembleView(**c)


def create_ensemble_tab(ctx) -> EnsembleTab:
    v = _layout()
    h = _Handlers(ctx, v)
    refresh = Refresh(h.refresh, [v.runs], [v.runs, v.unavailable, v.saved, v.snapshot_run])
    refresh.wire(v.refresh.click)
    figures = [v.metrics, v.reliability, v.agreement]
    searched = [v.search_plot, v.top]
    select_outputs = [v.message, v.runs, v.unavailable, *v.sliders, *figures, *searched]
    # LAST: picking three runs fires three events; only the last selection may draw the result.
    v.runs.input(h.select, [v.runs, *v.settings], select_outputs, trigger_mode=LAST, api_name="ensemble_select")
    picked = wire_snapshot_picker(ctx, v.snapshot_run, v.use_snapshots, v.runs, MAX_SLIDERS)
    picked.then(h.select, [v.runs, *v.settings], select_outputs, api_name="ensemble_snapshots")
    gr.on(
        [x.input for x in v.settings],
        h.resettle,
        [v.runs, *v.settings, *v.sliders],
        [v.message, *figures, *searched],
        trigger_mode=LAST,
        api_name="ensemble_settings",
    )
    gr.on(
        [s.change for s in v.sliders],
        h.move,
        [v.runs, *v.settings, *v.sliders],
        [v.message, v.metrics, v.reliability],
        trigger_mode=LAST,
        show_progress="hidden",
    )
    for how in ("grid", "greedy", "optimize"):
        getattr(v, how).click(
            lambda *values, how=how: h.run_search(how, *values),
            [v.runs, *v.settings],
            [v.message, *v.sliders, *searched],
            api_name=f"ensemble_{how}",
        )
    v.equal.click(h.equal, v.runs, [v.message, *v.sliders])
    v.save.click(h.save, [v.name, v.runs, *v.settings, *v.sliders], [v.message, v.saved], api_name="ensemble_save")
    v.load.click(
        h.load_saved,
        v.saved,
        [v.message, v.runs, v.unavailable, *v.settings, v.name, *v.sliders, *figures, *searched],
        api_name="ensemble_load",
    )
    v.delete.click(h.delete, v.saved, [v.message, v.saved])
    return EnsembleTab(view=v, refresh=refresh)
