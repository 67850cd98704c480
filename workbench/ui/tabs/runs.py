"""The Runs tab: leaderboard with filters, curve/per-class/overview comparisons and per-run actions.

`create_runs_tab(ctx)` builds the tab's contents inside the caller's `gr.Tab` and returns its
components plus `refresh_fn` / `refresh_inputs` / `refresh_outputs` for the app to hook to page load
and the tab's opening; `wire_clone(ctx, runs, tabs, targets)` connects "Clone" once the Train and
Fine-tune tabs exist. The store-facing actions (`clone_values`, `save_notes_tags`,
`toggle_archive`, `delete_run`, `export_csv`) are plain functions raising UserError.
"""
from __future__ import annotations

import functools
import logging

import gradio as gr

from workbench.errors import UserError
from workbench.specs.run import RunSpec
from workbench.ui import plots
from workbench.ui.views import runs as rd
from workbench.ui.forms import FORM_FIELDS, spec_to_fields

log = logging.getLogger(__name__)
ACTIVE = ("running", "queued")


# -- store-facing actions (no Gradio) ------------------------------------------------------------
def load_runs(store) -> list[dict]:
    return store.list_runs(include_archived=True)


def leaderboard(store, status=(), model=(), loss=(), tag=(), show_archived=False,
                show_ensembles=True, sort_by=rd.DEFAULT_SORT, runs=None) -> list[dict]:
    runs = load_runs(store) if runs is None else runs
    return rd.leaderboard_rows(runs, store.list_ensembles(), status=status, model=model, loss=loss,
                               tag=tag, show_archived=bool(show_archived),
                               show_ensembles=bool(show_ensembles), sort_by=sort_by or rd.DEFAULT_SORT)


def export_csv(store, *filters) -> str:
    rows = leaderboard(store, *filters)
    if not rows:
        raise UserError("the leaderboard is empty: nothing to export (check the filters)")
    return str(rd.write_csv(rd.COLUMNS, rd.rows_to_table(rows)))


def clone_values(store, choice) -> tuple:
    """(the tab whose form the run came from: "train" or "finetune", that form's values for its spec
    by field name, the spec's equivalent command line)."""
    run = store.get_run(rd.parse_choice(choice))
    finetune = run.get("kind") == "finetune"
    try:
        if finetune:
            from workbench.specs.finetune import FinetuneSpec
            from workbench.ui.tabs.finetune import form_fields

            spec = FinetuneSpec.from_dict(run["spec"])
            return "finetune", form_fields(spec), spec.to_cli()
        spec = RunSpec.from_dict(run["spec"])
        return "train", spec_to_fields(spec, FORM_FIELDS), spec.to_cli()
    except (TypeError, UserError) as exc:
        raise UserError(f"run {run['id']}'s stored settings cannot be read ({exc})") from None


def save_notes_tags(store, choice, notes, tags) -> str:
    run_id = rd.parse_choice(choice)
    tag_list = rd.parse_tags(tags)
    store.update_run(run_id, notes=str(notes or "").strip(), tags=tag_list)
    return f"Saved the notes and tags ({', '.join(tag_list) or 'none'}) of run {run_id}."


def toggle_archive(store, choice) -> str:
    run = store.get_run(rd.parse_choice(choice))
    store.archive_run(run["id"], not run["archived"])
    if run["archived"]:
        return f"Run {run['id']} is back on the leaderboard."
    return f"Archived run {run['id']} (tick \"show archived\" to see it)."


def delete_run(store, queue, choice, sure: bool) -> str:
    run = store.get_run(rd.parse_choice(choice))
    active = set(queue.active()) if queue is not None and hasattr(queue, "active") else set()
    if run["status"] in ACTIVE or run["id"] in active:
        raise UserError(f"run {run['id']} is {run['status']}; cancel it in the Train tab before deleting it")
    if not sure:
        raise UserError(f"tick \"I am sure\" to delete run {run['id']} ({run['name']}) and its files")
    store.delete_run(run["id"])
    return f"Deleted run {run['id']} ({run['name']}) and its files."


def run_details(store, choice) -> tuple[str, str, str, str]:
    """Notes, tags text, archive button label and a Markdown summary of the picked run."""
    if not choice:
        return "", "", "Archive", ""
    run = store.get_run(rd.parse_choice(choice))
    lines = [f"**Run {run['id']}: {run['name']}** · {run['status']}"
             f"{' · archived' if run['archived'] else ''} · {run['epochs_done']} epoch(s)"]
    try:
        lines.append(f"`{RunSpec.from_dict(run['spec']).to_cli()}`")
    except (UserError, TypeError, ValueError):
        pass
    if run.get("error"):
        lines.append(f"Error: {str(run['error']).strip().splitlines()[-1][:300]}")
    return (run.get("notes") or "", ", ".join(run.get("tags") or []),
            "Unarchive" if run["archived"] else "Archive", "\n\n".join(lines))


