"""Progress that tells the truth, on real training of tiny models into a real store: the phases a job
goes through, in-epoch progress from the first batches, the final evaluation's own progress, what a
cancel keeps and a resume does, and attempts.

Every progress write is recorded by SQLite itself (a trigger on the store's runs table), and a cancel
lands at an exact moment through a SQL function the trigger calls: nothing of ours is replaced."""

import math
import threading

import keras
import numpy as np
import pytest
import tensorflow as tf
from test_train import SMALL, TINY, tiny

from workbench.jobs.estimate import estimate
from workbench.jobs.queue import JobQueue
from workbench.specs.run import RunSpec
from workbench.training import progress as progress_module
from workbench.training.checkpoint import StoreCallback, checkpoint_epoch


@pytest.fixture
def queue(store, monkeypatch):
    monkeypatch.setattr(progress_module, "PROGRESS_EVERY", 0.0)  # every batch written: the log sees all
    q = JobQueue(store, devices=[], isolate=False)
    yield q
    q.shutdown()


def record_progress(store):
    """Log every write of a run's phase or step; returns a function reading the log of one run."""
    store.db.execute(
        "CREATE TABLE progress_log (run INTEGER, phase TEXT, step INTEGER, step_seconds REAL, "
        "eval_steps INTEGER, epochs_done INTEGER, attempt INTEGER)"
    )
    store.db.execute(
        "CREATE TRIGGER log_progress AFTER UPDATE OF phase, step ON runs BEGIN INSERT INTO "
        "progress_log VALUES (new.id, new.phase, new.step, new.step_seconds, new.eval_steps, "
        "new.epochs_done, new.attempt); END"
    )
    return lambda run_id: list(store.db.query("SELECT * FROM progress_log WHERE run = ? ORDER BY rowid", [run_id]))


def cancel_when(store, queue, condition: str):
    """Cancel a run (through the queue, as the page does) the moment a write of it meets `condition`: from a
    thread of its own, as the page's would be (the cancel writes to the store: the audit trail), not from inside
    the trigger's write."""
    store.db.conn.create_function(
        "cancel_run", 1, lambda run_id: threading.Thread(target=queue.cancel, args=(run_id,)).start()
    )
    store.db.execute(
        f"CREATE TRIGGER cancel_at AFTER UPDATE ON runs WHEN {condition} BEGIN SELECT cancel_run(new.id); END"
    )


def _phases(log) -> list:
    return [phase for i, phase in enumerate(r["phase"] for r in log) if i == 0 or phase != log[i - 1]["phase"]]


