"""A benchmark's store that can outlive one sitting: `--keep DIR` for the hours-long full-size benchmarks (and
the runs, ensembles and ensemble accuracy bench/distill.py and bench/snapshots.py share).

bench/distill.py and bench/snapshots.py at the issue's size train a dozen fast-recipe runs: hours of a 2-core
CPU, longer than a session may last. With --keep DIR they train into DIR/<bench>.db instead of a temporary
folder, and a second invocation (after a kill, a reboot, the next day) picks up where the first stopped: each
run is looked up by its name, reused when it completed, resumed from its last checkpoint when it was stopped
(the job queue marks a run a killed process left running as interrupted when it opens the store), trained when
absent. A run is reused only if its settings are the ones asked for now (a fingerprint tag): a folder trained
with other settings is refused, not silently mixed in. Without --keep: a temporary folder, as before.
"""

import contextlib
import hashlib
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path

from store import Store
from workbench.constants import RunStatus
from workbench.ensemble import combine as ens
from workbench.ensemble import lab
from workbench.jobs.queue import JobQueue
from workbench.specs.base import Spec

TAG = "bench-settings:"


@contextlib.contextmanager
def bench_store(keep: Path | None, name: str) -> Iterator[tuple[Store, JobQueue]]:
    """(store, in-process job queue) in `keep` (created) or in a temporary folder removed afterwards."""
    with contextlib.ExitStack() as stack:
        if keep is None:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        else:
            folder = Path(keep)
            folder.mkdir(parents=True, exist_ok=True)
        store = stack.enter_context(Store(folder / f"{name}.db"))
        queue = JobQueue(store, devices=[], isolate=False)
        try:
            yield store, queue
        finally:
            queue.shutdown()


def fingerprint(spec: Spec) -> str:
    return TAG + hashlib.sha256(json.dumps(spec.to_dict(), sort_keys=True).encode()).hexdigest()[:16]


def train(queue: JobQueue, store: Store, spec: Spec, name: str) -> dict:
    """The completed run called `name` with `spec`'s settings: the stored one, a stopped one resumed, or a
    new one trained. Exits with the reason when a run ends otherwise, or when `name` has other settings."""
    spec = spec.replace(name=name)
    tag = fingerprint(spec)
    found = [r for r in store.list_runs(include_archived=True) if r["name"] == name and not r.get("derived")]
    last = found[-1] if found else None
    if last is not None and tag not in last["tags"]:
        raise SystemExit(
            f"{store.path} holds a run {name!r} trained with other settings: give another --keep folder "
            "(or delete that one) to benchmark these"
        )
    if last is not None and last["status"] == RunStatus.COMPLETED:
        _said(last, " (kept)")
        return last
    if last is not None:
        run_id = last["id"]
        epoch = queue.resume(run_id)
        print(f"  run {run_id} {name}: resumed from epoch {epoch}", flush=True)
    else:
        run_id = queue.submit(spec, tags=[tag])
    queue.wait(run_id)
    run = store.get_run(run_id)
    if run["status"] != RunStatus.COMPLETED:
        raise SystemExit(f"run {run_id} ({name}) {run['status']}: {run['error']}")
    _said(run)
    return run


def _said(run: dict, how: str = "") -> None:
    print(
        f"  run {run['id']} {run['name']}: test {run['test_accuracy']:.2%}, {run['train_seconds']:.0f} s{how}",
        flush=True,
    )


def ensemble(store: Store, name: str, members: list[int]) -> int:
    """The saved mean-of-probabilities ensemble `name` of `members`: the kept one, or saved now."""
    for row in store.list_ensembles():
        if row["name"] == name and list(row["members"]) == members:
            return int(row["id"])
    return store.save_ensemble(name, "mean-prob", members, [1 / len(members)] * len(members))


def ensemble_accuracy(store: Store, run_ids: list[int]) -> float:
    """Test accuracy (plain view) of the mean of the runs' probabilities."""
    probs = ens.weighted_mean(ens.member_probs([store.load_logits(r, "test") for r in run_ids]))
    return ens.evaluate(probs, store.load_labels(run_ids[0], "test"))["accuracy"]


def searched_ensemble_accuracy(store: Store, run_ids: list[int]) -> tuple[float, list[float]]:
    """(test accuracy, weights) of the runs' weighted mean of probabilities with the weights the Ensemble tab's
    grid search chooses on the validation split (workbench.ensemble.lab): what a user of the tab would get."""
    members = lab.Lab(store).load(run_ids)
    weights = lab.search(members, lab.Settings(), "grid")["weights"]
    return lab.score(members, weights, lab.Settings(), with_members=False)["test"]["accuracy"], weights


def seconds(store: Store, runs: list[dict]) -> str:
    """The runs' training seconds as the store clocked them (every attempt's, a killed one's too, and the final
    evaluation's) and, of those, their epochs' (what a resumed run repeats is not counted twice there)."""
    total = sum(r["train_seconds"] or 0 for r in runs)
    epochs = sum(e["seconds"] or 0 for r in runs for e in store.epochs(r["id"]))
    return f"{total:.0f} s, of which epochs {epochs:.0f} s"
