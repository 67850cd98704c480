"""The job queue: runs RunSpecs (and FinetuneSpecs), each on its own set of GPUs, each in a child
process (`workbench.jobs.child`) watched by a thread of this one (or in the thread itself: isolate=False).

All state that matters lives in the store (status, epochs, errors), so a reloaded page, a second
browser or the CLI sees the same jobs, and a dead process leaves runs that `resume` can finish.
The in-memory part is only what cannot be stored: the pending queue, stop flags and GPU leases.

    queue = JobQueue(store)            # marks runs a dead process left running as interrupted
    run_id = queue.submit(spec)        # validated here; returns at once with status "queued"
    queue.cancel(run_id); queue.resume(run_id); queue.wait(run_id)

A job that starts gets the phase "preparing" at once (`runs.phase`), so a reader of the store tells a
job that works from one that waits in line.

Where a job trains is its backend's business: `LocalBackend` (below: this machine, child processes or
threads, the queue leasing its GPUs) or `workbench.jobs.ray_backend.RayBackend` (a Ray cluster, which places
jobs itself). Validation, the run rows, statuses, Cancel and Resume are this one code path for both.
"""

import threading
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, cast

from store import Store
from store.lock import StoreLock
from workbench.constants import ACTIVE_STATUSES, AuditAction, RunPhase, RunStatus
from workbench.errors import UserError, failure_message
from workbench.jobs.child import STOP_GRACE_SECONDS, ChildJob
from workbench.jobs.malloc_tuning import release_free_memory
from workbench.jobs.tf_workarounds import release_custom_gradients
from workbench.specs import spec_class
from workbench.specs.base import Spec
from workbench.training import devices as device_utils
from workbench.training.checkpoint import checkpoint_epoch
from workbench.users import os_user


@dataclass
class Job:
    """A queued or running job, as the queue and its backend (`Backend.run`) see it."""

    run_id: int
    spec: Spec  # a workbench.specs spec (RunSpec, FinetuneSpec)
    gpus: int  # how many GPUs it needs (0: the CPU)
    resume: bool = False
    stop: threading.Event = field(default_factory=threading.Event)
    prune: threading.Event = field(default_factory=threading.Event)  # a study's pruner: stop after this epoch
    done: threading.Event = field(default_factory=threading.Event)
    devices: list = field(default_factory=list)
    process: ChildJob | None = None  # the ChildJob training it, when isolated


class Backend(Protocol):
    """Where jobs train: `LocalBackend` below, or `workbench.jobs.ray_backend.RayBackend`."""

    leases_devices: bool  # True: the queue leases this machine's GPUs; False: a PlacingBackend

    def check(self, spec: Spec) -> None: ...

    def run(self, store: Store, job: Job, inherit_fds: Sequence[int] = ...) -> None: ...

    def close(self) -> None: ...


class PlacingBackend(Backend, Protocol):
    """A backend that places jobs itself (leases_devices False), so it says what its machines hold."""

    def max_gpus(self) -> int: ...

    def gpus_needed(self, spec: Spec) -> int: ...


class LocalBackend:
    """Jobs on this machine: each in a child process (`isolate`) or in the queue's worker thread."""

    leases_devices = True  # the queue hands each job its GPUs; one CPU job at a time

    def __init__(self, isolate: bool = True, stop_grace: float = STOP_GRACE_SECONDS) -> None:
        self.isolate, self.stop_grace = isolate, stop_grace

    def check(self, spec: Spec) -> None:
        """Nothing beyond the spec's own validation: the machine's GPUs are counted there."""

    def run(self, store: Store, job: Job, inherit_fds: Sequence[int] = ()) -> None:
        """Train the job until it ends; the run's final status is written (an exception: the queue marks it
        failed)."""
        if self.isolate:
            job.process = ChildJob(store, job.run_id, job.spec, job.devices, job.resume, inherit_fds=inherit_fds)
            job.process.run(job.stop, stop_grace=self.stop_grace, prune=job.prune)
        else:
            from workbench.training.fit import fit  # noqa: PLC0415 - Keras: the training code loads only for in-thread jobs

            fit(job.spec, store, job.run_id, devices=job.devices, stop=job.stop, resume=job.resume, prune=job.prune)

    def close(self) -> None:
        pass


