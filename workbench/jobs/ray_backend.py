"""Jobs on a Ray cluster (`--ray ADDRESS`): each attempt of a run is a `TrainingJob` actor asking Ray for the
run's GPUs, the configured CPUs and any custom resources; Ray places it on a node and sets its visible GPUs.
The store stays on the app's machine and the app its only writer (`result_stream` applies the job's writes).

    backend = RayBackend(store, "127.0.0.1:6379", storage="s3://bucket/workbench", retries=1)
    queue = JobQueue(store, backend=backend)      # validation, rows, Cancel, Resume: the queue's own code

Per attempt: the dataset (unless generated) is decoded here once and put in Ray's object store, for nodes
that lack the data path; the run's checkpoint is in `storage` (a resumed run continues on any node); Cancel is
`stop()` on the actor, honoured after the current batch. The attempt's end is read from its actor:
- it returned: its status came with its messages;
- its node died: the run is `interrupted` with the reason, then queued again with resume, up to `retries`
  times (the epochs after its last checkpoint are redone, as a local resume does: none is duplicated);
- its process died on a live node (out of memory, a native crash): `failed` with Ray's reason, as locally.
"""

from __future__ import annotations

import itertools
import re
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.constants import RunKind, RunStatus
from workbench.data.split import load_spec_dataset
from workbench.errors import UserError
from workbench.jobs import ray_cluster
from workbench.jobs.child import STOP_GRACE_SECONDS
from workbench.jobs.remote_job import TrainingJob
from workbench.jobs.result_stream import ResultStream
from workbench.jobs.storage import CheckpointStorage
from workbench.training.checkpoint import checkpoint_epoch
from workbench.training.tensorboard import default_logdir, write_run

if TYPE_CHECKING:
    from store import Store
    from workbench.jobs.queue import Job
    from workbench.specs.base import Spec

POLL_SECONDS = 0.25
STUCK, NOT_STARTED = "stuck", "not started"  # how an attempt ended without a result, besides Ray's errors
NODE_DEATH = re.compile(r"NodeDied|node (?:has )?died|node .*(?:is )?dead", re.IGNORECASE)


