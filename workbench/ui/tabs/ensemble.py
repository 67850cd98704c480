"""Ensemble tab: pick completed runs, mix them with a slider per member, search weights on validation,
and see validation and test accuracy, NLL and ECE, reliability and member agreement, live.

Everything is computed from stored logits (`workbench.ensemble.lab`); no model is re-run.
"""
import gradio as gr
import numpy as np

from workbench.ensemble import combine as ens
from workbench.ensemble import lab
from workbench.errors import UserError
from workbench.ui import plots

MAX_SLIDERS = 8
METRIC_COLUMNS = ["source", "weight", "T", "val acc %", "val NLL", "val ECE %", "test acc %", "test NLL", "test ECE %"]
METHOD_CHOICES = [("weighted mean", "mean"), ("majority vote", "vote")]
SPACE_CHOICES = [("probabilities", "prob"), ("logits", "logit")]


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


def create_ensemble_tab(ctx) -> dict:
    room = lab.Lab(ctx.store)
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
        sliders = [gr.Slider(0, 1, value=1, step=0.01, label=f"member {i + 1}", visible=False,
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
    settings_inputs = [c["method"], c["space"], c["temperature"], c["tta"]]

    def settings_of(method, space, temperature, tta):
        return lab.Settings(method=method or "mean", space=space or "prob", temperature=bool(temperature), tta=bool(tta))

    def saved_choices():
        return [(f"{e['id']}: {e['name']} (val {100 * (e['val_accuracy'] or 0):.2f}%, test "
                 f"{100 * (e['test_accuracy'] or 0):.2f}%)", e["id"]) for e in ctx.store.list_ensembles()]

    def refresh(selected):
        candidates = lab.compatible_with(lab.candidates(ctx.store), selected or [])
        keep = [r for r in (selected or []) if r in {v for _, v in _choices(candidates)}]
        return (gr.update(choices=_choices(candidates), value=keep), _unavailable(candidates),
                gr.update(choices=saved_choices()))

    refresh_outputs = [c["runs"], c["unavailable"], c["saved"]]
    c["refresh"].click(refresh, c["runs"], refresh_outputs)

    def slider_updates(members, weights):
        updates = []
        for i in range(MAX_SLIDERS):
            if members is not None and i < len(members.ids):
                updates.append(gr.update(visible=True, value=round(float(weights[i]), 3),
                                         label=f"{members.ids[i]}: {members.names[i]}"))
            else:
                updates.append(gr.update(visible=False))
        return updates

    def figures(members, settings, weights, full=True):
        scored = lab.score(members, weights, settings)
        reliability = plots.reliability_diagram(lab.reliability(members, scored, settings))
        agreement = plots.agreement_heatmap(ens.agreement_matrix(scored["test_member_probs"]),
                                            [f"{i}" for i in members.ids]) if full else gr.skip()
        return metrics_rows(scored), reliability, agreement

    def select(run_ids, *settings_values):
        """New selection or settings: equal weights, everything recomputed."""
        run_ids = run_ids or []
        if len(run_ids) > MAX_SLIDERS:
            raise_message = f"**Select at most {MAX_SLIDERS} runs** (greedy selection handles more in the CLI)."
            return (raise_message, *slider_updates(None, []), [], gr.skip(), gr.skip())
        try:
            members = room.load(run_ids)
            weights = [1.0] * len(members.ids)
            rows, reliability, agreement = figures(members, settings_of(*settings_values), weights)
        except UserError as exc:
            return (f"**{exc}**", *slider_updates(None, []), [], gr.skip(), gr.skip())
        return ("", *slider_updates(members, weights), rows, reliability, agreement)

    select_outputs = [c["message"], *sliders, c["metrics"], c["reliability"], c["agreement"]]
    # always_last: picking three runs fires three events; only the last selection may draw the result.
    c["runs"].input(select, [c["runs"], *settings_inputs], select_outputs, trigger_mode="always_last")
    gr.on([x.input for x in settings_inputs], select, [c["runs"], *settings_inputs], select_outputs,
          trigger_mode="always_last")

    def move(run_ids, *values):
        """A slider moved: recompute the ensemble's figures for the current weights."""
        settings = settings_of(*values[:4])
        try:
            members = room.load(run_ids)
        except UserError:
            return gr.skip(), gr.skip(), gr.skip()
        weights = list(values[4:4 + len(members.ids)])
        try:
            rows, reliability, _ = figures(members, settings, weights, full=False)
        except UserError as exc:
            return f"**{exc}**", gr.skip(), gr.skip()
        # The message is left alone: a search that pushes new weights into the sliders fires this too,
        # and its note ("Grid search over ...") must stay visible.
        return gr.skip(), rows, reliability

    gr.on([s.change for s in sliders], move, [c["runs"], *settings_inputs, *sliders],
          [c["message"], c["metrics"], c["reliability"]], trigger_mode="always_last", show_progress="hidden")

    def run_search(how, run_ids, *settings_values):
        settings = settings_of(*settings_values)
        try:
            members = room.load(run_ids)
            found = lab.search(members, settings, how)
        except UserError as exc:
            return (f"**{exc}**", *[gr.skip()] * MAX_SLIDERS, gr.skip(), gr.skip())
        weights = np.asarray(found["weights"], float)
        weights = weights / weights.max()  # sliders show relative weights; the largest at 1
        if how == "grid":
            plot = plots.grid_heatmap(found["grid"], members.names)
            top = [[*[round(w, 3) for w in row["normalized_weights"]], round(100 * row["accuracy"], 2)]
                   for row in found["top"]]
            top = gr.update(value=top, headers=[*(f"w{i}" for i in members.ids), "val acc %"])
            note = f"Grid search over {found['combinations']:,} combinations: best validation accuracy " \
                   f"{100 * found['val_accuracy']:.2f}%."
        elif how == "greedy":
            plot = plots.greedy_trajectory(found["trajectory"], found["best_step"])
            top, note = gr.skip(), f"Greedy selection: best validation NLL after {found['best_step']} selections."
        else:
            plot, top = gr.skip(), gr.skip()
            note = f"Optimised weights: validation NLL {found['val_nll']:.4f} (equal weights: {found['uniform_nll']:.4f})."
        return (note, *slider_updates(members, weights), plot, top)

    search_outputs = [c["message"], *sliders, c["search_plot"], c["top"]]
    for how in ("grid", "greedy", "optimize"):
        c[how].click(lambda *v, how=how: run_search(how, *v), [c["runs"], *settings_inputs], search_outputs,
                     api_name=f"ensemble_{how}")

    def equal(run_ids):
        try:
            members = room.load(run_ids)
        except UserError as exc:
            return (f"**{exc}**", *[gr.skip()] * MAX_SLIDERS)
        return ("", *slider_updates(members, [1.0] * len(members.ids)))

    c["equal"].click(equal, c["runs"], [c["message"], *sliders])

    def save(name, run_ids, *values):
        settings = settings_of(*values[:4])
        try:
            members = room.load(run_ids)
            scored = lab.score(members, list(values[4:4 + len(members.ids)]), settings, with_members=False)
            ensemble_id = lab.save(ctx.store, members, scored, settings, name)
        except UserError as exc:
            return f"**{exc}**", gr.skip()
        return (f"Saved ensemble {ensemble_id}: **{name}** (val {100 * scored['val']['accuracy']:.2f}%, "
                f"test {100 * scored['test']['accuracy']:.2f}%)", gr.update(choices=saved_choices(), value=ensemble_id))

    c["save"].click(save, [c["name"], c["runs"], *settings_inputs, *sliders], [c["message"], c["saved"]],
                    api_name="ensemble_save")

    def load_saved(ensemble_id):
        try:
            if ensemble_id is None:
                raise UserError("choose a saved ensemble first")
            saved = ctx.store.get_ensemble(int(ensemble_id))
            settings = lab.settings_of(saved)
            members = room.load(saved["members"])
            weights = np.asarray(saved["weights"], float)
            rows, reliability, agreement = figures(members, settings, list(weights))
        except UserError as exc:
            return (f"**{exc}**", *[gr.skip()] * (6 + MAX_SLIDERS + 3))
        candidates = lab.compatible_with(lab.candidates(ctx.store), members.ids)
        return (f"Loaded ensemble {saved['id']}: **{saved['name']}**", gr.update(choices=_choices(candidates),
                value=members.ids), settings.method, settings.space, settings.temperature, settings.tta, saved["name"],
                *slider_updates(members, weights / weights.max()), rows, reliability, agreement)

    c["load"].click(load_saved, c["saved"], [c["message"], c["runs"], *settings_inputs, c["name"], *sliders,
                                             c["metrics"], c["reliability"], c["agreement"]])

    def delete(ensemble_id):
        try:
            if ensemble_id is None:
                raise UserError("choose a saved ensemble first")
            ctx.store.delete_ensemble(int(ensemble_id))
        except UserError as exc:
            return f"**{exc}**", gr.skip()
        return f"Deleted ensemble {ensemble_id}.", gr.update(choices=saved_choices(), value=None)

    c["delete"].click(delete, c["saved"], [c["message"], c["saved"]])
    c.update(sliders=sliders, refresh_fn=refresh, refresh_inputs=[c["runs"]], refresh_outputs=refresh_outputs,
             move_fn=move, select_fn=select)
    return c