class JobQueue:
    def __init__(
        self,
        store: Store,
        *,
        devices: Sequence[str] | None = None,
        isolate: bool = True,
        stop_grace: float = STOP_GRACE_SECONDS,
        backend: Backend | None = None,
    ) -> None:
        """devices: the GPUs jobs may use (default: all TensorFlow sees; [] for CPU only).
        isolate: train each job in its own child process (`workbench.jobs.child`: memory returned
        after every run, a native crash fails one run); False trains in a thread of this process
        (no process start, ~4 s less per job; tests of the training code itself use it).
        stop_grace: seconds an isolated job may take to honour a cancel before its process is killed.

        backend: where jobs train (default: `LocalBackend(isolate, stop_grace)`, this machine); a backend
        that places jobs itself (`RayBackend`) gets every job at once and no local GPUs are leased.

        Takes the store's job lock (`store.lock`): a second job-running process on the same
        store is refused instead of marking this one's runs interrupted. `shutdown()` releases it."""
        self.store, self.isolate = store, isolate  # isolate: read by bench/soak.py to name its mode
        self.backend: Backend = backend or LocalBackend(isolate, stop_grace)
        self._store_lock = StoreLock(store.path).acquire()
        self.gpus: list[str]
        if not self.backend.leases_devices:
            self.gpus = []
        else:
            self.gpus = list(device_utils.gpu_names() if devices is None else devices)
        self._lock = threading.Condition()
        self._pending: list[Job] = []
        self._running: dict[int, Job] = {}
        self._free = list(self.gpus)
        self._cpu_busy = False
        self.interrupted = store.mark_interrupted()

    # --- public ------------------------------------------------------------------------------

    def submit(self, spec: Spec, *, tags: Iterable[str] = (), notes: str = "", by: str | None = None) -> int:
        """Validate a spec's names, numbers and paths (instant; nothing is written if it is invalid) and
        queue it, made by `by` (default: this process's OS user) and so recorded in the audit trail. What
        needs the data or a model (the batch against the split, model option values, a backbone's weights)
        is checked by the job itself, which fails the run with the reason."""
        spec = self._validate(spec).resolved(self.store)
        by = by or os_user()
        run_id = self.store.create_run(
            spec.display_name(),
            spec.to_dict(),
            kind=spec.kind,
            dataset=spec.dataset,
            tags=tags,
            notes=notes,
            created_by=by,
        )
        self.store.record(by, AuditAction.QUEUE, f"run {run_id}", spec.display_name())
        self._enqueue(Job(run_id, spec, self._gpus_needed(spec)))
        return run_id

    def resume(self, run_id: int, *, by: str | None = None) -> int:
        """Continue an interrupted, cancelled, failed or diverged run from its last checkpoint; returns the
        checkpoint's epoch (0: there is none, the run starts over). Recorded as `by`'s (default: the OS user)."""

        run = self.store.get_run(run_id)
        if run["status"] in ACTIVE_STATUSES:
            raise UserError(f"run {run_id} is {run['status']}; only a stopped run can be resumed")
        if run["status"] == RunStatus.COMPLETED:
            raise UserError(f"run {run_id} is already completed")
        spec = self._validate(spec_class(run["kind"]).from_dict(run["spec"]))
        epoch = checkpoint_epoch(self.store.run_dir(run_id))
        self.store.set_status(run_id, RunStatus.QUEUED)
        self.store.record(by or os_user(), AuditAction.RESUME, f"run {run_id}", f"from epoch {epoch}")
        self._enqueue(Job(run_id, spec, self._gpus_needed(spec), resume=True))
        return epoch

    def cancel(self, run_id: int, *, by: str | None = None) -> bool:
        """Stop a job that waits in the queue at once (returns False), or one that has started after its
        current batch (returns True: it becomes cancelled when its process has stopped). Recorded as `by`'s
        (default: the OS user)."""
        started = self._request_stop(run_id, RunStatus.CANCELLED, lambda job: job.stop)
        where = "while running" if started else "while queued"
        self.store.record(by or os_user(), AuditAction.CANCEL, f"run {run_id}", where)
        return started

    def prune(self, run_id: int) -> bool:
        """A study's pruner stops a run (`workbench.jobs.study`): one that waits in the queue is pruned at once
        (returns False), one that trains stops after its current epoch, logged and checkpointed (returns True:
        it becomes pruned when its process has stopped; completed if that epoch was its last)."""
        return self._request_stop(run_id, RunStatus.PRUNED, lambda job: job.prune)

    def _request_stop(self, run_id: int, status: RunStatus, request: Callable[[Job], threading.Event]) -> bool:
        """Take a waiting job out of the queue as `status` (False), or set the running job's `request` (True)."""
        with self._lock:
            for job in self._pending:
                if job.run_id == run_id:
                    self._pending.remove(job)
                    self.store.set_status(run_id, status)
                    job.done.set()
                    return False
            running = self._running.get(run_id)
        if running is None:
            raise UserError(f"run {run_id} is not queued or running here")
        request(running).set()
        return True

    def wait(self, run_id: int, timeout: float | None = None) -> bool:
        job = self._job(run_id)
        return True if job is None else job.done.wait(timeout)

    def active(self) -> list:
        with self._lock:
            return [j.run_id for j in self._pending] + list(self._running)

    def process_ids(self) -> dict:
        """{run id: pid} of the child processes training right now (isolated jobs only)."""
        with self._lock:
            return {
                run_id: job.process.process.pid
                for run_id, job in self._running.items()
                if job.process is not None and job.process.process.poll() is None
            }

    def shutdown(self, timeout: float = 30.0) -> None:
        """Stop every job (status cancelled) and wait for the threads to end."""
        with self._lock:
            pending, self._pending = self._pending, []
            running = list(self._running.values())
        for job in pending:
            self.store.set_status(job.run_id, RunStatus.CANCELLED)
            job.done.set()
        for job in running:
            job.stop.set()
        for job in running:
            job.done.wait(timeout)
        self.backend.close()
        self._store_lock.release()

    # --- scheduling --------------------------------------------------------------------------

    def _validate(self, spec: Spec) -> Spec:
        """The spec's own checks, and the backend's (a cluster that could never place it), before any row."""
        if self.backend.leases_devices:
            return spec.validate(available_gpus=len(self.gpus))
        self.backend.check(spec)  # says what the cluster has, before the spec's "this machine has" wording
        return spec.validate(available_gpus=cast(PlacingBackend, self.backend).max_gpus())

    def _gpus_needed(self, spec: Spec) -> int:
        if not self.backend.leases_devices:
            return cast(PlacingBackend, self.backend).gpus_needed(spec)
        if spec.gpus == -1:
            return 1 if self.gpus else 0
        return spec.gpus

    def _job(self, run_id: int) -> Job | None:
        with self._lock:
            for job in self._pending:
                if job.run_id == run_id:
                    return job
            return self._running.get(run_id)

    def _enqueue(self, job: Job) -> None:
        with self._lock:
            self._pending.append(job)
            self._start_ready()

    def _start_ready(self) -> None:
        """Start every pending job whose devices are free, oldest first. Called with the lock held.
        A backend that places jobs itself gets them all now; the job writes its phase when it starts."""
        leasing = self.backend.leases_devices
        for job in list(self._pending):
            if leasing and not self._lease(job):
                continue
            self._pending.remove(job)
            self._running[job.run_id] = job
            if leasing:
                try:  # readers tell a started job from a waiting one by it; the job itself does not need it
                    self.store.update_run(job.run_id, phase=RunPhase.PREPARING)
                except Exception:
                    traceback.print_exc()
            threading.Thread(target=self._run, args=(job,), name=f"run-{job.run_id}", daemon=True).start()

    def _lease(self, job: Job) -> bool:
        """Give the job its GPUs (or the CPU) if they are free now. Called with the lock held."""
        if job.gpus == 0:
            # With no GPU, one job at a time: two would only share the same cores more slowly.
            if self._cpu_busy:
                return False
            self._cpu_busy = True
            job.devices = []
        elif len(self._free) >= job.gpus:
            job.devices, self._free = self._free[: job.gpus], self._free[job.gpus :]
        else:
            return False
        return True

    def _run(self, job: Job) -> None:
        try:
            self.backend.run(self.store, job, inherit_fds=[self._store_lock.fileno()])
        except BaseException as exc:  # a thread never dies silently: the run carries the reason
            self._mark_failed(job.run_id, exc)
        finally:
            with self._lock:
                self._running.pop(job.run_id, None)
                if job.devices:
                    self._free = sorted(self._free + job.devices)
                elif self.backend.leases_devices:
                    self._cpu_busy = False
                idle = not self._running
                if idle:  # nothing is tracing a graph now, nor can start to (see tf_workarounds)
                    release_custom_gradients()
                self._start_ready()
            if idle:
                release_free_memory()  # walks the C heap: outside the lock, the next job need not wait
            job.done.set()

    def _mark_failed(self, run_id: int, exc: BaseException) -> None:
        try:
            self.store.set_status(run_id, RunStatus.FAILED, failure_message(exc))
        except Exception:  # the store itself is what failed (disk full, unwritable): say so where we can
            traceback.print_exc()
