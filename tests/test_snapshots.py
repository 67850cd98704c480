"""Cheap ensembles from one run: snapshots at the end of each cosine cycle and the weight average of the
last epochs, each stored as a derived run ("run N · snapshot i", "run N · averaged") that the Ensemble tab's
scoring picks like any run. Real training of a tiny airbench (it has BatchNorm) on the synthetic stripes."""

import json

import keras
import numpy as np
import pytest
from conftest import wait_until

from store import Store
from workbench.constants import Derived, snapshot_label
from workbench.ensemble.lab import Lab, Settings, score
from workbench.errors import UserError
from workbench.inspect.sources import source_choices, source_key
from workbench.jobs.estimate import estimate
from workbench.jobs.queue import JobQueue
from workbench.predict.service import Predictor
from workbench.specs import RunSpec
from workbench.training import schedules
from workbench.training.checkpoint import load_checkpoint
from workbench.training.snapshots import batch_norm_layers
from workbench.ui.tabs.ensemble_snapshots import snapshot_members, snapshot_parents
from workbench.views.runs import lineage

DATA = dict(
    dataset="synthetic",
    dataset_options={"n_train": 400, "n_test": 100, "num_classes": 4},
    batch_size=50,
    augment=("flip_crop",),
)
SPEC = dict(
    model="airbench_cpu",
    model_kwargs={"widths": [8, 8, 8]},
    optimizer="sgd",
    learning_rate=0.05,
    schedule="cosine",
    epochs=3,
    snapshots=3,
    snapshot_checkpoints=True,
    average_last=2,
    **DATA,
)


def test_the_cyclic_schedule_restarts_at_each_cycle():
    rates = schedules.learning_rates(
        schedules.build_schedule("cosine", base_lr=0.1, epochs=6, steps_per_epoch=10, cycles=3), range(60)
    )
    assert rates[0] == rates[20] == rates[40] == pytest.approx(0.1)  # each cycle starts at the peak
    assert rates[19] < 0.01 and rates[39] < 0.01 and rates[59] < 0.01  # ... and ends near 0
    assert np.all(np.diff(rates[:20]) < 0)


@pytest.mark.parametrize(
    "changes, words",
    [
        ({"snapshots": 1}, "at least 2 cycles"),
        ({"schedule": "step"}, "set the schedule to cosine"),
        ({"epochs": 4}, "multiple of 3"),
        ({"average_last": 9}, "more than the run's 3 epochs"),
        ({"snapshots": 0}, "snapshot checkpoints need snapshots"),
    ],
)
def test_settings_that_cannot_work_are_refused_with_what_to_do(changes, words):
    with pytest.raises(UserError, match=words):
        RunSpec.from_dict({**SPEC, **changes}).validate()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    store = Store(tmp_path_factory.mktemp("snapshots") / "runs" / "workbench.db")
    queue = JobQueue(store, devices=[], isolate=False)
    run_id = queue.submit(RunSpec.from_dict(SPEC))
    assert queue.wait(run_id, timeout=300)
    yield store, run_id, queue
    queue.shutdown()
    store.close()


def test_each_cycle_is_stored_as_a_run_the_ensemble_scores(trained):
    store, run_id, _ = trained
    run = store.get_run(run_id)
    assert run["status"] == "completed", run["error"]
    derived = {r["derived"]: r for r in store.derived_runs(run_id)}
    assert set(derived) == {snapshot_label(1), snapshot_label(2), snapshot_label(3), Derived.AVERAGED}
    snaps = [derived[snapshot_label(i)] for i in (1, 2, 3)]
    for i, snap in enumerate(snaps, 1):
        assert snap["status"] == "completed" and snap["name"] == f"run {run_id} · snapshot {i}"
        assert snap["split_id"] == run["split_id"] and snap["epochs_done"] == i
        assert {"val", "val_flip", "test", "test_flip"} <= set(store.prediction_splits(snap["id"]))
        assert load_checkpoint(store.run_dir(snap["id"])).count_params() == run["params"]  # kept: Predict tab
    # the snapshots differ (each is a different point of the training), and the last is the final model
    first, last = (store.load_logits(s["id"], "test") for s in (snaps[0], snaps[-1]))
    assert not np.allclose(first, last)
    np.testing.assert_allclose(last, store.load_logits(run_id, "test"), rtol=1e-4, atol=1e-4)
    # the Ensemble tab's scoring takes them as members like any run
    members = Lab(store).load([s["id"] for s in snaps])
    scored = score(members, [1.0, 1.0, 1.0], Settings(tta=True))
    print("snapshot ensemble", scored["test"], [m for m in scored["members"]])
    assert len(scored["members"]) == 3 and 0.0 <= scored["test"]["accuracy"] <= 1.0


