"""What a run's lineage changes around it, on store rows alone (no training): a distillation's time estimate
counts its teacher, Clone of a distillation run keeps its teacher (or says why it cannot), Clone of a
snapshot's row gives its parent's settings, deleting a run takes its snapshots and average along in one
transaction (and a deleted teacher leaves its student's lineage readable), and a distillation is refused on
a Ray cluster."""

import sqlite3

import pytest
from conftest import completed_run

from workbench.constants import Derived, snapshot_label
from workbench.errors import UserError
from workbench.jobs.estimate import estimate
from workbench.jobs.ray_backend import RayBackend
from workbench.specs import DistillSpec, RunSpec
from workbench.training.runners import teacher_dir
from workbench.ui.tabs import runs_actions as ra
from workbench.views import runs as rd

RECIPE = dict(model="resnet20", epochs=3, batch_size=128, schedule="cosine", dataset="cifar10", gpus=0)


def teacher_run(store, name: str, model: str = "resnet20") -> int:
    """A completed run that may teach: its spec, split and a checkpoint file on disk."""
    run_id = completed_run(store, name, RunSpec.from_dict({**RECIPE, "model": model}).to_dict(), split_id="s0")
    path = store.run_dir(run_id) / "model.keras"
    path.write_bytes(b"not read by these tests")
    store.update_run(run_id, checkpoint_path=str(path))
    return run_id


def student(teacher: str, **changes) -> DistillSpec:
    return DistillSpec.from_dict({**RECIPE, "teacher": teacher, **changes}).validate()


class _Queue:
    def active(self):
        return []


def test_a_distillations_estimate_counts_its_teachers_passes(store):
    members = [teacher_run(store, f"t{i}") for i in range(3)]
    store.save_ensemble("one", "mean-prob", members[:1], [1.0])
    store.save_ensemble("three", "mean-prob", members, [1.0, 1.0, 1.0])
    twin = estimate(RunSpec.from_dict(RECIPE).validate(), store, 0)
    one, three = (estimate(student(f"ensemble:{name}"), store, 0) for name in ("one", "three"))
    cached = estimate(student("ensemble:three", distill_mode="cached"), store, 0)
    print("twin", twin.seconds, "one", one.seconds, "three", three.seconds, "cached", cached.seconds)
    assert twin.seconds < one.seconds < three.seconds
    # online: each member loaded and traced, and its forward pass of every training batch: linear in members
    assert three.seconds - twin.seconds == pytest.approx(3 * (one.seconds - twin.seconds), rel=1e-6)
    # one member's passes per epoch: a share of the student's epoch, less than half (a forward pass is about a
    # third of a training step; resnet's shipped figures measured a sixth)
    share = (one.per_image - twin.per_image) / twin.per_image
    assert 0.05 < share < 0.5, share
    assert one.start > twin.start and "teacher's 3 networks (online)" in three.source
    # cached: one pass of the three over the training images before the first epoch, none in the epochs
    assert cached.per_image == pytest.approx(twin.per_image) and cached.start > three.start
    assert twin.seconds < cached.seconds < three.seconds  # one pass instead of three epochs of passes
    # a bigger teacher costs more; one that cannot be found is said, not counted
    wide = teacher_run(store, "wide", model="wrn_16_8")
    assert estimate(student(f"run:{wide}"), store, 0).seconds > one.seconds
    gone = estimate(student("ensemble:nope"), store, 0)
    assert gone.seconds == pytest.approx(twin.seconds) and "teacher's passes are not counted" in gone.source


def test_clone_of_a_distillation_keeps_its_teacher_or_says_why_it_cannot(store):
    members = [teacher_run(store, f"t{i}") for i in range(2)]
    ensemble = store.save_ensemble("pair", "mean-prob", members, [1.0, 1.0])
    spec = student("ensemble:pair", temperature=2.0, alpha=0.5)
    resolved = {str(m): 0.5 for m in members}
    run_id = completed_run(store, "taught", {**spec.to_dict(), "teacher_members": resolved}, kind="distill")
    clone = ra.clone_values(store, run_id)
    assert clone.tab == "train" and clone.fields["model"] == "resnet20" and clone.fields["name"] == "taught-2"
    command = clone.distill.pop("command")
    assert clone.distill == dict(teacher="ensemble:pair", temperature=2.0, alpha=0.5, distill_mode="online")
    assert command.startswith("python -m workbench distill") and "--teacher ensemble:pair" in command
    assert "--teacher-members" not in command  # resolved again when queued
    assert clone.command.startswith("python -m workbench train") and "--teacher" not in clone.command  # the twin
    assert "press **Distil**" in clone.note
    store.delete_ensemble(ensemble)
    gone = ra.clone_values(store, run_id)
    assert gone.distill["teacher"] == "ensemble:pair"  # kept as it was, and said: Distil refuses it
    assert "teacher ensemble:pair cannot teach now (no ensemble 'pair'" in gone.note and "choose another" in gone.note
    with pytest.raises(UserError, match="no ensemble 'pair'"):
        DistillSpec.from_dict({**RECIPE, **{k: v for k, v in gone.distill.items() if k != "command"}}).resolved(store)
    # a teacher run deleted: the clone names it; the student's lineage still reads as it was
    by_run = {**student(f"run:{members[0]}").to_dict(), "teacher_members": {str(members[0]): 1.0}}
    single = completed_run(store, "by-run", by_run, kind="distill")
    ra.delete_run(store, _Queue(), members[0], True)
    assert f"run {members[0]} no longer exists" in ra.clone_values(store, single).note
    with pytest.raises(UserError, match=f"teacher run {members[0]} was deleted since this run was queued"):
        teacher_dir(store, members[0])  # what a resume of the student says
    row = store.get_run(single)
    assert rd.lineage(row) == f"taught by run:{members[0]} (run {members[0]}), online, T 2.0, alpha 0.5"
    assert [r["ID"] for r in ra.leaderboard(store) if r["ID"] == single]  # the leaderboard still builds


