"""Faults and bad input: one job-running process per store, damaged checkpoints, and property-based
checks that every spec is either accepted or refused with a UserError (never another exception)."""

import os
import shlex
import subprocess
import sys

import pytest
from conftest import ROOT, wait_until
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from store import Store
from workbench.cli.main import build_parser
from workbench.errors import UserError
from workbench.jobs.queue import JobQueue
from workbench.specs.flags import parse_key_values, spec_from_args
from workbench.specs.run import RunSpec
from workbench.training.checkpoint import CHECKPOINT

TINY = dict(
    model="resnet20",
    model_kwargs={"depth": 8, "base_width": 4},
    dataset="synthetic",
    dataset_options={"n_train": 300, "n_test": 60},
    batch_size=50,
    learning_rate=0.05,
    schedule="cosine",
)


def test_a_second_job_runner_on_the_same_store_is_refused(tmp_path):
    db = tmp_path / "w.db"
    with Store(db) as store:
        first = JobQueue(store, devices=[])
        with pytest.raises(UserError, match=r"another CIFAR Workbench process \(pid \d+\) is running jobs"):
            JobQueue(store, devices=[])
        env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
        refused = subprocess.run(
            [sys.executable, "-m", "workbench", "--db", str(db), "train", "--epochs", "1"],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
        )
        assert refused.returncode == 2 and f"(pid {os.getpid()})" in refused.stderr
        reader = subprocess.run(
            [sys.executable, "-m", "workbench", "--db", str(db), "runs"],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
        )
        assert reader.returncode == 0 and "no runs yet" in reader.stdout  # readers need no lock
        first.shutdown()
        JobQueue(store, devices=[]).shutdown()  # released: the next one gets it


def test_a_damaged_checkpoint_fails_the_resume_with_a_reason(tmp_path):
    with Store(tmp_path / "w.db") as store:
        # In a thread: the message comes from the training loop's restore, the same code a job's process
        # runs (tests/test_job_process.py covers how a child's failure reaches the run).
        queue = JobQueue(store, devices=[], isolate=False)
        run_id = queue.submit(RunSpec.from_dict({**TINY, "epochs": 30}))
        checkpoint = store.run_dir(run_id) / CHECKPOINT
        wait_until(
            lambda: store.epochs(run_id) and checkpoint.exists(), "the first epoch's checkpoint", timeout=300, every=0.1
        )
        queue.cancel(run_id)
        queue.wait(run_id, timeout=60)
        checkpoint.write_bytes(checkpoint.read_bytes()[:5000])  # a truncated copy
        queue.resume(run_id)
        queue.wait(run_id, timeout=120)
        run = store.get_run(run_id)
        assert run["status"] == "failed" and "cannot be loaded" in run["error"] and "damaged" in run["error"]
        assert store.integrity_check() == "ok"
        queue.shutdown()


ODD = st.sampled_from([float("nan"), float("inf"), -float("inf")])


def numbers(low, high):
    return st.one_of(st.floats(low, high), ODD)