def test_the_average_has_its_own_batch_norm_statistics_and_accuracy(trained):
    store, run_id, _ = trained
    averaged = next(r for r in store.derived_runs(run_id) if r["derived"] == Derived.AVERAGED)
    assert averaged["status"] == "completed" and averaged["name"] == f"run {run_id} · averaged"
    print("averaged", averaged["test_accuracy"], "final", store.get_run(run_id)["test_accuracy"])
    assert 0.0 <= averaged["test_accuracy"] <= 1.0 and averaged["final_val_accuracy"] is not None
    final = keras.models.load_model(store.get_run(run_id)["checkpoint_path"], safe_mode=True)
    average = load_checkpoint(store.run_dir(averaged["id"]))
    final_bn, average_bn = batch_norm_layers(final), batch_norm_layers(average)
    assert final_bn and len(final_bn) == len(average_bn)
    for a, b in zip(final_bn, average_bn):
        assert not np.allclose(np.asarray(a.moving_mean), np.asarray(b.moving_mean))


def test_the_ensemble_tab_offers_a_runs_snapshots_in_one_pick(trained):
    store, run_id, _ = trained
    assert snapshot_parents(store) == [(f"{run_id}: {store.get_run(run_id)['name']} · 3 snapshots", run_id)]
    ids, note = snapshot_members(store, run_id, limit=8)
    assert [store.get_run(i)["derived"] for i in ids] == [snapshot_label(i) for i in (1, 2, 3)] and note == ""
    assert snapshot_members(store, run_id, limit=2)[0] == ids[:2]
    assert "Pick a run with snapshots" in snapshot_members(store, None, limit=8)[1]
    assert lineage(store.get_run(ids[2])) == f"snapshot 3 of run {run_id}"


def test_snapshots_and_the_average_are_sources_of_the_errors_and_predict_tabs(trained):
    store, run_id, _ = trained
    derived = [r["id"] for r in store.derived_runs(run_id)]
    errors_keys = {key for _, key in source_choices(store)}
    predictor = Predictor(store)
    predict_keys = {key for _, key in predictor.choices()}
    for run in derived:
        assert source_key("run", run) in errors_keys and source_key("run", run) in predict_keys
    averaged = source_key("run", derived[-1])
    pictures, _ = predictor.test_images(averaged, [0, 1])
    predictions = predictor.predict(averaged, pictures)
    assert len(predictions) == 2 and np.isclose(predictions[0].probs[0][1].sum(), 1.0, atol=1e-4)
    # the averaged checkpoint predicts the stored test logits' classes for those images
    stored = store.load_logits(derived[-1], "test")[:2].argmax(1)
    assert [int(np.argmax(p.probs[0][1])) for p in predictions] == stored.tolist()


def test_a_derived_result_taken_again_replaces_its_row(tmp_path):
    """A resume re-taking a snapshot (cancelled during its evaluation) finds the row it had begun."""
    with Store(tmp_path / "workbench.db") as store:
        parent = store.create_run("parent", RunSpec.from_dict(SPEC).to_dict(), split_id="s1", tags=["t"])
        first = store.derived_run(parent, snapshot_label(1), f"run {parent} · snapshot 1")
        assert store.derived_run(parent, snapshot_label(1), "again") == first
        second = store.derived_run(parent, snapshot_label(2), f"run {parent} · snapshot 2")
        row = store.get_run(second)
        assert second != first and row["parent_run"] == parent and row["split_id"] == "s1" and row["tags"] == ["t"]
        assert [r["id"] for r in store.derived_runs(parent)] == [first, second]


