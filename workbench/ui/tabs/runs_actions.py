"""The Runs tab's actions on the store, without Gradio: the leaderboard and its CSV, a run's details,
notes, tags, archiving, deletion and cloning, and the comparison figures. Each raises UserError
with what the user should do; `workbench.ui.tabs.runs` wires them to the tab."""

from __future__ import annotations

import time
from dataclasses import dataclass

from workbench.constants import ACTIVE_STATUSES, AuditAction, Derived, RunKind, RunStatus
from workbench.data.classes import class_names
from workbench.errors import UserError
from workbench.inspect.reviewed import ensembles_with_reviewed, with_reviewed
from workbench.specs.distill import DistillSpec, resolve_teacher
from workbench.specs.finetune import FinetuneSpec
from workbench.specs.flags import parse_tags
from workbench.specs.run import RunSpec
from workbench.ui import plots
from workbench.ui.forms import FORM_FIELDS, spec_to_fields
from workbench.ui.tabs.finetune import form_fields
from workbench.views import runs as rd


def load_runs(store) -> list[dict]:
    # runs a killed runner left running read as interrupted; each with its accuracy on the reviewed test set
    return with_reviewed(store, store.seen_runs(include_archived=True))


def with_live_time(store, runs: list[dict], now: float | None = None) -> list[dict]:
    """The runs, a running one with its training time so far in `train_seconds`."""
    now = time.time() if now is None else now
    return [
        {**r, "train_seconds": rd.running_seconds(r, store.epochs(r["id"]), now)}
        if r["status"] == RunStatus.RUNNING
        else r
        for r in runs
    ]


def leaderboard(store, filters: rd.LeaderboardFilters | None = None, runs=None) -> list[dict]:
    """The leaderboard's rows under `filters` (none: every run not archived, and the ensembles)."""
    runs = with_live_time(store, load_runs(store) if runs is None else runs)
    ensembles = ensembles_with_reviewed(store, store.list_ensembles())  # their reviewed test accuracy too
    return rd.leaderboard_rows(runs, ensembles, filters or rd.LeaderboardFilters())


def export_csv(store, filters: rd.LeaderboardFilters, shown=rd.COLUMNS, by: str = "") -> str:
    rows = leaderboard(store, filters)
    if not rows:
        raise UserError("the leaderboard is empty: nothing to export (check the filters)")
    path = str(rd.write_csv(shown, rd.rows_to_table(rows, shown)))
    store.record(by, AuditAction.EXPORT, "leaderboard", f"{len(rows)} rows as CSV")
    return path


@dataclass
class Clone:
    """What "Clone" puts into a form: the run's settings under a new name, and its tags."""

    tab: str  # the form the run came from: "train" or "finetune"
    fields: dict  # that form's values by field name
    tags: str  # the run's tags, as the form's tag box takes them
    command: str  # the spec's equivalent command line
    distill: dict | None = None  # a distillation's Distil box: teacher, temperature, alpha, distill_mode, command
    note: str = ""  # what the clone is of, or what stands in its way (a teacher gone)


def clone_values(store, choice) -> Clone:
    """The picked run's settings for its form. A snapshot's or average's row gives its parent run's (training
    them again makes it again); a distillation run's fill the Train form and its Distil box with the teacher
    it was given, said (with the reason) when that teacher can no longer teach: Distil refuses it then."""
    run = store.get_run(rd.chosen_run_id(choice))
    runs = store.seen_runs(include_archived=True)  # names and parents only: no reviewed accuracies to compute
    source, note = run, ""
    if run.get("parent_run"):
        parent = next((r for r in runs if r["id"] == run["parent_run"]), None)
        source = parent or {**run, "name": ""}
        note = (
            f"Run {run['id']} is {run['derived']} of run {run['parent_run']}"
            f"{'' if parent else ' (deleted)'}: these are that run's settings (training them trains the whole "
            f"run again, {'its weight average' if run['derived'] == Derived.AVERAGED else 'its snapshots'} with it)."
        )
    tags = ", ".join(run.get("tags") or [])
    try:
        if run.get("kind") == RunKind.FINETUNE:
            spec = FinetuneSpec.from_dict(run["spec"])
            spec = spec.replace(name=rd.fresh_name(source["name"] or spec.default_name(), (r["name"] for r in runs)))
            return Clone("finetune", form_fields(spec), tags, spec.to_cli(), note=note)
        spec_class = DistillSpec if run.get("kind") == RunKind.DISTILL else RunSpec
        run_spec = spec_class.from_dict(run["spec"])
        name = rd.fresh_name(source["name"] or run_spec.default_name(), (r["name"] for r in runs))
        run_spec = run_spec.replace(name=name)
    except (TypeError, UserError) as exc:
        raise UserError(f"run {run['id']}'s stored settings cannot be read ({exc})") from None
    fields = spec_to_fields(run_spec, FORM_FIELDS)
    if not isinstance(run_spec, DistillSpec):
        return Clone("train", fields, tags, run_spec.to_cli(), note=note)
    run_spec = run_spec.replace(teacher_members={})  # resolved again when queued, from the teacher's name
    box = dict(
        teacher=run_spec.teacher,
        temperature=run_spec.temperature,
        alpha=run_spec.alpha,
        distill_mode=run_spec.distill_mode,
        command=run_spec.to_cli(),  # the Distil box's; the form's own is the run without its teacher (Train)
    )
    twin = RunSpec.from_dict({k: getattr(run_spec, k) for k in FORM_FIELDS})
    note = " ".join(filter(None, (note, teacher_note(store, run, run_spec))))
    return Clone("train", fields, tags, twin.to_cli(), box, note)