FIELD_VALUES = {
    "model": st.sampled_from(["resnet20", "wrn_16_8", "lenet", "resnet21", "", "densenet_bc_100_12"]),
    "loss": st.sampled_from(["cross_entropy", "focal", "label_smoothing", "hinge"]),
    "augment": st.sampled_from(
        ["flip_crop", "flip_crop,cutout", "none", "", "jitter", "mixup,cutmix", "cutout,cutout"]
    ),
    "schedule": st.sampled_from(["step", "cosine", "htd", "constant", "linear"]),
    "optimizer": st.sampled_from(["sgd", "adam", "adamw", "rmsprop", "lbfgs"]),
    "precision": st.sampled_from(["float32", "mixed_float16", "mixed_bfloat16", "float8"]),
    "epochs": st.one_of(st.integers(-5, 400), numbers(-5, 400), st.text(max_size=4)),
    "batch_size": st.one_of(st.integers(-2, 100000), st.text(max_size=3)),
    "learning_rate": st.one_of(numbers(-1, 10), st.text(max_size=3)),
    "momentum": numbers(-1, 2),
    "weight_decay": numbers(-1, 2),
    "warmup_epochs": numbers(-2, 500),
    "gpus": st.integers(-3, 9),
    "dataset": st.sampled_from(["cifar10", "cifar100", "folder", "synthetic", "imagenet"]),
    "data_path": st.sampled_from(["", "/nonexistent/x.tar.gz", "../../etc/passwd", str(ROOT / "tests")]),
    "model_kwargs": st.sampled_from([{}, {"depth": 8}, {"depth": -4}, {"widen": 2}, {"weight_decay": 1}]),
    "loss_params": st.sampled_from([{}, {"gamma": 2}, {"gamma": -1}, {"beta": 1}, {"label_smoothing": 2}]),
    "schedule_params": st.sampled_from([{}, {"milestones": [0.5]}, {"milestones": [0.9, 0.1]}, {"gamma": 3}]),
    "augment_params": st.sampled_from([{}, {"cutout_size": 8}, {"cutout_size": 99}, {"cutout": 8}, {"pad": -1}]),
    "val_size": st.integers(-1, 10),
    "train_subset": st.integers(-1, 10),
}


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.fixed_dictionaries({}, optional=FIELD_VALUES))
def test_every_spec_is_valid_or_refused_with_a_clear_error(values):
    try:
        spec = RunSpec.from_dict(values).validate(available_gpus=1)
    except UserError as exc:
        assert str(exc) and "Traceback" not in str(exc)
        return
    # Whatever validates also survives its own CLI command unchanged.
    args = build_parser().parse_args(shlex.split(spec.to_cli())[3:])
    assert spec_from_args(args, RunSpec) == spec


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_key_value_text_parses_or_is_refused(text):
    try:
        parsed = parse_key_values(text)
    except UserError:
        return
    assert isinstance(parsed, dict)


@pytest.mark.slow  # ~20 s: several real trainings in one process; opt-in to keep `make test` under 10 min
def test_finished_runs_release_their_training_graphs(tmp_path):
    # TensorFlow bug #97697 (see workbench.jobs.tf_workarounds): without the queue's clean-up, every
    # finished run's train-step graph, and the variables it captured, stayed alive for good.
    import gc

    from tensorflow.python.framework.func_graph import FuncGraph

    def train_graphs():
        gc.collect()
        return {id(g): g.name for g in gc.get_objects() if isinstance(g, FuncGraph) and "step_on_data" in g.name}

    before = train_graphs()
    with Store(tmp_path / "w.db") as store:
        # In a thread on purpose: what is measured is this process's graph registry.
        queue = JobQueue(store, devices=[], isolate=False)
        for seed in (0, 1):
            run_id = queue.submit(RunSpec.from_dict({**TINY, "epochs": 1, "seed": seed}))
            queue.wait(run_id, timeout=120)
            assert store.get_run(run_id)["status"] == "completed"
        queue.shutdown()
    left = {key: name for key, name in train_graphs().items() if key not in before}
    assert not left, f"train-step graphs of finished runs still alive: {sorted(left.values())}"


