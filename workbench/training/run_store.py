"""What the training loop needs of a store, for the type checker: `store.Store` has all of it, and so does
`workbench.jobs.remote_job.RemoteStore` (a Ray job's writes, sent to the app), which has nothing more."""

from pathlib import Path
from typing import Any, Protocol

from numpy.typing import ArrayLike


class RunStore(Protocol):
    def get_run(self, run_id: int) -> dict: ...

    def run_dir(self, run_id: int) -> Path: ...

    def update_run(self, run_id: int, **fields: Any) -> None: ...

    def set_status(self, run_id: int, status: str, error: str | None = None) -> None: ...

    def log_epoch(
        self,
        run_id: int,
        epoch: int,
        *,
        lr: float | None = ...,
        loss: float | None = ...,
        accuracy: float | None = ...,
        val_loss: float | None = ...,
        val_accuracy: float | None = ...,
        seconds: float | None = ...,
    ) -> None: ...

    def truncate_epochs(self, run_id: int, after_epoch: int) -> object: ...

    def save_logits(self, run_id: int, split: str, logits: ArrayLike, labels: ArrayLike) -> None: ...

    def trial_verdict(self, run_id: int) -> dict | None: ...