def derived_family(store) -> tuple[int, list[int]]:
    """A completed run with two snapshots and an average, each with logits and a folder with a file."""
    import numpy as np

    labels = np.arange(20) % 4
    spec = RunSpec.from_dict({**RECIPE, "snapshots": 3, "average_last": 2}).to_dict()
    parent = completed_run(store, "parent", spec, logits={"test": labels}, rng=np.random.default_rng(0), split_id="s")
    derived = []
    for label in (snapshot_label(1), snapshot_label(2), Derived.AVERAGED):
        run_id = store.derived_run(parent, label, f"run {parent} · {label}")
        store.save_logits(run_id, "test", np.eye(4, dtype=np.float32)[labels], labels)
        store.set_status(run_id, "completed")
        derived.append(run_id)
    for run_id in (parent, *derived):
        (store.run_dir(run_id) / "model.keras").write_bytes(b"x")
    return parent, derived


def test_clone_of_a_snapshot_row_gives_its_parents_settings(store):
    parent, derived = derived_family(store)
    clone = ra.clone_values(store, derived[1])
    assert clone.fields["name"] == "parent-2" and clone.fields["snapshots"] == 3 and clone.distill is None
    assert clone.note.startswith(f"Run {derived[1]} is snapshot 2 of run {parent}: these are that run's settings")


def test_deleting_a_run_deletes_its_snapshots_and_average_in_one_transaction(store):
    parent, derived = derived_family(store)
    other, _ = derived_family(store)
    folders = [store.files_root / f"run-{r}" for r in (parent, *derived)]
    # a failure inside the delete (here: SQLite refusing the parent's row) leaves every row and folder
    store.db.execute(
        f"CREATE TEMP TRIGGER refuse BEFORE DELETE ON runs WHEN old.id = {parent} "
        "BEGIN SELECT RAISE(ABORT, 'killed'); END"
    )
    with pytest.raises(sqlite3.IntegrityError, match="killed"):
        store.delete_run(parent)
    assert [r["id"] for r in store.derived_runs(parent)] == derived and all(f.is_dir() for f in folders)
    assert all(store.prediction_splits(r) == ["test"] for r in derived)  # their logits too
    store.db.execute("DROP TRIGGER refuse")
    # the confirmation names what goes with it
    with pytest.raises(
        UserError, match=rf"delete run {parent} \(parent\) with its 3 derived runs \({derived[0]}: snapshot 1"
    ):
        ra.delete_run(store, _Queue(), parent, False)
    said = ra.delete_run(store, _Queue(), parent, True)
    assert (
        f"with its 3 derived runs ({derived[0]}: snapshot 1, {derived[1]}: snapshot 2, {derived[2]}: averaged)" in said
    )
    ids = {r["id"] for r in store.list_runs(include_archived=True)}
    assert not ids & {parent, *derived} and not any(f.exists() for f in folders)
    left_rows = store.list_runs(include_archived=True)
    assert all(r["parent_run"] in ids for r in left_rows if r["parent_run"])  # no row whose parent is gone
    assert len(store.derived_runs(other)) == 3  # the other family is untouched
    # a delete killed after its commit leaves a folder no row names: the next delete removes it
    left = store.files_root / f"run-{parent}"
    left.mkdir()
    (left / "model.keras").write_bytes(b"x")
    store.delete_run(other)
    assert not left.exists() and not store.list_runs(include_archived=True)
    # deleting a snapshot alone leaves its parent
    parent, derived = derived_family(store)
    store.delete_run(derived[0])
    assert [r["id"] for r in store.derived_runs(parent)] == derived[1:] and store.get_run(parent)


def test_a_distillation_is_refused_on_a_ray_cluster():
    backend = RayBackend.__new__(RayBackend)  # the refusal comes before the cluster is asked anything
    with pytest.raises(UserError, match=r"teacher's checkpoints .* train it on the local queue \(without --ray\)"):
        backend.check(student("run:1"))