class RayBackend:
    leases_devices = False  # Ray places jobs: the queue hands them all over at once

    def __init__(
        self,
        store: Store,
        address: str,
        *,
        storage: str | None = None,
        retries: int = 1,
        cpus_per_job: float = 1,
        resources: dict | None = None,
        stop_grace: float = STOP_GRACE_SECONDS,
        runtime_env: dict | None = None,
        insecure: bool = False,
    ) -> None:
        """address: HOST:PORT of a running cluster, or 'local' (a private Ray on this machine, on loopback).
        storage: where checkpoints go, a folder or URI every node reaches (default: the store's own files
        folder, which only nodes of this machine reach: a cluster with other machines needs one).
        retries: how often a run whose node died is resubmitted. cpus_per_job, resources: what each job asks
        Ray for besides its GPUs (custom resources restrict jobs to nodes that have them). runtime_env: Ray's
        runtime environment for every job (environment variables, packages the nodes lack), as Ray takes it.
        insecure: join a cluster without token authentication (`ray_cluster.use_token`)."""
        if retries < 0:
            raise UserError(f"--retries must be 0 or more, not {retries}")
        if cpus_per_job <= 0:
            raise UserError(f"--ray-cpus must be more than 0, not {cpus_per_job}")
        self.store, self.retries, self.cpus_per_job = store, int(retries), float(cpus_per_job)
        self.resources, self.stop_grace, self.runtime_env = dict(resources or {}), stop_grace, runtime_env
        self.started_ray = ray_cluster.connect(address, insecure=insecure)
        try:
            self.storage = CheckpointStorage(storage or str(store.files_root))
            self.storage.check_writable()
            self._refuse_unshared_storage(storage)
            self._start_stream()
        except BaseException:
            self._disconnect()
            raise
        self._shipped: dict = {}  # dataset key -> [ObjectRef]: each dataset goes into the object store once
        self._ship_lock = threading.Lock()
        self._attempts = itertools.count(1)

    def _start_stream(self) -> None:
        import ray  # noqa: PLC0415 - Ray: only --ray imports it (a second at import)
        from ray.util.queue import Queue  # noqa: PLC0415 - Ray: only --ray imports it (a second at import)
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy  # noqa: PLC0415 - Ray: only --ray imports it (a second at import)

        # The message queue lives on the app's node: it dies only with the app, never with a worker node.
        here = ray.get_runtime_context().get_node_id()
        self.messages = Queue(
            actor_options={"num_cpus": 0, "scheduling_strategy": NodeAffinitySchedulingStrategy(here, soft=False)}
        )
        self.stream = ResultStream(self.store, self.messages, on_checkpoint=self._mirror_checkpoint)
        self._actor_class: Any = ray.remote(TrainingJob)  # Any: Ray's types give actor methods no .remote

    def _refuse_unshared_storage(self, storage: str | None) -> None:
        """Checkpoints in the store's folder reach only this machine's nodes: refuse a wider cluster without
        --storage rather than leave runs that cannot resume elsewhere."""
        if storage:
            return
        addresses = {n.address for n in ray_cluster.nodes()}
        if len(addresses) > 1:
            raise UserError(
                f"the Ray cluster has nodes on {len(addresses)} machines ({', '.join(sorted(addresses))}); "
                "give --storage a folder or URI all of them reach (a shared folder, s3://...) so that "
                "checkpoints and Resume work on any node"
            )

    # --- what the queue asks ----------------------------------------------------------------------

    def describe(self) -> str:
        return ray_cluster.describe(ray_cluster.nodes())

    def max_gpus(self) -> int:
        return int(max((n.gpus for n in ray_cluster.nodes()), default=0))

    def gpus_needed(self, spec: Spec) -> int:
        if spec.gpus == -1:  # one GPU when the cluster has one, else the CPU (as locally)
            return 1 if self.max_gpus() else 0
        return spec.gpus

    def request(self, gpus: int) -> dict:
        return {"GPU": gpus, "CPU": self.cpus_per_job, **self.resources}

    def check(self, spec: Spec) -> None:
        """Refuse a spec no node of the cluster can ever hold, or one whose snapshots or weight average would
        be runs a job there cannot create (`workbench.training.snapshots`), or a distillation, before any run
        row exists."""
        if spec.kind == RunKind.DISTILL:
            # A Ray job's run folder is its own temporary one (`RemoteStore.run_dir`, filled from --storage for
            # its own run only): the teacher's checkpoints are in this store's folder on this machine.
            raise UserError(
                "a distillation run loads its teacher's checkpoints from the store's folder on this machine, "
                "which a job on a Ray node does not reach (it gets only its own run's files from --storage): "
                "train it on the local queue (without --ray)"
            )
        if getattr(spec, "snapshots", 0) or getattr(spec, "average_last", 0):
            raise UserError(
                "snapshots and weight averaging store their results as runs of their own, which a job on a Ray "
                "cluster cannot create: train this spec on the local queue (without --ray)"
            )
        ray_cluster.check_fits(self.request(max(0, self.gpus_needed(spec))), ray_cluster.nodes())

    def close(self) -> None:
        """Stop the result thread, then the message queue, then (a Ray this process started) Ray itself: in that
        order, so no thread of ours is inside a Ray call when Ray goes."""
        if not self.stream.close():
            print("warning: the Ray result thread did not stop within 2 minutes; letting Ray go anyway", flush=True)
        try:
            self.messages.shutdown(force=True)
        except Exception:
            pass  # the cluster is already gone
        self._disconnect()

    def _disconnect(self) -> None:
        if self.started_ray:
            import ray  # noqa: PLC0415 - Ray: only --ray imports it (a second at import)

            ray.shutdown()

    # --- one job ---------------------------------------------------------------------------------

    def run(self, store: Store, job: Job, inherit_fds: Sequence[int] = ()) -> None:
        """Run the job's attempts until one ends with a status, or its node died `retries` + 1 times."""
        try:
            for retry in range(self.retries + 1):
                outcome = self._attempt(store, job)
                if outcome is None:
                    return
                store.set_status(job.run_id, RunStatus.INTERRUPTED, outcome)
                if job.stop.is_set() or retry == self.retries:
                    return
                # Queued again with the reason, until the next attempt starts ("running" clears it).
                store.set_status(
                    job.run_id,
                    RunStatus.QUEUED,
                    f"attempt interrupted: {outcome}; resuming from its last "
                    f"checkpoint on another node (retry {retry + 1} of {self.retries})",
                )
                job.resume = True
        finally:
            if getattr(job.spec, "tensorboard", False):
                _write_events(store, job.run_id)

    def _attempt(self, store: Store, job: Job) -> str | None:
        """One attempt; returns why it was interrupted (its node died), None when its status is written."""
        import ray  # noqa: PLC0415 - Ray: only --ray imports it (a second at import)

        run = store.get_run(job.run_id)
        attempt = next(self._attempts)  # tags this attempt's messages (the run's own count may lag a dead one)
        if job.resume:
            self._share_checkpoint(store, job.run_id)
        shipped = self._ship_dataset(job.spec)
        store.update_run(job.run_id, node=None)  # the attempt's node, once it starts (the job sends it)
        actor = self._actor_class.options(
            num_gpus=job.gpus,
            num_cpus=self.cpus_per_job,
            resources=self.resources or None,
            max_concurrency=2,
            max_restarts=0,
            **({"runtime_env": self.runtime_env} if self.runtime_env else {}),
        ).remote(self.messages, self.storage)
        self.stream.expect(job.run_id, attempt)
        ref = actor.run.remote(job.run_id, attempt, job.spec.kind, job.spec.to_dict(), run, job.resume, shipped)
        try:
            result, error = self._wait(actor, ref, job)
        finally:
            ray.kill(actor, no_restart=True)
            try:  # everything the attempt sent is in the store before we write more
                self.stream.fence(job.run_id)
            finally:
                self.stream.forget(job.run_id)
        node = store.get_run(job.run_id).get("node")
        write_error = self.stream.error(job.run_id, attempt)
        if write_error:
            store.set_status(job.run_id, RunStatus.FAILED, write_error)
            return None
        if result is not None:
            return None  # its final status came with its messages
        if error == STUCK:
            store.set_status(
                job.run_id,
                RunStatus.CANCELLED,
                f"it did not stop within {self.stop_grace:.0f} s of the request "
                "and was killed; resume continues from its last checkpoint",
            )
            return None
        if error == NOT_STARTED:
            store.set_status(job.run_id, RunStatus.CANCELLED)
            return None
        if self._node_died(node, error):
            return f"the node it ran on ({node or 'not yet known'}) left the cluster: {_first_line(error)}"
        store.set_status(job.run_id, RunStatus.FAILED, f"the training process on node {node or '?'} died: {error}")
        return None

    def _wait(self, actor: Any, ref: Any, job: Job) -> tuple[dict | None, str | None]:
        """(the actor's result, None) or (None, why it ended without one: Ray's error text, or 'stuck')."""
        import ray  # noqa: PLC0415 - Ray: only --ray imports it (a second at import)
        from ray.exceptions import ActorUnavailableError, GetTimeoutError, RayError  # noqa: PLC0415 - Ray: only --ray imports it (a second at import)

        stop_sent, prune_sent = None, False
        while True:
            try:
                return ray.get(ref, timeout=POLL_SECONDS), None
            except (GetTimeoutError, ActorUnavailableError):  # not done yet / a blip Ray may recover from
                pass
            except RayError as exc:  # the actor's process or node died (RayActorError), or Ray failed otherwise
                return None, _ray_reason(exc)
            if job.prune.is_set() and not prune_sent:  # a study's pruner: after the current epoch
                actor.prune.remote()
                prune_sent = True
            if job.stop.is_set() and stop_sent is None:
                if not self.store.get_run(job.run_id).get("node"):
                    return None, NOT_STARTED  # still waiting for resources: nothing to stop gracefully
                actor.stop.remote()
                stop_sent = time.monotonic()
            elif stop_sent is not None and time.monotonic() - stop_sent > self.stop_grace:
                return None, STUCK

    def _node_died(self, node_label: str | None, error: str | None) -> bool:
        """Whether the attempt ended because its node left: the node is gone, or Ray's reason says so (it died
        before the job said where it ran)."""
        if node_label and not any(n.label == node_label for n in ray_cluster.nodes()):
            return True
        return bool(NODE_DEATH.search(error or ""))

    # --- data and checkpoints --------------------------------------------------------------------

    def _ship_dataset(self, spec: Spec) -> list[Any] | None:
        """[ObjectRef] of the spec's decoded dataset, put once per dataset (None: generated data, every node
        makes it itself). Wrapped in a list so that Ray hands the job the reference, not the arrays: a node
        with the files reads its own copy instead."""
        if spec.dataset == "synthetic":
            return None
        import ray  # noqa: PLC0415 - Ray: only --ray imports it (a second at import)

        key = _dataset_key(spec)
        with self._ship_lock:
            if key not in self._shipped:
                self._shipped[key] = [ray.put(load_spec_dataset(spec))]
            return self._shipped[key]

    def shipped_datasets(self) -> list:
        with self._ship_lock:
            return list(self._shipped)

    def _mirror_checkpoint(self, run_id: int, epoch: int) -> None:
        """A remote checkpoint is whole in storage: copy it into the store's run folder, where Predict, Export
        and Resume's message look (nothing to do when storage is that folder)."""
        run_dir = self.store.run_dir(run_id)
        if not self.storage.is_folder(run_dir.parent):
            self.storage.download(run_id, run_dir)

    def _share_checkpoint(self, store: Store, run_id: int) -> None:
        """Before a resume: a checkpoint only the app has (the run trained here before) goes to storage."""
        run_dir = store.run_dir(run_id)
        if not self.storage.is_folder(run_dir.parent) and checkpoint_epoch(run_dir) > self.storage.epoch(run_id):
            self.storage.upload(run_dir, run_id)


def _dataset_key(spec: Spec) -> tuple:
    path = Path(spec.data_path).expanduser().resolve() if spec.data_path else None
    stamp = (path.stat().st_size, path.stat().st_mtime_ns) if path and path.is_file() else None
    return (spec.dataset, str(path) if path else None, stamp, tuple(sorted(spec.dataset_options.items())))


def _first_line(text: str | None) -> str:
    return next((line for line in (text or "").splitlines() if line.strip()), "")[:300]


def _write_events(store: Store, run_id: int) -> None:
    """TensorBoard events of a remote run, from the store's rows once it ends (a node does not write into the
    app's folder; the rows are the same, so the events are those a local run writes as it goes)."""
    try:
        write_run(store, store.get_run(run_id), default_logdir(store))
    except Exception as exc:  # events are a view: the run itself is recorded either way
        print(f"run {run_id}: could not write its TensorBoard events ({exc})", flush=True)


def _ray_reason(exc: BaseException) -> str:
    """Ray's error as a run's reason: its first lines and the end of its (remote) traceback."""
    text = f"{type(exc).__name__}: {exc}"
    if len(text) <= 2000:
        return text
    return f"{text[:600]}\n...\n{text[-1400:]}"
