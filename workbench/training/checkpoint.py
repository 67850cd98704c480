"""Checkpoints and the callback that writes a run's progress to the store as it trains.

Order matters for crash safety: the epoch row is written before the checkpoint, and the checkpoint's
epoch is recorded beside it only once the file is complete. A crash between the two leaves the
checkpoint one epoch behind; resume deletes the rows after the checkpoint's epoch and redoes them.
"""

import json
import math
import os
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

import keras

from workbench.constants import (
    PREPROCESSING,  # how pixels reach the model: what prediction and export need
    RunPhase,
)
from workbench.errors import UserError
from workbench.training import distiller  # noqa: F401 - registers Distiller, so its checkpoints load with safe_mode
from workbench.training.progress import ProgressWriter
from workbench.training.run_store import RunStore

CHECKPOINT = "model.keras"
CHECKPOINT_INFO = "checkpoint.json"


class StoreCallback(keras.callbacks.Callback):
    """Writes each epoch to the store, checkpoints it, honours the stop flag, and stops on NaN.
    `prune` (a study's pruner, `workbench.jobs.study`): once set, training stops after the current epoch,
    logged and checkpointed whole (a stop drops the partial epoch instead). `verdict(epoch)`, if given, is
    asked after each checkpoint whether the study prunes the run there (`workbench.training.verdict`).
    `on_logged(row)`, if given, gets each epoch row as the store got it (live TensorBoard events);
    `on_checkpoint(epoch)` is called once a checkpoint is whole (a Ray job copies it to shared storage)."""

    def __init__(
        self,
        store: RunStore,
        run_id: int,
        run_dir: Path,
        stop: threading.Event,
        progress: ProgressWriter | None = None,
        on_logged: Callable[[dict], None] | None = None,
        on_checkpoint: Callable[[int], None] | None = None,
        prune: threading.Event | None = None,
        verdict: Callable[[int], bool] | None = None,
    ) -> None:
        super().__init__()
        self.verdict = verdict
        self.store, self.run_id, self.run_dir, self.stop = store, run_id, run_dir, stop
        self.prune = prune or threading.Event()
        self.pruned_at = 0  # the epoch after which the prune request stopped training (0: none did)
        self.progress = progress or ProgressWriter(store, run_id)
        self.on_logged, self.on_checkpoint = on_logged, on_checkpoint
        self.diverged = False

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.progress.begin_pass(phase=RunPhase.TRAINING)

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if self.stop.is_set():  # checked every step: a cancel takes effect within one batch
            self.model.stop_training = True
        self.progress.step(batch + 1)

    def on_test_begin(self, logs: dict | None = None) -> None:
        # The epoch's validation (minutes for a big model or input size): its own phase and batch count.
        if not self.stop.is_set():
            self.progress.begin_steps(phase=RunPhase.EVAL_EPOCH)

    def on_test_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        # Keras validates even an epoch cut short by stop_training (5,000 images: the slow part of a
        # cancel); the partial epoch is dropped anyway, so skip it. A cancel during the validation of a
        # whole epoch stops it too, and the epoch, not validated, is dropped like a partial one.
        if self.stop.is_set():
            self.model.stop_evaluating = True
            self.model.stop_training = True

    def on_test_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if self.stop.is_set():  # Keras checks this after the batch: a cancel takes effect within one batch
            self.model.stop_evaluating = True
            self.model.stop_training = True
        self.progress.step(batch + 1)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        if self.stop.is_set() and self.model.stop_training:
            return  # cancelled mid-epoch: the partial epoch is neither logged nor checkpointed
        seconds = self.progress.pass_seconds()
        loss = float(logs.get("loss", float("nan")))
        row = dict(
            lr=float(self.model.optimizer.learning_rate),
            loss=loss,
            accuracy=_get(logs, "accuracy"),
            val_loss=_get(logs, "val_loss"),
            val_accuracy=_get(logs, "val_accuracy"),
            seconds=seconds,
        )
        self.store.log_epoch(self.run_id, epoch + 1, **row)
        if self.on_logged is not None:
            self.on_logged({"epoch": epoch + 1, **row})
        if not math.isfinite(loss):
            self.diverged = True  # keep the last good checkpoint: do not overwrite it with NaN weights
            self.model.stop_training = True
            return
        save_checkpoint(self.model, self.run_dir, epoch + 1)
        if self.on_checkpoint is not None:
            self.on_checkpoint(epoch + 1)
        if self.verdict is not None and not self.prune.is_set() and self.verdict(epoch + 1):
            self.prune.set()  # the study judged this epoch: pruned here, not one epoch later
        if self.prune.is_set():  # the epoch is whole, logged and checkpointed: stop here
            self.pruned_at = epoch + 1
            self.model.stop_training = True
            return
        self.progress.write(step=0, step_seconds=0.0, phase=RunPhase.TRAINING)


