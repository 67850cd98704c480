"""Real training of tiny models through the job queue into a real store: completion, logits,
cancel, resume, divergence, failures, and validation before anything is queued."""

import os
import signal
import subprocess
import sys
import time
from itertools import pairwise

import keras
import numpy as np
import pytest
from conftest import FIXTURES, ROOT, wait_until

from store import Store
from workbench.errors import UserError
from workbench.jobs.queue import JobQueue
from workbench.specs.run import RunSpec
from workbench.training.checkpoint import CHECKPOINT, checkpoint_epoch

TINY = dict(
    model="resnet20",
    model_kwargs={"depth": 8, "base_width": 4},
    dataset="synthetic",
    dataset_options={"n_train": 600, "n_test": 100},
    batch_size=50,
    learning_rate=0.05,
    schedule="cosine",
    augment=("flip_crop",),
)


# Half TINY's images, for tests whose assertions do not read accuracy or the split's sizes: an epoch costs half.
SMALL = {"dataset_options": {"n_train": 300, "n_test": 100}}


def tiny(**changes) -> RunSpec:
    return RunSpec.from_dict({**TINY, "epochs": 2, **changes})


@pytest.fixture
def queue(store):
    """Jobs in threads of the test process: what these tests check is the training itself, and a child
    process per job would add ~5 s to each (the app's child processes: tests/test_job_process.py)."""
    q = JobQueue(store, devices=[], isolate=False)
    yield q
    q.shutdown()


@pytest.fixture
def isolated_queue(store):
    """Jobs in child processes, as the app and the CLI run them."""
    q = JobQueue(store, devices=[])
    yield q
    q.shutdown()


def test_a_run_trains_and_stores_everything(store, queue):
    run_id = queue.submit(tiny(epochs=3))
    assert store.get_run(run_id)["status"] in ("queued", "running")
    assert queue.wait(run_id, timeout=300)
    run = store.get_run(run_id)
    assert run["status"] == "completed", run["error"]
    assert [e["epoch"] for e in store.epochs(run_id)] == [1, 2, 3]
    assert run["epochs_done"] == 3 and run["best_val_accuracy"] > 0.3  # ten classes: chance is 0.1
    assert run["test_accuracy"] > 0.3 and run["params"] > 0 and run["split_id"].startswith("seed0-")
    assert run["dataset"].startswith("synthetic") and run["train_seconds"] > 0
    assert sorted(store.prediction_splits(run_id)) == ["test", "test_flip", "val", "val_flip"]
    test_logits = store.load_logits(run_id, "test")
    labels = store.load_labels(run_id, "test")
    assert test_logits.shape == (100, 10) and test_logits.dtype == np.float32
    assert (test_logits.argmax(1) == labels).mean() == pytest.approx(run["test_accuracy"])
    assert not np.allclose(test_logits, store.load_logits(run_id, "test_flip"))
    assert store.load_logits(run_id, "val").shape == (60, 10)
    lrs = [e["lr"] for e in store.epochs(run_id)]
    assert lrs[0] > lrs[1] > lrs[2]  # cosine
    model = keras.models.load_model(run["checkpoint_path"], safe_mode=True)
    assert model.count_params() == run["params"]


def test_real_cifar_images_train_above_chance(store, queue, cache_dir):
    spec = tiny(
        dataset="cifar10",
        dataset_options={},
        data_path=str(FIXTURES / "cifar10-mini.tar.gz"),
        epochs=1,  # what is checked is that the real images go through: one epoch does
        val_size=100,
        learning_rate=0.05,
    )
    run_id = queue.submit(spec)
    assert queue.wait(run_id, timeout=300)
    run = store.get_run(run_id)
    assert run["status"] == "completed", run["error"]
    assert store.load_logits(run_id, "test").shape == (200, 10)
    assert "cifar10-mini" in run["dataset"]


def test_cancel_reaches_the_jobs_process_and_keeps_its_checkpoint(store, isolated_queue):
    """Cancel reaches the job's process as a message and stops it after its current batch, its last
    checkpoint kept for a resume. (Resuming is tested where a second training process would not add to
    it: to the end with the schedule carried on, test_killed_process_leaves_an_interrupted_run_that_resumes;
    in a job's process, tests/test_job_process.py; after a cancel, tests/test_progress.py.)"""
    queue = isolated_queue
    # Cancel lands within a second (the job's watcher polls every 0.5 s, then the batch ends); an epoch here
    # is 6 batches, so it lands well before the 6th.
    run_id = queue.submit(tiny(epochs=6, **SMALL))
    wait_until(lambda: len(store.epochs(run_id)) >= 1, "the first epoch row", timeout=120, every=0.1)
    queue.cancel(run_id)
    assert queue.wait(run_id, timeout=60)
    run = store.get_run(run_id)
    assert run["status"] == "cancelled" and run["epochs_done"] < 6 and run["error"] is None
    assert checkpoint_epoch(store.run_dir(run_id)) == run["epochs_done"] >= 1
    assert [e["epoch"] for e in store.epochs(run_id)] == list(range(1, run["epochs_done"] + 1))