def test_nan_after_good_epochs_keeps_the_last_good_checkpoint(tmp_path):
    # The loss turns NaN in epoch 3 (this test's batches turn NaN there): epochs 1-2 are logged and
    # checkpointed, epoch 3 is logged and stops the run, and the checkpoint on disk is still epoch 2's.
    import threading

    import keras
    import numpy as np
    import tensorflow as tf

    from workbench.training.checkpoint import StoreCallback, checkpoint_epoch, load_checkpoint
    from workbench.training.runners import build_model, compile_model

    spec = RunSpec.from_dict({**TINY, "epochs": 5, "schedule": "constant"})
    rng = np.random.default_rng(0)
    images = rng.normal(size=(300, 32, 32, 3)).astype("float32")
    images[200:] = np.nan  # batches 5-6, i.e. epoch 3 at 2 steps per epoch
    labels = keras.utils.to_categorical(rng.integers(0, 10, 300), 10)
    batches = tf.data.Dataset.from_tensor_slices((images, labels)).batch(50).repeat()
    with Store(tmp_path / "w.db") as store:
        run_id = store.create_run("nan-later", spec.to_dict())
        run_dir = store.run_dir(run_id)
        model = build_model(spec, 10, (32, 32, 3))
        compile_model(model, spec, steps=2)
        callback = StoreCallback(store, run_id, run_dir, threading.Event())
        model.fit(batches, epochs=5, steps_per_epoch=2, callbacks=[callback], verbose=0, shuffle=False)
        epochs = store.epochs(run_id)
        assert callback.diverged and [e["epoch"] for e in epochs] == [1, 2, 3]
        assert all(np.isfinite(e["loss"]) for e in epochs[:2])
        assert epochs[2]["loss"] is None or not np.isfinite(epochs[2]["loss"])  # SQLite keeps NaN as NULL
        assert checkpoint_epoch(run_dir) == 2
        kept = load_checkpoint(run_dir)
        assert all(np.all(np.isfinite(w)) for w in kept.get_weights())
        assert not list(run_dir.glob(".*tmp*"))


@pytest.fixture
def small_disk(tmp_path):
    """A 4 MB tmpfs: a real disk that fills up. Needs mount rights (root with CAP_SYS_ADMIN)."""
    folder = tmp_path / "small-disk"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(folder)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(
            f"cannot mount a small tmpfs here (needs root with mount rights): {mounted.stderr.decode().strip()}"
        )
    yield folder
    subprocess.run(["umount", "-l", str(folder)], check=False)


def test_a_full_disk_fails_the_run_with_the_reason_and_loses_nothing(small_disk):
    with Store(small_disk / "w.db") as store:
        # In a thread: a child would need the 4 MB disk for its log too, and the OSError path is the loop's.
        queue = JobQueue(store, devices=[], isolate=False)
        stats = os.statvfs(small_disk)
        # Leave 128 KB: enough for the store's rows of one epoch (its progress, phase and status too: each
        # write transaction adds WAL pages), not for a checkpoint (~170 KB).
        filler = small_disk / "filler"
        filler.write_bytes(b"\0" * (stats.f_bavail * stats.f_frsize - 128 * 1024))
        run_id = queue.submit(RunSpec.from_dict({**TINY, "epochs": 2}))
        assert queue.wait(run_id, timeout=300)
        run = store.get_run(run_id)
        assert run["status"] == "failed" and "could not write the checkpoint" in run["error"]
        assert "No space left on device" in run["error"], run["error"]
        assert [e["epoch"] for e in store.epochs(run_id)] == [1]  # logged before the checkpoint failed
        assert not list(store.run_dir(run_id).glob(".*tmp*"))  # the partial checkpoint was removed
        assert store.integrity_check() == "ok"
        filler.unlink()  # space again: the queue goes on
        next_id = queue.submit(RunSpec.from_dict({**TINY, "epochs": 1}))
        assert queue.wait(next_id, timeout=300) and store.get_run(next_id)["status"] == "completed"
        queue.shutdown()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="malloc tuning is for glibc")
def test_malloc_arena_limit_is_set_unless_the_user_chose_one():
    code = (
        "from workbench.jobs.malloc_tuning import limit_arenas, release_free_memory; "
        "print(limit_arenas(), isinstance(release_free_memory(), bool))"
    )
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    env["PYTHONPATH"] = str(ROOT)
    ours = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert ours.stdout.split() == ["True", "True"], ours.stderr
    theirs = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env={**env, "MALLOC_ARENA_MAX": "8"}
    )
    assert theirs.stdout.split() == ["False", "True"], theirs.stderr