def teacher_note(store, run: dict, spec: DistillSpec) -> str:
    """What a clone of distillation run `run` should know of its teacher `spec.teacher` today."""
    try:
        now = resolve_teacher(store, spec).teacher_members
    except UserError as exc:
        return (
            f"Run {run['id']}'s teacher {spec.teacher} cannot teach now ({exc}); **Distil** refuses it: "
            "choose another teacher in the Distil box."
        )
    before = run["spec"].get("teacher_members") or {}
    if set(now) != set(before):
        return (
            f"Teacher {spec.teacher} is now runs {', '.join(now)}; run {run['id']} was taught by runs "
            f"{', '.join(before) or '?'}. Press **Distil** to train with it."
        )
    return f"Teacher {spec.teacher} (runs {', '.join(now)}): press **Distil** to train with it (Train: without it)."


def save_notes_tags(store, choice, notes, tags, by: str = "") -> str:
    run_id = rd.chosen_run_id(choice)
    tag_list = parse_tags(tags)
    store.update_run(run_id, notes=str(notes or "").strip(), tags=tag_list)
    store.record(by, AuditAction.REVIEW, f"run {run_id}", f"tags: {', '.join(tag_list) or 'none'}")
    return f"Saved the notes and tags ({', '.join(tag_list) or 'none'}) of run {run_id}."


def toggle_archive(store, choice, by: str = "") -> str:
    run = store.get_run(rd.chosen_run_id(choice))
    store.archive_run(run["id"], not run["archived"])
    action = AuditAction.UNARCHIVE if run["archived"] else AuditAction.ARCHIVE
    store.record(by, action, f"run {run['id']}", run["name"])
    if run["archived"]:
        return f"Run {run['id']} is back on the leaderboard."
    return f'Archived run {run["id"]} (tick "show archived" to see it).'


def delete_run(store, queue, choice, sure: bool, by: str = "") -> str:
    """Delete the picked run with its files, and with it the results derived from it (its snapshots and
    average, runs of their own that name it as their parent: `Store.delete_run`), which the confirmation names."""
    run = store.get_run(rd.chosen_run_id(choice))
    active = set(queue.active()) if queue is not None and hasattr(queue, "active") else set()
    if run["status"] in ACTIVE_STATUSES or run["id"] in active:
        raise UserError(f"run {run['id']} is {run['status']}; cancel it in the Train tab before deleting it")
    derived = store.derived_runs(run["id"])
    listed = ", ".join(f"{r['id']}: {r['derived']}" for r in derived)
    with_derived = (
        f" with its {len(derived)} derived run{'s' if len(derived) > 1 else ''} ({listed})" if derived else ""
    )
    if not sure:
        raise UserError(f'tick "I am sure" to delete run {run["id"]} ({run["name"]}){with_derived} and the files')
    store.delete_run(run["id"])
    store.record(by, AuditAction.DELETE, f"run {run['id']}", run["name"] + with_derived)
    return f"Deleted run {run['id']} ({run['name']}){with_derived} and the files."


def run_details(store, choice) -> tuple[str, str, str, str]:
    """Notes, tags text, archive button label and a Markdown summary of the picked run."""
    if not choice:
        return "", "", "Archive", ""
    run = store.get_run(rd.chosen_run_id(choice))
    lines = [
        f"**Run {rd.run_label(run)}** · {run['status']}"
        f"{' · archived' if run['archived'] else ''} · {run['epochs_done']} epoch(s)"
    ]
    try:
        lines.append(f"`{RunSpec.from_dict(run['spec']).to_cli()}`")
    except (UserError, TypeError, ValueError):
        pass
    if run.get("error"):
        lines.append(f"Error: {str(run['error']).strip().splitlines()[-1][:300]}")
    return (
        run.get("notes") or "",
        ", ".join(run.get("tags") or []),
        "Unarchive" if run["archived"] else "Archive",
        "\n\n".join(lines),
    )


def curves_figure(store, selection, metric, x_axis, smoothing):
    series = [(store.get_run(i), store.epochs(i)) for i in rd.chosen_run_ids(selection)]
    return plots.curves(series, metric, x_axis, float(smoothing or 0))


def per_class_figure(store, selection):
    results, missing = [], []
    for run_id in rd.chosen_run_ids(selection):
        run = store.get_run(run_id)
        if "test" not in store.prediction_splits(run_id):
            missing.append(str(run_id))
            continue
        logits = store.load_logits(run_id, "test")
        accuracy = rd.per_class_accuracy(logits, store.load_labels(run_id, "test"), logits.shape[1])
        results.append((run, class_names(store, run, logits.shape[1]), accuracy))
    fig = plots.per_class(results)
    if missing and results:
        fig.add_annotation(
            text=f"no test predictions stored for run(s) {', '.join(missing)}",
            showarrow=False,
            xref="paper",
            yref="paper",
            x=0,
            y=-0.25,
            xanchor="left",
        )
    return fig


def overview_figures(store, metric, group_by, show_archived=False):
    runs = rd.filter_runs(load_runs(store), status=(RunStatus.COMPLETED,), show_archived=bool(show_archived))
    return (
        plots.params_scatter(runs, metric),
        plots.grouped_accuracy(rd.group_accuracy(runs, group_by, metric), group_by, metric),
    )
