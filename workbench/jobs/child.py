"""Run one job in a child process, so a finished run gives all its memory back and a crash stays its own.

Why not a thread: TensorFlow keeps native memory a finished run no longer uses (oneDNN's CPU tensor
pool only grows; `bench/soak.py` measured ~0.7 MB per tiny run in one long-lived process), and a
segfault or an out-of-memory kill inside TensorFlow would take the whole app and every other job
with it. A child that exits returns everything to the system, and its death is one failed run.
`multiprocessing` is not used: its spawn start re-imports the app's `__main__`, which imports
TensorFlow before the child could hide the GPUs other jobs hold.

Protocol (`python -m workbench.jobs.child`, one per job):
    stdin, first line   JSON {store, run_id, kind, spec, devices, resume}
    stdin, later        "stop" -> stop after the current batch (the run becomes cancelled)
                        "prune" -> stop after the current epoch, kept whole (the run becomes pruned)
    stdin, end of file  the app died -> exit at once (the next app marks the run interrupted)
    stdout and stderr   appended to the run's `process.log`
    exit code           0: the run's status is written; FAILED_EXIT: it raised and is marked failed;
                        anything else (a signal, a native crash): the parent marks it failed.
The child inherits the store's job lock, so no new app can take the store while an orphan lives.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from workbench.constants import ACTIVE_STATUSES, RunStatus
from workbench.errors import failure_message
from workbench.specs import spec_class

if TYPE_CHECKING:
    from store import Store
    from workbench.specs.base import Spec

LOG_NAME = "process.log"
FAILED_EXIT = 3  # the child caught the error and marked the run failed itself
PARENT_GONE_EXIT = 4
LOG_TAIL_LINES = 12
# A stop is honoured after the current batch, of training or of the final predictions (while the job
# still loads data or builds its model, once that is done); a child still alive this long after is stuck.
STOP_GRACE_SECONDS = 300.0
PRIVATE_ENV = ("WORKBENCH_AUTH",)  # the page's login: a training job has no use for it


def gpu_visibility(devices: list, visible: str | None) -> tuple[str | None, list]:
    """(CUDA_VISIBLE_DEVICES for the child, the device names it trains on) for a job's devices.

    The child sees only its leased GPUs, renumbered from 0 (so TensorFlow there neither touches nor
    reserves memory on cards other jobs hold); `visible` is the app's own CUDA_VISIBLE_DEVICES, which
    maps the app's GPU numbers to physical ones. A CPU job sees no GPU. Other device names (virtual
    CPUs) pass unchanged with the app's visibility."""
    from workbench.training.devices import cuda_visible_ids  # noqa: PLC0415 - TensorFlow: not before the child's own setup

    gpu_numbers = [int(name.rsplit(":", 1)[1]) for name in devices if "GPU" in name.upper()]
    if not gpu_numbers:
        return ("" if not devices else visible), list(devices)
    physical = cuda_visible_ids(visible)
    ids = [physical[n] if physical else str(n) for n in gpu_numbers]
    return ",".join(ids), [f"/device:GPU:{i}" for i in range(len(ids))]