@pytest.mark.slow  # a second training run, cancelled and resumed (about a minute at load)
def test_a_cancelled_run_resumes_with_its_snapshots_and_average_whole(trained):
    store, _, queue = trained
    # the fixture's queue: one job runner per store
    spec = RunSpec.from_dict({**SPEC, "epochs": 4, "snapshots": 2, "average_last": 3, "seed": 5})
    run_id = queue.submit(spec)
    wait_until(lambda: len(store.epochs(run_id)) >= 2, "two epochs", timeout=300, every=0.05)
    queue.cancel(run_id)
    assert queue.wait(run_id, timeout=120) and store.get_run(run_id)["status"] == "cancelled"
    queue.resume(run_id)
    assert queue.wait(run_id, timeout=300)
    run = store.get_run(run_id)
    assert run["status"] == "completed", run["error"]
    derived = {r["derived"]: r for r in store.derived_runs(run_id)}
    assert set(derived) == {snapshot_label(1), snapshot_label(2), Derived.AVERAGED}  # none twice
    assert all(r["status"] == "completed" for r in derived.values())
    with np.load(store.run_dir(run_id) / "average.npz") as saved:
        assert json.loads(str(saved["meta"])) == {"count": 3, "epoch": 4}  # epochs 2, 3 and 4, each once


def test_the_estimate_counts_each_snapshots_and_the_averages_evaluation():
    plain = RunSpec.from_dict({**SPEC, "snapshots": 0, "snapshot_checkpoints": False, "average_last": 0}).validate()
    both = RunSpec.from_dict(SPEC).validate()  # 3 snapshots and the average (its BatchNorm pass counted as one)
    before, after = estimate(plain, None, 0), estimate(both, None, 0)
    assert before.evaluation and after.evaluation == pytest.approx(before.evaluation * (1 + 3 + 2))
    assert after.seconds - before.seconds == pytest.approx(after.evaluation - before.evaluation)


def test_averaging_the_snapshots_is_their_mean_taken_from_the_trained_weights_not_the_ema(tmp_path):
    """--average-snapshots: the averaged result's weights are the mean of the snapshots' (each cycle's end),
    its BatchNorm statistics recomputed; with a weight EMA on, the snapshots and the average are the trained
    weights (Keras swaps the EMA in only when fit ends) while the run's own result is the EMA."""
    spec = {**SPEC, "epochs": 2, "snapshots": 2, "average_last": 0, "average_snapshots": True, "ema_momentum": 0.9}
    with Store(tmp_path / "workbench.db") as store:
        queue = JobQueue(store, devices=[], isolate=False)
        try:
            run_id = queue.submit(RunSpec.from_dict(spec))
            assert queue.wait(run_id, timeout=300)
        finally:
            queue.shutdown()
        run = store.get_run(run_id)
        assert run["status"] == "completed", run["error"]
        derived = {r["derived"]: r for r in store.derived_runs(run_id)}
        assert set(derived) == {snapshot_label(1), snapshot_label(2), Derived.AVERAGED}
        snaps = [load_checkpoint(store.run_dir(derived[snapshot_label(i)]["id"])) for i in (1, 2)]
        average = load_checkpoint(store.run_dir(derived[Derived.AVERAGED]["id"]))
        for got, first, second in zip(average.trainable_weights, *(s.trainable_weights for s in snaps)):
            np.testing.assert_allclose(np.asarray(got), (np.asarray(first) + np.asarray(second)) / 2, atol=1e-6)
        for a, b in zip(batch_norm_layers(average), batch_norm_layers(snaps[1])):
            assert not np.allclose(np.asarray(a.moving_mean), np.asarray(b.moving_mean))
        averaged = derived[Derived.AVERAGED]
        assert averaged["epochs_done"] == 2 and 0.0 <= averaged["test_accuracy"] <= 1.0
        # the run's own result is the EMA: not the last snapshot's (the trained weights at the end)
        last = store.load_logits(derived[snapshot_label(2)]["id"], "test")
        assert not np.allclose(last, store.load_logits(run_id, "test"), atol=1e-3)


@pytest.mark.parametrize(
    "changes, words",
    [
        ({"average_last": 0, "snapshots": 0, "snapshot_checkpoints": False}, "set snapshots .* too"),
        ({}, "not both"),  # SPEC averages its last 2 epochs already
    ],
)
def test_averaging_the_snapshots_needs_them_and_is_the_one_average(changes, words):
    with pytest.raises(UserError, match=words):
        RunSpec.from_dict({**SPEC, "average_snapshots": True, **changes}).validate()
    spec = RunSpec.from_dict({**SPEC, "epochs": 6, "average_last": 0, "average_snapshots": True})
    assert spec.validate().averaged_epochs() == (2, 4, 6)  # each cycle's last epoch
    assert RunSpec.from_dict({**SPEC, "epochs": 6}).averaged_epochs() == (5, 6)
    both = estimate(spec.validate(), None, 0)
    assert both.evaluation == pytest.approx(estimate(spec.replace(average_snapshots=False), None, 0).evaluation * 6 / 4)
