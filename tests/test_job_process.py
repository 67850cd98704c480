"""Jobs in child processes: a native crash or a stuck job costs one run, never the app or the queue."""

import os
import signal
from pathlib import Path

import pytest
from conftest import wait_until
from test_train import SMALL, tiny

from workbench.jobs.child import LOG_NAME, gpu_visibility
from workbench.jobs.queue import JobQueue


@pytest.mark.parametrize(
    "devices, visible, expected",
    [
        ([], None, ("", [])),  # a CPU job sees no GPU, so TensorFlow there reserves none
        (["/device:GPU:1"], None, ("1", ["/device:GPU:0"])),
        (["/device:GPU:0", "/device:GPU:1"], "3,5", ("3,5", ["/device:GPU:0", "/device:GPU:1"])),
        (["/device:GPU:1"], "3, 5", ("5", ["/device:GPU:0"])),  # the app's own visibility maps its numbers
        (["/cpu:0", "/cpu:1"], "2", ("2", ["/cpu:0", "/cpu:1"])),
    ],
)
def test_a_child_sees_only_the_gpus_its_job_holds(devices, visible, expected):
    assert gpu_visibility(devices, visible) == expected


def _job_children() -> list[int]:
    """Pids of this process's job children (from /proc: no extra package needed)."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if int(fields[1]) == os.getpid() and b"workbench.jobs.child" in cmdline:
            pids.append(int(stat.parent.name))
    return pids


def test_a_crashed_or_stuck_training_process_costs_one_run_never_the_queue(store, monkeypatch):
    """What the kernel's out-of-memory killer or a segfault in TensorFlow does to a job (SIGKILL), and
    a job stuck in native code that ignores Cancel (frozen with SIGSTOP): each ends its own run with
    the reason, the queue goes on, and the run resumes from its last checkpoint."""
    monkeypatch.setenv("WORKBENCH_AUTH", "alice:s3cret")
    queue = JobQueue(store, devices=[], stop_grace=3)
    try:
        doomed = queue.submit(tiny(epochs=8, **SMALL))
        after = queue.submit(tiny(epochs=1, **SMALL))
        wait_until(lambda: store.epochs(doomed), "the first epoch row", timeout=120, every=0.2)
        child = queue.process_ids()[doomed]
        assert child in _job_children()
        environ = Path(f"/proc/{child}/environ").read_bytes().split(b"\0")
        assert not [v for v in environ if v.startswith(b"WORKBENCH_AUTH=")]  # the login stays in the app
        assert b"CUDA_VISIBLE_DEVICES=" in environ  # a CPU job sees no GPU
        os.kill(child, signal.SIGKILL)
        assert queue.wait(doomed, timeout=30)
        run = store.get_run(doomed)
        assert run["status"] == "failed"
        assert "killed by SIGKILL (out of memory?)" in run["error"] and LOG_NAME in run["error"]
        assert (store.run_dir(doomed) / LOG_NAME).exists()
        assert queue.wait(after, timeout=120)
        assert store.get_run(after)["status"] == "completed", store.get_run(after)["error"]

        queue.resume(doomed)  # the epochs it finished are kept; now it gets stuck
        done = len(store.epochs(doomed))
        wait_until(lambda: len(store.epochs(doomed)) > done, "another epoch row", timeout=120, every=0.2)
        child = queue.process_ids()[doomed]
        os.kill(child, signal.SIGSTOP)
        queue.cancel(doomed)
        assert queue.wait(doomed, timeout=30)
        run = store.get_run(doomed)
        assert run["status"] == "cancelled" and "did not stop within 3 s" in run["error"]
        assert child not in _job_children()
        epochs = [e["epoch"] for e in store.epochs(doomed)]
        assert epochs == list(range(1, len(epochs) + 1)) and len(epochs) < 8  # no gap, no duplicate
        assert store.integrity_check() == "ok"
    finally:
        queue.shutdown()
    assert _job_children() == []


@pytest.mark.parametrize(
    "devices, visible, shown",
    [
        ([], None, "CPU:0"),
        (["/cpu:0", "/cpu:1"], None, "CPU:0, CPU:1"),
        (["/device:GPU:0"], "3", "GPU:3"),  # a job's process: its leased card, renumbered 0
        (["/device:GPU:0", "/device:GPU:1"], "3,5", "GPU:3, GPU:5"),
        (["/device:GPU:1"], None, "GPU:1"),
    ],
)
def test_runs_name_gpus_by_their_physical_number(devices, visible, shown, monkeypatch):
    from workbench.training.fit import describe_devices

    if visible is None:
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    else:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    assert describe_devices(devices) == shown
    parent_view, child_devices = gpu_visibility(devices, visible)  # the same names from the child's side
    if devices and "GPU" in devices[0] and visible is None:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", parent_view)
        assert describe_devices(child_devices) == shown