def test_cancel_a_queued_job_and_one_job_at_a_time_on_cpu(store, queue):
    first = queue.submit(tiny(epochs=20))
    second = queue.submit(tiny(epochs=2))
    wait_until(lambda: store.get_run(first)["status"] == "running", "the first run to start", timeout=120, every=0.1)
    assert store.get_run(second)["status"] == "queued"
    assert queue.cancel(second) is False  # it was waiting: cancelled at once, nothing was running
    assert store.get_run(second)["status"] == "cancelled"
    assert queue.cancel(first) is True
    assert queue.wait(first, timeout=60) and store.get_run(first)["status"] == "cancelled"
    with pytest.raises(UserError, match="not queued or running"):
        queue.cancel(first)


def test_nan_learning_rate_marks_the_run_diverged(store, queue):
    run_id = queue.submit(tiny(epochs=3, learning_rate=1e12, schedule="constant"))
    assert queue.wait(run_id, timeout=300)
    run = store.get_run(run_id)
    assert run["status"] == "diverged" and "NaN" in run["error"]
    assert not store.prediction_splits(run_id)


def test_unwritable_checkpoint_marks_the_run_failed_and_the_queue_goes_on(store, queue):
    run_id = queue.submit(tiny(epochs=2, **SMALL))
    # The checkpoint's place is taken by a folder: writing it fails like a read-only or full disk.
    (store.run_dir(run_id) / CHECKPOINT).mkdir()
    assert queue.wait(run_id, timeout=300)
    run = store.get_run(run_id)
    assert run["status"] == "failed" and "could not write the checkpoint" in run["error"]
    assert store.integrity_check() == "ok"
    next_id = queue.submit(tiny(epochs=1, **SMALL))
    assert queue.wait(next_id, timeout=300) and store.get_run(next_id)["status"] == "completed"


def test_bfloat16_mixed_precision_run(store, queue):
    run_id = queue.submit(tiny(epochs=1, precision="mixed_bfloat16", **SMALL))  # bfloat16 is emulated on most CPUs
    assert queue.wait(run_id, timeout=300)
    assert store.get_run(run_id)["status"] == "completed", store.get_run(run_id)["error"]
    assert store.load_logits(run_id, "test").dtype == np.float32
    assert keras.config.dtype_policy().name == "float32"  # the global policy is restored


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"model": "resnet21"}, "unknown model 'resnet21'; choose one of"),
        ({"epochs": 0}, "epochs must be at least 1"),
        ({"gpus": 2}, "asks for 2 GPU.* this machine has 0"),
        ({"loss": "hinge"}, "unknown loss 'hinge'"),
        ({"augment": "flip_crop,jitter"}, "jitter"),
        ({"model_kwargs": {"depth": 9}}, "6n\\+2|6n \\+ 2"),
        ({"model_kwargs": {"widen": 2}}, "has no option widen"),
        ({"dataset": "cifar10", "dataset_options": {}, "data_path": "/nonexistent/cifar.tar.gz"}, "does not exist"),
        ({"learning_rate": -1}, "learning rate must be > 0"),
        ({"epochs": "ten"}, "epochs must be int"),
    ],
)
def test_invalid_specs_are_refused_before_anything_is_queued(store, queue, changes, message):
    with pytest.raises(UserError, match=message):
        queue.submit(
            tiny(**changes)
            if "epochs" not in changes or changes["epochs"] != "ten"
            else RunSpec.from_dict({**TINY, **changes})
        )
    assert store.list_runs() == [] and queue.active() == []


def test_checks_that_need_data_fail_the_run_in_its_process(store, isolated_queue):
    """Submitting loads no data and builds no model (the app stays responsive); the job does, in its own
    process, and what only the data can judge (the batch against the training split) fails the run there with
    the reason: the child catches the error, marks the run and exits with FAILED_EXIT."""
    too_big = isolated_queue.submit(tiny(batch_size=100000, name="too-big"))
    assert isolated_queue.wait(too_big, timeout=300)
    failed = store.get_run(too_big)
    assert failed["status"] == "failed" and "Traceback" not in failed["error"], failed["error"]
    assert "batch size 100000 is larger than the training split (540 images)" in failed["error"]
    assert store.epochs(too_big) == []