def curves_figure(store, selection, metric, x_axis, smoothing):
    series = [(store.get_run(i), store.epochs(i)) for i in rd.parse_choices(selection)]
    return plots.curves(series, metric, x_axis, float(smoothing or 0))


def per_class_figure(store, selection):
    results, missing = [], []
    for run_id in rd.parse_choices(selection):
        run = store.get_run(run_id)
        if "test" not in store.prediction_splits(run_id):
            missing.append(str(run_id))
            continue
        logits = store.load_logits(run_id, "test")
        accuracy = rd.per_class_accuracy(logits, store.load_labels(run_id, "test"), logits.shape[1])
        results.append((run, rd.class_names(rd.run_dataset(run), logits.shape[1]), accuracy))
    fig = plots.per_class(results)
    if missing and results:
        fig.add_annotation(text=f"no test predictions stored for run(s) {', '.join(missing)}",
                           showarrow=False, xref="paper", yref="paper", x=0, y=-0.25, xanchor="left")
    return fig


def overview_figures(store, metric, group_by, show_archived=False):
    runs = rd.filter_runs(load_runs(store), status=("completed",), show_archived=bool(show_archived))
    return (plots.params_scatter(runs, metric),
            plots.grouped_accuracy(rd.group_accuracy(runs, group_by, metric), group_by, metric))


# -- Gradio plumbing -----------------------------------------------------------------------------
def _message(exc: Exception) -> str:
    if isinstance(exc, UserError):
        return str(exc)
    log.exception("Runs tab action failed")
    return f"Something went wrong ({type(exc).__name__}: {exc}); see the server log."


def _guarded(n_outputs: int, status_at: int | None = None, figure_title: str | None = None):
    """Turn any exception into a warning toast plus a status line (or an explanatory figure)."""
    def decorate(fn):
        @functools.wraps(fn)
        def wrapper(*args):
            try:
                return fn(*args)
            except Exception as exc:  # noqa: BLE001 - shown to the user, never a traceback
                text = _message(exc)
                gr.Warning(text)
                if figure_title is not None:
                    return plots.empty_figure(figure_title, text)
                out = [gr.skip()] * n_outputs
                if status_at is not None:
                    out[status_at] = f"⚠️ {text}"
                return out[0] if n_outputs == 1 else tuple(out)
        return wrapper
    return decorate


def _choices_update(options, current):
    """New choices for a multiselect filter; the value is left alone (the current one stays a choice)."""
    return gr.update(choices=sorted(set(options) | set(current or [])))


def make_refresh_fn(ctx):
    """`refresh_fn(status, model, loss, tag, show_archived, show_ensembles, sort_by, selection,
    pick)` -> (table, summary, status, model, loss, tag, selection, pick) updates."""
    store = ctx.store

    def refresh_fn(status=(), model=(), loss=(), tag=(), show_archived=False, show_ensembles=True,
                   sort_by=rd.DEFAULT_SORT, selection=(), pick=None):
        runs = load_runs(store)
        rows = leaderboard(store, status, model, loss, tag, show_archived, show_ensembles,
                           sort_by, runs=runs)
        options = rd.filter_options(runs)
        choices = [rd.run_choice(r) for r in sorted(runs, key=lambda r: -r["id"])]
        by_id = {r["id"]: rd.run_choice(r) for r in runs}
        ids = _ids(selection)
        kept = [by_id[i] for i in ids if i in by_id]
        pick_ids = _ids([pick] if pick else [])
        pick_value = by_id.get(pick_ids[0]) if pick_ids else None
        # values are only sent when a run went away, so a timer tick never fights a user's edit
        selection_update = gr.update(choices=choices, **({"value": kept} if len(kept) < len(ids) else {}))
        pick_update = gr.update(choices=choices, **({"value": pick_value} if pick and not pick_value else {}))
        if not runs and not rows:
            summary = f"### {rd.EMPTY_MESSAGE}"
        else:
            hidden = sum(1 for r in runs if r["archived"]) if not show_archived else 0
            n_runs = sum(1 for r in rows if r["Kind"] != "ensemble")
            summary = (f"{n_runs} of {len(runs)} run(s) shown"
                       f"{f', {hidden} archived hidden' if hidden else ''}"
                       f" · {len(rows) - n_runs} ensemble(s)")
        return (gr.update(value=rd.rows_to_table(rows)), summary,
                _choices_update(options["status"], status), _choices_update(options["model"], model),
                _choices_update(options["loss"], loss), _choices_update(options["tag"], tag),
                selection_update, pick_update)
    return refresh_fn


def _ids(choices) -> list[int]:
    ids = []
    for choice in choices or []:
        try:
            ids.append(rd.parse_choice(choice))
        except UserError:
            pass
    return ids


