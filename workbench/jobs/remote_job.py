"""One job on a Ray node: the same `fit` as a local job, writing through `RemoteStore`, which sends every
write to the app (the store's only writer) instead of opening the SQLite file.

    actor = TrainingJob.options(num_gpus=..., num_cpus=..., resources=...).remote(messages, storage)
    ref = actor.run.remote(run_id, attempt, kind, spec, run_row, resume, dataset_ref)
    actor.stop.remote()      # Cancel: fit stops after the current batch, as locally
    actor.prune.remote()     # a study's pruner: fit stops after the current epoch

Messages are tuples `(run_id, attempt, method, args, kwargs, sent_at)` of the Store methods fit calls (`update_run`,
`set_status`, `log_epoch`, `truncate_epochs`, `save_logits`) and `("checkpoint", epoch)` once a checkpoint is
in storage; the app applies them in order with the real Store (`workbench.jobs.result_stream`). They go
through a `ray.util.queue.Queue` (an actor on the app's node): Ray's own channel, no protocol of ours.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.constants import ACTIVE_STATUSES, RunStatus
from workbench.errors import failure_message
from workbench.specs import spec_class

if TYPE_CHECKING:
    from numpy.typing import ArrayLike
    from ray.util.queue import Queue

    from workbench.data.datasets import Dataset
    from workbench.jobs.storage import CheckpointStorage
    from workbench.specs.base import Spec

FORWARDED = ("update_run", "set_status", "log_epoch", "truncate_epochs", "save_logits")


class RemoteStore:
    """The part of `store.Store` that `fit` uses, on a node without the store: reads answer from the run
    row the app sent along (kept up to date with this job's own writes); writes become messages."""

    def __init__(self, messages: Queue, run_id: int, attempt: int, run_row: dict, run_dir: Path | str) -> None:
        self.messages, self.run_id, self.attempt = messages, int(run_id), int(attempt)
        self.row, self.folder = dict(run_row), Path(run_dir)
        self.sent = 0

    def send(self, method: str, *args: Any, **kwargs: Any) -> None:
        # time.time(): when it was sent, so the app can tell how late epoch rows arrive (bench/cluster.py)
        self.messages.put((self.run_id, self.attempt, method, args, kwargs, time.time()))
        self.sent += 1

    def get_run(self, run_id: int) -> dict:
        return dict(self.row)

    def run_dir(self, run_id: int) -> Path:
        return self.folder

    def update_run(self, run_id: int, **fields: Any) -> None:
        self.row.update(fields)
        self.send("update_run", **fields)

    def set_status(self, run_id: int, status: str, error: str | None = None) -> None:
        self.row.update(status=status, error=error)
        self.send("set_status", status, error)

    def log_epoch(self, run_id: int, epoch: int, **row: Any) -> None:
        self.row["epochs_done"] = int(epoch)
        self.send("log_epoch", int(epoch), **row)

    def truncate_epochs(self, run_id: int, after_epoch: int) -> None:
        self.send("truncate_epochs", int(after_epoch))

    def save_logits(self, run_id: int, split: str, logits: ArrayLike, labels: ArrayLike) -> None:
        self.send("save_logits", split, logits, labels)

    def trial_verdict(self, run_id: int) -> dict | None:
        # A node cannot read the head's store: a study trial here is pruned by the queue's message, which
        # lands after the node started its next epoch (workbench.training.verdict).
        return None


def node_label() -> str:
    """The node as the jobs and runs tables show it: its address and the start of its Ray id (two nodes of
    one machine share an address)."""
    import ray  # noqa: PLC0415 - Ray: only --ray imports it (a second at import)

    context = ray.get_runtime_context()
    ip = ray.util.get_node_ip_address()
    return f"{ip} {context.get_node_id()[:8]}"


def dataset_here(spec: Spec, shipped: list[Any] | None) -> Dataset | None:
    """The decoded dataset from Ray's object store when this node lacks the run's data path (None: the job
    loads it itself, from its path or by generating it)."""
    if shipped is None:
        return None
    if spec.data_path and Path(spec.data_path).expanduser().exists():
        return None  # this node has the files: its own decode cache is faster than a transfer
    import ray  # noqa: PLC0415 - Ray: only --ray imports it (a second at import)

    return ray.get(shipped[0])  # a list around the ref: Ray passes it unresolved until the job needs it


class TrainingJob:
    """A Ray actor (created with `ray.remote(TrainingJob).options(...)` by `RayBackend`): one attempt of one
    run, in its own worker process, which ends with the actor, so its memory goes back as a child's does.
    Threaded (max_concurrency=2) so `stop` arrives while `run` trains."""

    def __init__(self, messages: Queue, storage: CheckpointStorage) -> None:
        self.messages, self.storage = messages, storage
        self.stopped, self.pruned = threading.Event(), threading.Event()

    def stop(self) -> None:
        self.stopped.set()

    def prune(self) -> None:
        self.pruned.set()

    def run(
        self,
        run_id: int,
        attempt: int,
        kind: str,
        spec_dict: dict,
        run_row: dict,
        resume: bool,
        shipped: list[Any] | None = None,
    ) -> dict:
        """Train; returns {"status", "messages": how many were sent}. Every error is reported as the run's
        failure (a message), as a local child does; only a dying process or node leaves it unsaid."""
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        folder = Path(tempfile.mkdtemp(prefix=f"workbench-run-{run_id}-"))
        store = RemoteStore(self.messages, run_id, attempt, run_row, folder)
        store.update_run(run_id, node=node_label())
        try:
            # Live TensorBoard events would land on the node: the app writes them from the rows instead.
            spec = spec_class(kind).from_dict(spec_dict)
            if getattr(spec, "tensorboard", False):
                spec = spec.replace(tensorboard=False)
            if resume:
                self.storage.download(run_id, folder)

            uploaded: list[int] = []

            def checkpointed(epoch: int) -> None:
                self.storage.upload(folder, run_id)
                uploaded.append(epoch)
                store.send("checkpoint", epoch)

            from workbench.training.fit import fit  # noqa: PLC0415 - TensorFlow: after TF_CPP_MIN_LOG_LEVEL is set

            devices = [f"/device:GPU:{i}" for i in range(_visible_gpus())]
            fit(
                spec,
                store,
                run_id,
                devices=devices,
                stop=self.stopped,
                resume=resume,
                dataset=dataset_here(spec, shipped),
                on_checkpoint=checkpointed,
                prune=self.pruned,
            )
            if not uploaded:  # stopped before its first checkpoint: keep preprocessing.json all the same
                self.storage.upload(folder, run_id)
        except BaseException as exc:
            store.set_status(run_id, RunStatus.FAILED, failure_message(exc))
        finally:
            _remove(folder)
        if store.row.get("status") in ACTIVE_STATUSES:
            store.set_status(run_id, RunStatus.FAILED, "the job ended without a final status")
        return {"status": store.row.get("status"), "messages": store.sent}


def _visible_gpus() -> int:
    """The GPUs Ray gave this actor (it sets CUDA_VISIBLE_DEVICES to them)."""
    import ray  # noqa: PLC0415 - Ray: only --ray imports it (a second at import)

    return len(ray.get_gpu_ids())


def _remove(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