def test_checks_that_need_the_model_fail_the_run_in_its_job(store, queue):
    """What only the built model can judge, DenseNet's depth, whose form depends on another option
    (bottleneck): the job fails with the reason. (In a thread: a job's process reports a failure of the
    training code the same way, failure_message; the test above goes through a process.)"""
    bad_depth = queue.submit(
        tiny(model="densenet_bc_100_12", model_kwargs={"depth": 13, "growth_rate": 2}, name="bad-depth")
    )
    assert queue.wait(bad_depth, timeout=300)
    failed = store.get_run(bad_depth)
    assert failed["status"] == "failed" and "Traceback" not in failed["error"], failed["error"]
    assert "DenseNet depth with bottleneck=True must be 4 + 6n" in failed["error"], failed["error"]
    assert store.epochs(bad_depth) == []


def test_killed_process_leaves_an_interrupted_run_that_resumes(tmp_path):
    db = tmp_path / "runs" / "workbench.db"
    cmd = [
        sys.executable,
        "-m",
        "workbench",
        "--db",
        str(db),
        "train",
        "--model",
        "resnet20",
        "--model-kwargs",
        "depth=8,base_width=4",
        "--dataset",
        "synthetic",
        "--dataset-options",
        "n_train=300,n_test=100",
        "--batch-size",
        "50",
        "--epochs",
        "5",  # killed after 2 (at most one more starts before the kill lands); resumed to the end
        "--schedule",
        "cosine",
        "--learning-rate",
        "0.05",
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    process = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_until(lambda: db.exists() and _epochs_done(db) >= 2, "two epochs in the store", timeout=240, every=0.2)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    with Store(db) as store:
        # The run trained in a child process that holds the store's lock: it must notice its app is
        # gone and exit at once (no orphan writing on), which frees the lock.
        queue = wait_until(lambda: _job_queue_or_none(store), "the job queue", timeout=15, every=0.1)
        epochs_at_restart = len(store.epochs(1))
        assert queue.interrupted == [1] and store.get_run(1)["status"] == "interrupted"
        time.sleep(1.5)
        assert len(store.epochs(1)) == epochs_at_restart  # nothing trains on behind the new queue's back
        done = checkpoint_epoch(store.run_dir(1))
        assert done >= 1
        queue.resume(1)
        assert queue.wait(1, timeout=600)
        run = store.get_run(1)
        assert run["status"] == "completed", run["error"]
        assert [e["epoch"] for e in store.epochs(1)] == list(range(1, 6))
        # The optimizer's step came back with the weights: the cosine schedule goes on falling after the
        # resume instead of starting again from the peak learning rate.
        lrs = [e["lr"] for e in store.epochs(1)]
        assert all(a > b for a, b in pairwise(lrs)), lrs
        assert store.integrity_check() == "ok"


def _job_queue_or_none(store):
    try:
        return JobQueue(store, devices=[], isolate=False)  # the resume below is what is tested here
    except UserError:
        return None


def _epochs_done(db):
    try:
        with Store(db) as store:
            runs = store.list_runs()
            return runs[0]["epochs_done"] if runs else 0
    except Exception:
        return 0


def test_two_replica_mirrored_strategy_on_two_logical_cpus(tmp_path):
    """Multi-GPU code without GPUs: the CPU split into two logical devices, one job on both."""
    script = f"""
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from store import Store
from workbench.jobs.queue import JobQueue
from workbench.specs.run import RunSpec
from workbench.training import devices
strategy = devices.strategy_for(["/cpu:0", "/cpu:1"])
assert strategy.num_replicas_in_sync == 2, strategy
store = Store({str(tmp_path / "m.db")!r})
queue = JobQueue(store, devices=["/cpu:0", "/cpu:1"], isolate=False)  # virtual CPUs live in this process
spec = RunSpec.from_dict({TINY!r} | {SMALL!r} | {{"epochs": 1, "gpus": 2}})
run_id = queue.submit(spec)
queue.wait(run_id)
run = store.get_run(run_id)
assert run["status"] == "completed", run["error"]
print("DEVICE", run["device"], "EPOCHS", len(store.epochs(run_id)))
"""
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "DEVICE CPU:0, CPU:1 EPOCHS 1" in result.stdout
