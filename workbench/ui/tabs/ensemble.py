"""Ensemble tab: pick completed runs, mix them with a slider per member, search weights on validation,
and see validation and test accuracy, NLL and ECE, reliability and member agreement, live.

Everything is computed from stored logits (`workbench.ensemble.lab`); no model is re-run.
"""
from dataclasses import dataclass

import gradio as gr
import numpy as np

from workbench.ensemble import combine as ens
from workbench.ensemble import lab
from workbench.errors import UserError
from workbench.ui import plots
from workbench.ui.refresh import Refresh

MAX_SLIDERS = 8
METRIC_COLUMNS = ["source", "weight", "T", "val acc %", "val NLL", "val ECE %", "test acc %", "test NLL", "test ECE %"]
METHOD_CHOICES = [("weighted mean", "mean"), ("majority vote", "vote")]
SPACE_CHOICES = [("probabilities", "prob"), ("logits", "logit")]


@dataclass(eq=False)
class EnsembleView:
    """The tab's components."""
    runs: gr.Dropdown  # the members
    refresh: gr.Button
    unavailable: gr.Markdown
    method: gr.Radio
    space: gr.Radio
    temperature: gr.Checkbox
    tta: gr.Checkbox
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

    @property
    def settings(self) -> list:
        """The components of `lab.Settings`, in `settings_of`'s argument order."""
        return [self.method, self.space, self.temperature, self.tta]


@dataclass(eq=False)
class EnsembleTab:
    view: EnsembleView
    refresh: Refresh  # the member choices, the runs that cannot be combined, the saved ensembles


def _choices(candidates):
    return [(f"{c['id']}: {c['name']}", c["id"]) for c in candidates if c["eligible"]]


def _unavailable(candidates) -> str:
    lines = [f"- run {c['id']} {c['name']}: {c['reason']}" for c in candidates if not c["eligible"]]
    return ("**Not available to combine:**\n" + "\n".join(lines)) if lines else ""


def metrics_rows(scored: dict) -> list:
    pct = lambda v: round(100 * v, 2)  # noqa: E731
    val, test = scored["val"], scored["test"]
    rows = [["ensemble", "", "", pct(val["accuracy"]), round(val["nll"], 4), pct(val["ece"]),
             pct(test["accuracy"]), round(test["nll"], 4), pct(test["ece"])]]
    for m, w in zip(scored["members"], scored["weights"]):
        rows.append([f"{m['id']}: {m['name']}", round(w, 3), round(m["temperature"], 2), pct(m["val_accuracy"]),
                     round(m["val_nll"], 4), pct(m["val_ece"]), pct(m["test_accuracy"]), round(m["test_nll"], 4),
                     pct(m["test_ece"])])
    return rows


def settings_of(method, space, temperature, tta):
    return lab.Settings(method=method or "mean", space=space or "prob", temperature=bool(temperature), tta=bool(tta))


def _settings_and_weights(method, space, temperature, tta, *weights):
    """The values of `EnsembleView.settings` and then of the sliders, read into Settings and weights."""
    return settings_of(method, space, temperature, tta), list(weights)


def _chosen_id(ensemble_id) -> int:
    if ensemble_id is None:
        raise UserError("choose a saved ensemble first")
    return int(ensemble_id)