def create_runs_tab(ctx) -> dict:
    """Build the Runs tab inside the caller's `gr.Tab`; returns its components by name."""
    store = ctx.store
    c = {}
    c["summary"] = gr.Markdown("Loading runs... (press Refresh if this stays)")
    with gr.Row():
        c["status_filter"] = gr.Dropdown([], value=[], multiselect=True, label="Status")
        c["model_filter"] = gr.Dropdown([], value=[], multiselect=True, label="Model")
        c["loss_filter"] = gr.Dropdown([], value=[], multiselect=True, label="Loss")
        c["tag_filter"] = gr.Dropdown([], value=[], multiselect=True, label="Tags (any)")
    with gr.Row():
        c["show_archived"] = gr.Checkbox(False, label="Show archived")
        c["show_ensembles"] = gr.Checkbox(True, label="Show ensembles",
                                          info="hidden while a status/model/loss/tag filter is on")
        c["sort_by"] = gr.Dropdown(list(rd.SORTS), value=rd.DEFAULT_SORT, label="Sort by")
        c["refresh"] = gr.Button("Refresh", variant="secondary")
    c["leaderboard"] = gr.Dataframe(
        value=[], headers=list(rd.COLUMNS), datatype=rd.DATATYPES, interactive=False, wrap=True,
        max_height=480, show_search="search", pinned_columns=3, label="Leaderboard (click a column "
        "header to sort, a row to pick the run below)", elem_id="runs-leaderboard")
    with gr.Row():
        c["export"] = gr.Button("Export table as CSV", size="sm")
        c["export_file"] = gr.File(label="Leaderboard CSV", visible=False, interactive=False)

    with gr.Accordion("Compare runs", open=True):
        c["selection"] = gr.Dropdown([], value=[], multiselect=True, label="Runs to compare",
                                     info="pick runs to overlay their curves and per-class accuracy")
        with gr.Row():
            c["metric"] = gr.Dropdown(list(rd.CURVE_METRICS), value="Validation accuracy", label="Metric")
            c["x_axis"] = gr.Radio(list(rd.X_AXES), value="Epoch", label="X axis")
            c["smoothing"] = gr.Slider(0, 0.95, value=0, step=0.05, label="Smoothing (EMA)")
        c["curves"] = gr.Plot(plots.curves([]), label="Curves")
        c["per_class"] = gr.Plot(plots.per_class([]), label="Per-class accuracy")
        with gr.Row():
            c["accuracy_metric"] = gr.Dropdown(list(rd.ACCURACY_METRICS), value="Test accuracy",
                                               label="Accuracy for the overview")
            c["group_by"] = gr.Radio(list(rd.GROUP_BY), value="Loss", label="Group by")
        with gr.Row():
            c["scatter"] = gr.Plot(label="Parameters vs accuracy")
            c["groups"] = gr.Plot(label="Accuracy by group")

    with gr.Accordion("Manage a run", open=True):
        with gr.Row():
            c["pick"] = gr.Dropdown([], value=None, label="Run", scale=3, elem_id="runs-pick")
            c["clone"] = gr.Button("Clone into its form", variant="primary", scale=1, elem_id="runs-clone")
        c["details"] = gr.Markdown()
        with gr.Row():
            c["notes"] = gr.Textbox(label="Notes", lines=2, scale=3)
            c["tags"] = gr.Textbox(label="Tags", placeholder="baseline, seed-sweep", scale=2,
                                   info="comma-separated")
        with gr.Row():
            c["save"] = gr.Button("Save notes and tags")
            c["archive"] = gr.Button("Archive")
            c["sure"] = gr.Checkbox(False, label="I am sure")
            c["delete"] = gr.Button("Delete run and files", variant="stop")
        c["action_status"] = gr.Markdown()

    filters = [c[k] for k in ("status_filter", "model_filter", "loss_filter", "tag_filter",
                              "show_archived", "show_ensembles", "sort_by")]
    refresh_inputs = filters + [c["selection"], c["pick"]]
    refresh_outputs = [c["leaderboard"], c["summary"], c["status_filter"], c["model_filter"],
                       c["loss_filter"], c["tag_filter"], c["selection"], c["pick"]]
    raw_refresh = make_refresh_fn(ctx)
    refresh_fn = _guarded(len(refresh_outputs), status_at=1)(raw_refresh)
    curve_inputs = [c["selection"], c["metric"], c["x_axis"], c["smoothing"]]
    overview_inputs = [c["accuracy_metric"], c["group_by"], c["show_archived"]]

    curves_fn = _guarded(1, figure_title="Curves")(functools.partial(curves_figure, store))
    per_class_fn = _guarded(1, figure_title="Per-class test accuracy")(functools.partial(per_class_figure, store))

    @_guarded(2)
    def overview_fn(metric, group_by, show_archived):
        return overview_figures(store, metric, group_by, show_archived)

    quiet = dict(show_progress="hidden")
    private = dict(show_progress="hidden", api_visibility="private")
    gr.on([c["refresh"].click, c["sort_by"].input, c["show_archived"].input,
           c["show_ensembles"].input, c["status_filter"].input, c["model_filter"].input,
           c["loss_filter"].input, c["tag_filter"].input],
          refresh_fn, refresh_inputs, refresh_outputs, api_name="runs_refresh", **quiet)
    gr.on([c["refresh"].click, c["accuracy_metric"].input, c["group_by"].input,
           c["show_archived"].input], overview_fn, overview_inputs, [c["scatter"], c["groups"]],
          api_name="runs_overview", **quiet)
    gr.on([c["refresh"].click, c["selection"].input, c["metric"].input, c["x_axis"].input,
           c["smoothing"].input], curves_fn, curve_inputs, c["curves"], api_name="runs_curves", **quiet)
    c["selection"].input(per_class_fn, [c["selection"]], c["per_class"], api_name="runs_per_class", **quiet)

    @_guarded(2, status_at=1)
    def export_fn(*values):
        return gr.update(value=export_csv(store, *values), visible=True), ""

    c["export"].click(export_fn, filters, [c["export_file"], c["action_status"]], api_name="runs_export")

    @_guarded(4)
    def details_fn(choice):
        notes, tags, label, details = run_details(store, choice)
        return notes, tags, gr.update(value=label), details

    details = dict(fn=details_fn, inputs=[c["pick"]], show_progress="hidden",
                   outputs=[c["notes"], c["tags"], c["archive"], c["details"]])
    c["pick"].input(**details, api_name="runs_details")

    def row_selected(evt: gr.SelectData):
        row = evt.row_value or []
        if len(row) < 3 or row[0] == "ensemble" or row[1] is None:
            return gr.skip()
        return f"{int(row[1])}: {row[2]}"

    c["leaderboard"].select(row_selected, None, c["pick"], **private).then(**details, api_visibility="private")

    @_guarded(1, status_at=0)
    def save_fn(choice, notes, tags):
        return save_notes_tags(store, choice, notes, tags)

    @_guarded(1, status_at=0)
    def archive_fn(choice):
        return toggle_archive(store, choice)

    @_guarded(2, status_at=0)
    def delete_fn(choice, sure):
        return delete_run(store, ctx.queue, choice, sure), False

    after = dict(fn=refresh_fn, inputs=refresh_inputs, outputs=refresh_outputs, **private)
    details.update(api_visibility="private")
    c["save"].click(save_fn, [c["pick"], c["notes"], c["tags"]], c["action_status"],
                    api_name="runs_save").then(**after)
    c["archive"].click(archive_fn, [c["pick"]], c["action_status"], api_name="runs_archive").then(
        **after).then(**details)
    c["delete"].click(delete_fn, [c["pick"], c["sure"]], [c["action_status"], c["sure"]],
                      api_name="runs_delete").then(**after).then(**details)

    c.update(refresh_fn=refresh_fn, refresh_inputs=refresh_inputs, refresh_outputs=refresh_outputs,
             curves_fn=curves_fn, curves_inputs=curve_inputs, per_class_fn=per_class_fn,
             overview_fn=overview_fn, overview_inputs=overview_inputs,
             overview_outputs=[c["scatter"], c["groups"]], filters=filters)
    return c


