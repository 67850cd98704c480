"""train-all: plan a preset's runs against the store (`plan_preset`) and queue them (`run_preset`).

Running a preset twice is safe: a run whose name and settings match a completed run is skipped,
an interrupted or cancelled one is resumed from its checkpoint, and only the rest start anew. A sweep's
run matches on its settings alone (its name may change as the sweep grows) and joins the sweep's tag.
A distillation run whose teacher is not there yet (an `[[ensembles]]` table of the preset whose runs have
not completed) waits: `save_ensembles` saves such an ensemble once its runs completed, and train-all plans
again. Reading the preset files is `workbench.specs.presets`.
"""

import time
from dataclasses import dataclass

from workbench.constants import RunKind, RunStatus
from workbench.errors import UserError
from workbench.specs import spec_class
from workbench.specs.run import RunSpec


@dataclass
class Step:
    action: str  # "new", "resume", "skip" or "wait" (a distillation whose teacher is not there yet)
    spec: RunSpec
    run_id: int = 0
    reason: str = ""
    tags: tuple = ()  # a sweep's tag


# settings that do not make another run (a distillation's teacher members: resolved from its teacher when queued)
NOT_COMPARED = ("name", "data_path", "tensorboard", "teacher_members")


def _comparable(spec_dict: dict, kind: str = RunSpec.kind) -> dict:
    if "model" in spec_dict:  # older rows: defaults
        spec_dict = spec_class(kind).from_dict(spec_dict).to_dict()
    return {k: v for k, v in spec_dict.items() if k not in NOT_COMPARED}


def plan_preset(specs: list, store, *, data_path=None) -> list:
    """What train-all will do for each run, given what the store already holds (`store` None: no store yet,
    every run is new). A sweep's runs match on their settings alone (the same name preferred), a list's on
    name and settings."""
    steps = []
    existing = [
        (run, _safe_comparable(run))
        for run in (store.list_runs(include_archived=True) if store is not None else [])
        if not run.get("parent_run")  # a snapshot's or average's row has its parent's settings
    ]
    tags = tuple(getattr(specs, "tags", ()))
    for spec in specs:
        if data_path and not spec.data_path:
            spec = spec.replace(data_path=str(data_path))
        wanted = _comparable(spec.to_dict(), spec.kind)
        same = [
            r
            for r, settings in existing
            if r["kind"] == spec.kind and settings == wanted and (tags or r["name"] == spec.name)
        ]
        same.sort(key=lambda r: (r["name"] == spec.name, r["id"]))
        latest = same[-1] if same else None
        if latest is None:
            steps.append(_new(spec, store, tags))
        elif latest["status"] == RunStatus.COMPLETED:
            steps.append(Step("skip", spec, latest["id"], RunStatus.COMPLETED, tags=tags))
        elif latest["status"] == RunStatus.DIVERGED:
            steps.append(Step("skip", spec, latest["id"], "diverged: change its learning rate to rerun", tags=tags))
        else:
            steps.append(Step("resume", spec, latest["id"], tags=tags))
    return steps


def _new(spec: RunSpec, store, tags: tuple) -> Step:
    """A new run's step; a distillation whose teacher does not resolve yet waits, saying why."""
    if spec.kind != RunKind.DISTILL:
        return Step("new", spec, tags=tags)
    try:
        if store is None:
            raise UserError(f"its teacher {getattr(spec, 'teacher', '?')} is not in a store yet")
        spec.resolved(store)
    except UserError as exc:
        return Step("wait", spec, reason=str(exc), tags=tags)
    return Step("new", spec, tags=tags)


def _safe_comparable(run: dict):
    try:
        return _comparable(run["spec"], run["kind"])
    except (UserError, TypeError, KeyError, ValueError):
        return None  # a row this version cannot read is no match