class _Handlers:
    """The tab's event handlers over the store's logits; each returns its outputs by component."""

    def __init__(self, ctx, view: EnsembleView):
        self.store, self.room, self.v = ctx.store, lab.Lab(ctx.store), view

    def saved_choices(self):
        return [(f"{e['id']}: {e['name']} (val {100 * (e['val_accuracy'] or 0):.2f}%, test "
                 f"{100 * (e['test_accuracy'] or 0):.2f}%)", e["id"]) for e in self.store.list_ensembles()]

    def refresh(self, selected):
        candidates = lab.compatible_with(lab.candidates(self.store), selected or [])
        keep = [r for r in (selected or []) if r in {v for _, v in _choices(candidates)}]
        return (gr.update(choices=_choices(candidates), value=keep), _unavailable(candidates),
                gr.update(choices=self.saved_choices()))

    def slider_updates(self, members, weights) -> dict:
        """One slider per member, labelled with its run and showing its weight; the rest hidden."""
        updates = {}
        for i, slider in enumerate(self.v.sliders):
            if members is not None and i < len(members.ids):
                updates[slider] = gr.update(visible=True, value=round(float(weights[i]), 3),
                                            label=f"{members.ids[i]}: {members.names[i]}")
            else:
                updates[slider] = gr.update(visible=False)
        return updates

    def figures(self, members, settings, weights, full=True) -> dict:
        """The metrics table and reliability diagram, and with `full` the agreement heatmap."""
        scored = lab.score(members, weights, settings)
        figures = {self.v.metrics: metrics_rows(scored),
                   self.v.reliability: plots.reliability_diagram(lab.reliability(members, scored, settings))}
        if full:
            figures[self.v.agreement] = plots.agreement_heatmap(ens.agreement_matrix(scored["test_member_probs"]),
                                                                [f"{i}" for i in members.ids])
        return figures

    def select(self, run_ids, *settings_values):
        """New selection or settings: equal weights, everything recomputed."""
        run_ids = run_ids or []
        cleared = {**self.slider_updates(None, []), self.v.metrics: []}
        if len(run_ids) > MAX_SLIDERS:
            raise_message = f"**Select at most {MAX_SLIDERS} runs** (greedy selection handles more in the CLI)."
            return {self.v.message: raise_message, **cleared}
        try:
            members = self.room.load(run_ids)
            weights = [1.0] * len(members.ids)
            figures = self.figures(members, settings_of(*settings_values), weights)
        except UserError as exc:
            return {self.v.message: f"**{exc}**", **cleared}
        return {self.v.message: "", **self.slider_updates(members, weights), **figures}

    def move(self, run_ids, *values):
        """A slider moved: recompute the ensemble's figures for the current weights."""
        settings, weights = _settings_and_weights(*values)
        try:
            members = self.room.load(run_ids)
        except UserError:
            return gr.skip()
        try:
            figures = self.figures(members, settings, weights[:len(members.ids)], full=False)
        except UserError as exc:
            return {self.v.message: f"**{exc}**"}
        # The message is left alone: a search that pushes new weights into the sliders fires this too,
        # and its note ("Grid search over ...") must stay visible.
        return figures

    def run_search(self, how, run_ids, *settings_values):
        settings = settings_of(*settings_values)
        try:
            members = self.room.load(run_ids)
            found = lab.search(members, settings, how)
        except UserError as exc:
            return {self.v.message: f"**{exc}**"}
        weights = np.asarray(found["weights"], float)
        weights = weights / weights.max()  # sliders show relative weights; the largest at 1
        shown = self.slider_updates(members, weights)
        if how == "grid":
            top = [[*[round(w, 3) for w in row["normalized_weights"]], round(100 * row["accuracy"], 2)]
                   for row in found["top"]]
            note = f"Grid search over {found['combinations']:,} combinations: best validation accuracy " \
                   f"{100 * found['val_accuracy']:.2f}%."
            return {self.v.message: note, **shown, self.v.search_plot: plots.grid_heatmap(found["grid"], members.names),
                    self.v.top: gr.update(value=top, headers=[*(f"w{i}" for i in members.ids), "val acc %"])}
        if how == "greedy":
            note = f"Greedy selection: best validation NLL after {found['best_step']} selections."
            return {self.v.message: note, **shown,
                    self.v.search_plot: plots.greedy_trajectory(found["trajectory"], found["best_step"])}
        note = f"Optimised weights: validation NLL {found['val_nll']:.4f} (equal weights: {found['uniform_nll']:.4f})."
        return {self.v.message: note, **shown}

    def equal(self, run_ids):
        try:
            members = self.room.load(run_ids)
        except UserError as exc:
            return {self.v.message: f"**{exc}**"}
        return {self.v.message: "", **self.slider_updates(members, [1.0] * len(members.ids))}

    def save(self, name, run_ids, *values):
        settings, weights = _settings_and_weights(*values)
        try:
            members = self.room.load(run_ids)
            scored = lab.score(members, weights[:len(members.ids)], settings, with_members=False)
            ensemble_id = lab.save(self.store, members, scored, settings, name)
        except UserError as exc:
            return f"**{exc}**", gr.skip()
        return (f"Saved ensemble {ensemble_id}: **{name}** (val {100 * scored['val']['accuracy']:.2f}%, "
                f"test {100 * scored['test']['accuracy']:.2f}%)",
                gr.update(choices=self.saved_choices(), value=ensemble_id))

    def load_saved(self, ensemble_id):
        v = self.v
        try:
            saved = self.store.get_ensemble(_chosen_id(ensemble_id))
            settings = lab.settings_of(saved)
            members = self.room.load(saved["members"])
            weights = np.asarray(saved["weights"], float)
            figures = self.figures(members, settings, list(weights))
        except UserError as exc:
            return {v.message: f"**{exc}**"}
        candidates = lab.compatible_with(lab.candidates(self.store), members.ids)
        return {v.message: f"Loaded ensemble {saved['id']}: **{saved['name']}**",
                v.runs: gr.update(choices=_choices(candidates), value=members.ids), v.method: settings.method,
                v.space: settings.space, v.temperature: settings.temperature, v.tta: settings.tta,
                v.name: saved["name"], **self.slider_updates(members, weights / weights.max()), **figures}

    def delete(self, ensemble_id):
        try:
            self.store.delete_ensemble(_chosen_id(ensemble_id))
        except UserError as exc:
            return f"**{exc}**", gr.skip()
        return f"Deleted ensemble {ensemble_id}.", gr.update(choices=self.saved_choices(), value=None)