def _get(logs: dict, key: str) -> float | None:
    value = logs.get(key)
    return None if value is None else float(value)


def save_checkpoint(model: keras.Model, run_dir: Path, epoch: int) -> None:
    path = run_dir / CHECKPOINT
    tmp = run_dir / f".{CHECKPOINT}.tmp.keras"
    try:
        model.save(tmp)
        os.replace(tmp, path)  # atomic: a crash leaves the previous checkpoint whole
        info_tmp = run_dir / f".{CHECKPOINT_INFO}.tmp"
        info_tmp.write_text(json.dumps({"epoch": epoch}))
        os.replace(info_tmp, run_dir / CHECKPOINT_INFO)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise OSError(f"could not write the checkpoint in {run_dir}: {exc.strerror or exc}") from exc


def _damaged(path: Path, exc: BaseException) -> UserError:
    return UserError(
        f"the checkpoint {path} cannot be loaded ({type(exc).__name__}: {str(exc)[:200]}); it is "
        "damaged (a truncated copy or a full disk?). Start the run again (clone it in the Runs tab)"
    )


def load_checkpoint(run_dir: Path) -> keras.Model:
    """The checkpointed model, loaded with Keras' safe_mode (no arbitrary code from the file)."""
    path = run_dir / CHECKPOINT
    try:
        return keras.models.load_model(path, safe_mode=True)
    except Exception as exc:  # zip, HDF5 and config errors all mean the same thing to the user
        raise _damaged(path, exc) from None


def restore_weights(model: keras.Model, run_dir: Path) -> None:
    """Load the checkpoint's weights into a model rebuilt from its spec; with the optimizer's state too
    when the model is compiled and its optimizer built (the schedule then goes on from its step)."""
    path = run_dir / CHECKPOINT
    try:
        model.load_weights(path)
    except Exception as exc:
        raise _damaged(path, exc) from None


def save_preprocessing(
    run_dir: Path,
    *,
    mean: Iterable[float] | None,
    std: Iterable[float] | None,
    resize_to: int | None,
    image_shape: Iterable[int],
    class_names: Iterable[str],
) -> None:
    """What turns the dataset's uint8 images into the model's input, beside the checkpoint: the channel
    statistics the pipeline normalised with (None: the model takes 0..255 itself), the size it resized
    to (None: none), the dataset's image shape and class names. Written once, when training starts."""
    info = {
        "mean": None if mean is None else [float(m) for m in mean],
        "std": None if std is None else [float(s) for s in std],
        "resize_to": int(resize_to) if resize_to else None,
        "image_shape": [int(d) for d in image_shape],
        "class_names": [str(c) for c in class_names],
    }
    tmp = run_dir / f".{PREPROCESSING}.tmp"
    tmp.write_text(json.dumps(info))
    os.replace(tmp, run_dir / PREPROCESSING)


def checkpoint_epoch(run_dir: Path) -> int:
    """The epoch of the complete checkpoint in run_dir, 0 if there is none."""
    try:
        info = json.loads((run_dir / CHECKPOINT_INFO).read_text())
        return int(info["epoch"]) if (run_dir / CHECKPOINT).exists() else 0
    except (OSError, ValueError, KeyError):
        return 0
