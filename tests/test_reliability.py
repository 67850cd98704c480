"""Faults and bad input: one job-running process per store, damaged checkpoints, and property-based
checks that every spec is either accepted or refused with a UserError (never another exception)."""
import os
import shlex
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import ROOT
from store import Store
from workbench.cli import build_parser
from workbench.cli_args import parse_key_values, spec_from_args
from workbench.errors import UserError
from workbench.jobs import JobQueue
from workbench.spec import RunSpec
from workbench.train import CHECKPOINT

TINY = dict(model="resnet20", model_kwargs={"depth": 8, "base_width": 4}, dataset="synthetic",
            dataset_options={"n_train": 300, "n_test": 60}, batch_size=50, learning_rate=0.05, schedule="cosine")


def test_a_second_job_runner_on_the_same_store_is_refused(tmp_path):
    db = tmp_path / "w.db"
    with Store(db) as store:
        first = JobQueue(store, devices=[])
        with pytest.raises(UserError, match=r"another CIFAR Workbench process \(pid \d+\) is running jobs"):
            JobQueue(store, devices=[])
        env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
        refused = subprocess.run([sys.executable, "-m", "workbench", "--db", str(db), "train", "--epochs", "1"],
                                 capture_output=True, text=True, timeout=120, env=env)
        assert refused.returncode == 2 and f"(pid {os.getpid()})" in refused.stderr
        reader = subprocess.run([sys.executable, "-m", "workbench", "--db", str(db), "runs"],
                                capture_output=True, text=True, timeout=120, env=env)
        assert reader.returncode == 0 and "no runs yet" in reader.stdout  # readers need no lock
        first.shutdown()
        JobQueue(store, devices=[]).shutdown()  # released: the next one gets it


def test_a_damaged_checkpoint_fails_the_resume_with_a_reason(tmp_path):
    with Store(tmp_path / "w.db") as store:
        queue = JobQueue(store, devices=[])
        run_id = queue.submit(RunSpec.from_dict({**TINY, "epochs": 30}))
        import time

        deadline = time.monotonic() + 120
        while not store.epochs(run_id) and time.monotonic() < deadline:
            time.sleep(0.1)
        queue.cancel(run_id)
        queue.wait(run_id, timeout=60)
        checkpoint = store.run_dir(run_id) / CHECKPOINT
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
    "augment": st.sampled_from(["flip_crop", "flip_crop,cutout", "none", "", "jitter", "mixup,cutmix",
                                "cutout,cutout"]),
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
    "val_size": st.integers(-1, 10), "train_subset": st.integers(-1, 10),
}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.fixed_dictionaries({}, optional=FIELD_VALUES))
def test_every_spec_is_valid_or_refused_with_a_clear_error(values):
    try:
        spec = RunSpec.from_dict(values).validate(available_gpus=1)
    except UserError as exc:
        assert str(exc) and "Traceback" not in str(exc)
        return
    # Whatever validates also survives its own CLI command unchanged.
    args = build_parser().parse_args(shlex.split(spec.to_cli())[3:])
    assert spec_from_args(args) == spec


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_key_value_text_parses_or_is_refused(text):
    try:
        parsed = parse_key_values(text)
    except UserError:
        return
    assert isinstance(parsed, dict)


def test_finished_runs_release_their_training_graphs(tmp_path):
    # TensorFlow bug #97697 (see workbench.tf_workarounds): without the queue's clean-up, every
    # finished run's train-step graph, and the variables it captured, stayed alive for good.
    import gc

    from tensorflow.python.framework.func_graph import FuncGraph

    def train_graphs():
        gc.collect()
        return {id(g): g.name for g in gc.get_objects() if isinstance(g, FuncGraph) and "step_on_data" in g.name}

    before = train_graphs()
    with Store(tmp_path / "w.db") as store:
        queue = JobQueue(store, devices=[])
        for seed in (0, 1):
            run_id = queue.submit(RunSpec.from_dict({**TINY, "epochs": 1, "seed": seed}))
            queue.wait(run_id, timeout=120)
            assert store.get_run(run_id)["status"] == "completed"
        queue.shutdown()
    left = {key: name for key, name in train_graphs().items() if key not in before}
    assert not left, f"train-step graphs of finished runs still alive: {sorted(left.values())}"