def _layout() -> EnsembleView:
    c = {}
    gr.Markdown("Combine completed runs trained on the same split. Weights and temperatures are chosen on the "
                "**validation** split; **test** figures are reported for the chosen weights, never used to choose.")
    with gr.Row():
        c["runs"] = gr.Dropdown([], value=[], multiselect=True, label=f"Members (up to {MAX_SLIDERS})",
                                elem_id="ensemble-runs", scale=4)
        c["refresh"] = gr.Button("Refresh runs", scale=1)
    c["unavailable"] = gr.Markdown(elem_id="ensemble-unavailable")
    with gr.Row():
        c["method"] = gr.Radio(METHOD_CHOICES, value="mean", label="Method")
        c["space"] = gr.Radio(SPACE_CHOICES, value="prob", label="Average")
        c["temperature"] = gr.Checkbox(False, label="Temperature scaling (fitted per member on validation)")
        c["tta"] = gr.Checkbox(False, label="Flip test-time augmentation")
    with gr.Row():
        c["sliders"] = [gr.Slider(0, 1, value=1, step=0.01, label=f"member {i + 1}", visible=False,
                                  elem_id=f"ensemble-weight-{i}") for i in range(MAX_SLIDERS)]
    with gr.Row():
        c["equal"] = gr.Button("Equal weights")
        c["grid"] = gr.Button("Grid search (step 0.1)", variant="primary")
        c["greedy"] = gr.Button("Greedy selection")
        c["optimize"] = gr.Button("Optimise weights (NLL)")
    c["message"] = gr.Markdown(elem_id="ensemble-message")
    c["metrics"] = gr.Dataframe(headers=METRIC_COLUMNS, value=[], interactive=False, elem_id="ensemble-metrics",
                                label="Ensemble and members")
    with gr.Row():
        c["search_plot"] = gr.Plot(label="Weight search")
        c["top"] = gr.Dataframe(value=[], interactive=False, label="Top weight combinations (validation)")
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
    return EnsembleView(**c)


def create_ensemble_tab(ctx) -> EnsembleTab:
    v = _layout()
    h = _Handlers(ctx, v)
    refresh = Refresh(h.refresh, [v.runs], [v.runs, v.unavailable, v.saved])
    refresh.wire(v.refresh.click)
    figures = [v.metrics, v.reliability, v.agreement]
    select_outputs = [v.message, *v.sliders, *figures]
    # always_last: picking three runs fires three events; only the last selection may draw the result.
    v.runs.input(h.select, [v.runs, *v.settings], select_outputs, trigger_mode="always_last")
    gr.on([x.input for x in v.settings], h.select, [v.runs, *v.settings], select_outputs, trigger_mode="always_last")
    gr.on([s.change for s in v.sliders], h.move, [v.runs, *v.settings, *v.sliders],
          [v.message, v.metrics, v.reliability], trigger_mode="always_last", show_progress="hidden")
    for how in ("grid", "greedy", "optimize"):
        getattr(v, how).click(lambda *values, how=how: h.run_search(how, *values), [v.runs, *v.settings],
                              [v.message, *v.sliders, v.search_plot, v.top], api_name=f"ensemble_{how}")
    v.equal.click(h.equal, v.runs, [v.message, *v.sliders])
    v.save.click(h.save, [v.name, v.runs, *v.settings, *v.sliders], [v.message, v.saved], api_name="ensemble_save")
    v.load.click(h.load_saved, v.saved, [v.message, v.runs, *v.settings, v.name, *v.sliders, *figures])
    v.delete.click(h.delete, v.saved, [v.message, v.saved])
    return EnsembleTab(view=v, refresh=refresh)