def test_cancel_and_resume_in_each_phase_keep_what_they_say(store, queue):
    """Attempt 1 is cancelled at its first batch (nothing kept: resume starts over), attempt 2 in its
    final evaluation (both epochs kept, nothing half-stored: resume only evaluates), attempt 3 ends it."""
    log = record_progress(store)
    cancel_when(store, queue, "new.attempt = 1 AND new.phase = 'training' AND new.step > 0")
    run_id = queue.submit(tiny(epochs=2, **SMALL))
    assert queue.wait(run_id, timeout=300)
    run = store.get_run(run_id)
    assert run["status"] == "cancelled" and run["epochs_done"] == 0 and run["phase"] is None
    assert _phases(log(run_id)) == ["preparing", "training", None]
    first_attempt = run["attempt_seconds"]
    assert first_attempt > 0 and run["train_seconds"] == pytest.approx(first_attempt)
    store.db.execute("DROP TRIGGER cancel_at")
    cancel_when(store, queue, "new.attempt = 2 AND new.phase = 'evaluating validation'")
    assert queue.resume(run_id) == 0  # no checkpoint: it starts over, and says so

    assert queue.wait(run_id, timeout=300)
    run = store.get_run(run_id)
    assert run["status"] == "cancelled", run["error"]
    assert store.prediction_splits(run_id) == [] and run["test_accuracy"] is None  # nothing half-stored
    assert run["epochs_done"] == 2 and checkpoint_epoch(store.run_dir(run_id)) == 2
    second = [r for r in log(run_id) if r["attempt"] == 2]
    # Each epoch's validation is its own phase, counted in its own batches (a tenth of 300 images, 50 a batch: 1).
    assert _phases(second)[:7] == [
        "preparing",
        "training",
        "validating",
        "training",
        "validating",
        "training",
        "evaluating validation",
    ]
    validating = [r for r in second if r["phase"] == "validating"]
    batches = math.ceil(300 // 10 / 50)
    assert run["val_steps"] == batches == 1
    steps = list(range(batches + 1))  # 0 as it starts, then after each batch
    assert [r["step"] for r in validating] == steps * 2 and all(r["step_seconds"] >= 0 for r in validating)
    assert [r["epochs_done"] for r in validating] == [0] * len(steps) + [1] * len(steps)  # logged after it
    # In-epoch progress exists before the first epoch ends: what the panel's rate and remaining time use.
    assert any(
        r["phase"] == "training" and r["epochs_done"] == 0 and r["step"] > 0 and r["step_seconds"] > 0 for r in second
    )
    before = run["train_seconds"]
    assert before == pytest.approx(first_attempt + run["attempt_seconds"])
    assert queue.resume(run_id) == 2  # the checkpoint's epoch: the panel says "final evaluation only"

    assert queue.wait(run_id, timeout=300)
    run = store.get_run(run_id)
    assert run["status"] == "completed", run["error"]
    assert [e["epoch"] for e in store.epochs(run_id)] == [1, 2]
    assert sorted(store.prediction_splits(run_id)) == ["test", "test_flip", "val", "val_flip"]
    third = [r for r in log(run_id) if r["attempt"] == 3]
    assert not any(r["phase"] == "training" and r["step"] for r in third)  # no epoch trained again
    evaluation = [r for r in third if r["phase"] in ("evaluating validation", "evaluating test")]
    eval_steps = 2 * (math.ceil(30 / 50) + math.ceil(100 / 50))  # val (300 // 10) and test, plain and mirrored
    assert {r["eval_steps"] for r in evaluation} == {eval_steps}
    assert max(r["step"] for r in evaluation if r["phase"] == "evaluating test") == eval_steps
    assert run["attempt"] == 3 and run["eval_seconds"] > 0
    assert run["train_seconds"] == pytest.approx(before + run["attempt_seconds"])
    # What the job wrote is what the next estimate of a run like it is measured by.
    est = estimate(tiny(epochs=2, **SMALL), store, gpu_count=0)
    assert not est.rough and est.evaluation == pytest.approx(run["eval_seconds"])


def test_a_cancel_skips_the_unfinished_epochs_validation(store):
    """Keras validates even an epoch cut short; 5,000 validation images made a cancel take seconds."""
    spec = RunSpec.from_dict({**TINY, "epochs": 1})
    from workbench.training.runners import build_model, compile_model

    rng = np.random.default_rng(0)
    images = rng.normal(size=(200, 32, 32, 3)).astype("float32")
    labels = keras.utils.to_categorical(rng.integers(0, 10, 200), 10)
    train = tf.data.Dataset.from_tensor_slices((images, labels)).batch(50)
    validation = tf.data.Dataset.from_tensor_slices((images, labels)).batch(10)  # 20 batches
    stop = threading.Event()

    class CancelAtTheSecondBatch(keras.callbacks.Callback):  # the user presses Cancel
        validated = 0

        def on_train_batch_end(self, batch, logs=None):
            if batch == 1:
                stop.set()

        def on_test_batch_end(self, batch, logs=None):
            CancelAtTheSecondBatch.validated += 1

    run_id = store.create_run("cancel", spec.to_dict())
    model = build_model(spec, 10, (32, 32, 3))
    compile_model(model, spec, steps=4)
    model.fit(
        train,
        validation_data=validation,
        epochs=1,
        verbose=0,
        shuffle=False,
        callbacks=[CancelAtTheSecondBatch(), StoreCallback(store, run_id, store.run_dir(run_id), stop)],
    )
    assert CancelAtTheSecondBatch.validated <= 1 and store.epochs(run_id) == []


def test_a_cancel_while_validating_a_whole_epoch_drops_it_at_once(store, monkeypatch):
    """The validation of a whole epoch is its own phase; a cancel during it stops it after the batch and
    drops the epoch unvalidated (no epoch row with a partial validation's scores, no next epoch begun)."""
    monkeypatch.setattr(progress_module, "PROGRESS_EVERY", 0.0)
    spec = RunSpec.from_dict({**TINY, "epochs": 2})
    from workbench.training.runners import build_model, compile_model

    rng = np.random.default_rng(0)
    images = rng.normal(size=(100, 32, 32, 3)).astype("float32")
    labels = keras.utils.to_categorical(rng.integers(0, 10, 100), 10)
    train = tf.data.Dataset.from_tensor_slices((images, labels)).batch(50)
    validation = tf.data.Dataset.from_tensor_slices((images, labels)).batch(10)  # 10 batches
    stop = threading.Event()
    seen = []

    class CancelDuringTheSecondValidationBatch(keras.callbacks.Callback):  # the user presses Cancel
        def on_test_batch_begin(self, batch, logs=None):
            run = store.get_run(run_id)
            seen.append((run["phase"], run["step"]))
            if batch == 1:
                stop.set()

    run_id = store.create_run("cancel", spec.to_dict())
    model = build_model(spec, 10, (32, 32, 3))
    compile_model(model, spec, steps=2)
    model.fit(
        train,
        validation_data=validation,
        epochs=2,
        verbose=0,
        shuffle=False,
        callbacks=[StoreCallback(store, run_id, store.run_dir(run_id), stop), CancelDuringTheSecondValidationBatch()],
    )
    assert seen == [("validating", 0), ("validating", 1)]  # no third batch, no second epoch
    assert (store.get_run(run_id)["phase"], store.get_run(run_id)["step"]) == ("validating", 2)
    assert store.epochs(run_id) == [] and checkpoint_epoch(store.run_dir(run_id)) == 0