def save_ensembles(ensembles, store, out=print) -> list[int]:
    """Save each of a preset's `[[ensembles]]` (`workbench.specs.presets.PresetEnsemble`) not saved yet whose
    runs (the latest completed run of each name) all completed: their mean of probabilities, equal weights,
    as the Ensemble tab saves one. Returns the new ensembles' ids."""
    from workbench.ensemble import lab  # noqa: PLC0415 - SciPy: ensemble.calibration imports it (seconds); --help needs none

    saved_names = {e["name"] for e in store.list_ensembles()}
    completed = {r["name"]: r["id"] for r in store.list_runs(status=RunStatus.COMPLETED, order="id")}
    saved = []
    for ensemble in ensembles:
        if ensemble.name in saved_names or not all(m in completed for m in ensemble.members):
            continue
        members = lab.Lab(store).load([completed[m] for m in ensemble.members])
        scored = lab.score(members, [1.0] * len(members.ids), lab.Settings())
        saved.append(lab.save(store, members, scored, lab.Settings(), ensemble.name))
        out(
            f"saved ensemble {saved[-1]} {ensemble.name} (runs {', '.join(map(str, members.ids))}): "
            f"test {percent(scored['test']['accuracy'])}"
        )
    return saved


def run_preset(steps: list, store, *, queue, poll=1.0, out=print) -> int:
    """Queue every step on `queue` (the caller's: `workbench.cli.job_queue.open_job_queue`, which shuts it down;
    it runs them as devices allow) and report progress until all end."""
    run_ids = []
    for step in steps:
        if step.action != "new" and step.tags:  # a matching run from before joins the sweep
            tags = store.get_run(step.run_id).get("tags") or []
            if not set(step.tags) <= set(tags):
                store.update_run(step.run_id, tags=list(dict.fromkeys([*tags, *step.tags])))
        if step.action == "new":
            step.run_id = queue.submit(step.spec, tags=step.tags)
        elif step.action == "resume":
            queue.resume(step.run_id)
        if step.action in ("new", "resume"):
            run_ids.append(step.run_id)
    total_epochs = sum(s.spec.epochs for s in steps if s.action in ("new", "resume"))
    shown: dict[int, tuple[int, str]] = {}  # run id -> (epochs done, status) last printed
    try:
        while run_ids:
            done_epochs, changed = 0, False
            for position, run_id in enumerate(run_ids, 1):
                run = store.get_run(run_id)
                done_epochs += run["epochs_done"] or 0
                if shown.get(run_id) != (run["epochs_done"], run["status"]):
                    changed = True
                    shown[run_id] = (run["epochs_done"], run["status"])
                    out(
                        f"[{position}/{len(run_ids)}] run {run_id} {run['name']}: {run['status']}, "
                        f"epoch {run['epochs_done'] or 0}/{run['spec']['epochs']}, "
                        f"best val {percent(run['best_val_accuracy'])}"
                        + (f", test {percent(run['test_accuracy'])}" if run["test_accuracy"] is not None else "")
                    )
            if changed:
                out(f"overall: {done_epochs}/{total_epochs} epochs ({100 * done_epochs / max(1, total_epochs):.0f}%)")
            if all(queue.wait(r, timeout=0) for r in run_ids):
                break
            time.sleep(poll)
    except KeyboardInterrupt:
        queue.shutdown()
        out("cancelled; run train-all again to resume where it stopped")
        return 130
    finished = [store.get_run(r) for r in run_ids]
    failed = [r for r in finished if r["status"] != RunStatus.COMPLETED]
    waiting = sum(s.action == "wait" for s in steps)
    out(
        f"train-all: {len(finished) - len(failed)} completed, {len(failed)} not completed, "
        f"{sum(s.action == 'skip' for s in steps)} skipped"
        + (f", {waiting} waiting for their teacher" if waiting else "")
    )
    for run in failed:
        out(f"  run {run['id']} {run['name']}: {run['status']} {run['error'] or ''}".rstrip())
    return 1 if failed else 0


def percent(value) -> str:
    """An accuracy as the page shows it (a percentage, two decimals), '-' for none; the CLI's one format."""
    return "-" if value is None else f"{100 * value:.2f}%"