TITLES = {"train": "Train", "finetune": "Fine-tune"}  # the tabs "Clone" fills, as the page names them


def wire_clone(ctx, runs: dict, tabs, targets: dict):
    """Runs' "Clone" fills the form the run came from (`targets`: tab id -> its FormTab) and its command
    preview (written here, not left to the form's change events, which a busy page can run with
    half-updated values), switches to that tab and turns on that tab's live-panel timer (a tab switched
    to by code fires no select event); the other form is left as it is."""
    status = runs["action_status"]
    outputs = [*(component for target in targets.values() for component in target.form.values()),
               *(target.timer for target in targets.values()), *(target.command for target in targets.values()),
               tabs, status]

    @_guarded(len(outputs), status_at=outputs.index(status))
    def clone_fn(choice):
        tab, fields, command = clone_values(ctx.store, choice)
        form = targets[tab].form
        return {**{form[name]: value for name, value in fields.items()},
                **{target.timer: gr.Timer(active=name == tab) for name, target in targets.items()},
                targets[tab].command: command, tabs: gr.Tabs(selected=tab),
                status: f"Cloned run {rd.parse_choice(choice)} into the {TITLES[tab]} form: adjust it and start a run."}

    runs["clone"].click(clone_fn, [runs["pick"]], outputs, api_name="runs_clone")
