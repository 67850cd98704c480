"""A job's progress as the store shows it, written by the training and evaluation callbacks.

The live panel derives rates and remaining times from these columns alone, so they must exist from the
first batch: `step` (batches done in the current pass: an epoch's training, its validation, or the final
evaluation) and `step_seconds` (that pass's seconds at that step), this attempt's seconds and all attempts' total
(`attempt_seconds`, `train_seconds`: written as it goes, so a killed attempt keeps its time).
"""

import threading
import time
from typing import Any

import keras

from workbench.training.run_store import RunStore

PROGRESS_EVERY = 2.0  # seconds between in-pass writes: a few a minute, not one per step


class ProgressWriter:
    """One attempt's clock and its throttled writes to the run's row."""

    def __init__(self, store: RunStore, run_id: int, prior_seconds: float = 0.0) -> None:
        self.store, self.run_id, self.prior_seconds = store, run_id, prior_seconds
        self.started = self._pass_started = self._steps_started = self._written = time.perf_counter()

    def attempt_seconds(self) -> float:
        return time.perf_counter() - self.started

    def begin_pass(self, **fields: Any) -> None:
        """A new epoch or evaluation starts: step 0 (with any other run fields, e.g. the phase)."""
        self._pass_started = time.perf_counter()
        self.begin_steps(**fields)

    def begin_steps(self, **fields: Any) -> None:
        """A new count of batches inside the pass (an epoch's validation): step 0, the pass's clock kept."""
        self._steps_started = time.perf_counter()
        self.write(step=0, step_seconds=0.0, **fields)

    def step(self, step: int) -> None:
        """`step` batches since the last count began are done; written if the last write is old enough."""
        if time.perf_counter() - self._written >= PROGRESS_EVERY:
            self.write(step=step, step_seconds=time.perf_counter() - self._steps_started)

    def pass_seconds(self) -> float:
        return time.perf_counter() - self._pass_started

    def write(self, **fields: Any) -> None:
        self._written = time.perf_counter()
        seconds = self.attempt_seconds()
        self.store.update_run(
            self.run_id, attempt_seconds=seconds, train_seconds=self.prior_seconds + seconds, **fields
        )


class EvaluationProgress(keras.callbacks.Callback):
    """The final evaluation's batches as steps of one pass (`eval_steps` in all, over its predictions),
    and a cancel honoured after the current batch."""

    def __init__(self, progress: ProgressWriter, stop: threading.Event) -> None:
        super().__init__()
        self.progress, self.stop, self.offset = progress, stop, 0

    def on_predict_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if self.stop.is_set():
            self.model.stop_predicting = True
        self.progress.step(self.offset + batch + 1)