class ChildJob:
    """The app's handle on one job's child process."""

    def __init__(
        self, store: "Store", run_id: int, spec: "Spec", devices: list, resume: bool, inherit_fds: Iterable[int] = ()
    ) -> None:
        """Start the child at once; `run` then waits for it."""
        visible, child_devices = gpu_visibility(devices, os.environ.get("CUDA_VISIBLE_DEVICES"))
        env = {k: v for k, v in os.environ.items() if k not in PRIVATE_ENV}
        if visible is None:
            env.pop("CUDA_VISIBLE_DEVICES", None)
        else:
            env["CUDA_VISIBLE_DEVICES"] = visible
        root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        self.log_path = store.run_dir(run_id) / LOG_NAME
        self.store, self.run_id = store, run_id
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "workbench.jobs.child"],
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                pass_fds=tuple(inherit_fds),
                start_new_session=True,
            )
        header = dict(
            store=str(store.path),
            run_id=run_id,
            kind=spec.kind,
            spec=spec.to_dict(),
            devices=child_devices,
            resume=resume,
        )
        self._send(json.dumps(header))

    def _send(self, line: str) -> None:
        assert self.process.stdin is not None  # Popen(stdin=PIPE)
        try:
            self.process.stdin.write(line.encode() + b"\n")
            self.process.stdin.flush()
        except (BrokenPipeError, ValueError):
            pass  # the child is already gone; wait() reports how

    def run(
        self,
        stop: threading.Event,
        poll_seconds: float = 0.5,
        stop_grace: float = STOP_GRACE_SECONDS,
        prune: threading.Event | None = None,
    ) -> None:
        """Wait for the child; pass a stop request on, and kill it if it has not stopped `stop_grace`
        seconds later (stuck in native code); pass a prune request on (no deadline: an epoch may take
        long); mark the run if the child died without writing its status."""
        stop_sent, killed, prune_sent = None, False, False
        while True:
            try:
                self.process.wait(timeout=poll_seconds)
                break
            except subprocess.TimeoutExpired:
                pass
            if prune is not None and prune.is_set() and not prune_sent:
                self._send("prune")
                prune_sent = True
            if stop.is_set() and stop_sent is None:
                self._send("stop")
                stop_sent = time.monotonic()
            elif stop_sent is not None and not killed and time.monotonic() - stop_sent > stop_grace:
                self.process.kill()
                killed = True
        assert self.process.stdin is not None  # Popen(stdin=PIPE)
        self.process.stdin.close()
        code = self.process.returncode
        if code in (0, FAILED_EXIT) or self.store.get_run(self.run_id)["status"] not in ACTIVE_STATUSES:
            return
        if killed:
            self.store.set_status(
                self.run_id,
                RunStatus.CANCELLED,
                f"it did not stop within {stop_grace:.0f} s of the "
                "request and was killed; resume continues from its last checkpoint",
            )
        else:
            self.store.set_status(self.run_id, RunStatus.FAILED, self.death_message(code))

    def death_message(self, code: int) -> str:
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            why = f"was killed by {name}" + (" (out of memory?)" if name == "SIGKILL" else "")
        else:
            why = f"exited with code {code}"
        return f"the training process {why}; its output is in {self.log_path}\n\n{self.log_tail()}"

    def log_tail(self) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-LOG_TAIL_LINES:])


# --- the child --------------------------------------------------------------------------------


def _watch_parent(stop: threading.Event, prune: threading.Event) -> None:
    """Read the app's requests; end of file means the app is gone, so this job must go too."""
    for line in sys.stdin:
        if line.strip() == "stop":
            stop.set()
        elif line.strip() == "prune":
            prune.set()
    os._exit(PARENT_GONE_EXIT)


def main() -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    line = sys.stdin.readline()
    if not line:
        return PARENT_GONE_EXIT
    header = json.loads(line)
    stop, prune = threading.Event(), threading.Event()
    threading.Thread(target=_watch_parent, args=(stop, prune), daemon=True, name="parent-watch").start()
    from store import Store  # noqa: PLC0415 - pandas: sqlite_utils imports it (seconds); after the parent watch starts
    from workbench.training.threads import configure_threads, set_thread_environment  # noqa: PLC0415 - TensorFlow: imported inside configure_threads only

    set_thread_environment()  # before TensorFlow's import: OMP_NUM_THREADS
    from workbench.training.fit import fit  # noqa: PLC0415 - TensorFlow: after TF_CPP_MIN_LOG_LEVEL is set

    configure_threads()  # the job's cores, before TensorFlow runs an op

    with Store(header["store"]) as store:
        run_id = header["run_id"]
        try:
            spec = spec_class(header["kind"]).from_dict(header["spec"])
            fit(spec, store, run_id, devices=header["devices"], stop=stop, resume=header["resume"], prune=prune)
        except BaseException as exc:  # the run carries the reason; the app reads the exit code
            store.set_status(run_id, RunStatus.FAILED, failure_message(exc))
            return FAILED_EXIT
    return 0


if __name__ == "__main__":
    sys.exit(main())
