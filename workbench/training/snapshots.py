"""Cheap ensembles from one run: snapshots at the end of each cosine cycle (Huang et al. 2017) and the weight
average of the last K epochs or of the snapshots (SWA, Izmailov et al. 2018; averaging at the end of each
cycle of a cyclical schedule is SWA's own cyclical mode), each stored as a derived run of its own
(`store.lineage`: "run 7 · snapshot 3", "run 7 · averaged") with the val/test logits of every view the run
stores, so the Ensemble, Errors and Predict tabs pick it like any run.

Not Keras' optimizer EMA (`ema_momentum`, `use_ema`): that is an exponential moving average kept by the
optimizer at every step and swapped in at the end of training; SWA here is an equal-weight mean of the
weights at the end of the last K epochs, after which BatchNorm's statistics are recomputed (the mean of the
weights never produced the activations those statistics describe). With both on, snapshots and the average
are taken from the trained weights, never the EMA: Keras keeps the EMA inside the optimizer and puts it into
the model only when `model.fit` ends (`finalize_variable_values`), after every snapshot and every averaged
epoch, so the run's own final result is the EMA and its snapshots and average are points of its trajectory.

Crash safety follows the checkpoint's: both callbacks run after `StoreCallback`, so the checkpoint of a cycle's
last epoch is the snapshot; a resume that finds that snapshot missing (cancelled during its evaluation) takes it
from the restored model. The running average is written beside the checkpoint with its epoch; a resume whose
checkpoint is one epoch ahead of it adds the restored weights (they are that epoch's).
"""

import json
import os
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path

import keras
import numpy as np

from workbench.constants import PREPROCESSING, Derived, RunStatus, snapshot_label
from workbench.errors import UserError
from workbench.training.checkpoint import checkpoint_epoch, save_checkpoint
from workbench.training.run_store import RunStore

# evaluate(model, run_id) -> stored: the run's own final evaluation (every view, progress, stop), given by fit
Evaluate = Callable[[keras.Model, int], bool]
AVERAGE_FILE = "average.npz"


def store_derived(
    store: RunStore, parent_id: int, derived: str, model: keras.Model, evaluate: Evaluate, *, epoch: int, keep: bool
) -> int | None:
    """Evaluate `model` as run `parent_id`'s derived result `derived`; its checkpoint too when `keep`.
    Returns the derived run's id, or None when a stop request cut the evaluation short."""
    derived_run = getattr(store, "derived_run", None)
    if derived_run is None:  # a Ray job's RemoteStore sends writes, it cannot create a run and hear its id
        raise UserError("snapshots and weight averaging need the local queue: train this spec without --ray")
    run_id = int(derived_run(parent_id, derived, f"run {parent_id} · {derived}"))
    if not evaluate(model, run_id):
        return None
    parent_dir, run_dir = store.run_dir(parent_id), store.run_dir(run_id)
    if keep:
        save_checkpoint(model, run_dir, epoch)
        shutil.copyfile(parent_dir / PREPROCESSING, run_dir / PREPROCESSING)
    val = store.load_logits(run_id, "val").argmax(1) == store.load_labels(run_id, "val")  # type: ignore[attr-defined]
    store.update_run(
        run_id,
        epochs_done=epoch,
        final_val_accuracy=float(val.mean()),
        best_val_accuracy=float(val.mean()),
        best_epoch=epoch,
        checkpoint_path=str(run_dir / "model.keras") if keep else None,
    )
    store.set_status(run_id, RunStatus.COMPLETED)
    return run_id


class SnapshotCallback(keras.callbacks.Callback):
    """At the end of each of `cycles` equal cycles of `epochs`, stores the model as snapshot i (1-based)."""

    def __init__(
        self, store: RunStore, run_id: int, evaluate: Evaluate, *, cycles: int, epochs: int, keep: bool
    ) -> None:
        super().__init__()
        self.store, self.run_id, self.evaluate, self.keep = store, run_id, evaluate, keep
        self.every = epochs // cycles

    def take(self, model: keras.Model, epoch: int) -> None:
        if epoch % self.every == 0:
            label = snapshot_label(epoch // self.every)
            store_derived(self.store, self.run_id, label, model, self.evaluate, epoch=epoch, keep=self.keep)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if checkpoint_epoch(self.store.run_dir(self.run_id)) == epoch + 1:  # whole (not cancelled, not NaN)
            self.take(self.model, epoch + 1)

    def catch_up(self, model: keras.Model, done: int) -> None:
        """On resume at `done` epochs: the snapshot of a cycle that ended there, if it was not stored."""
        if not done or done % self.every:
            return
        label = snapshot_label(done // self.every)
        stored = [r for r in getattr(self.store, "derived_runs", lambda _: [])(self.run_id) if r["derived"] == label]
        if not stored or stored[0]["status"] != RunStatus.COMPLETED:
            self.take(model, done)


class AverageCallback(keras.callbacks.Callback):
    """The running equal-weight mean of the trainable weights at the end of each epoch in `epochs` (1-based:
    the last K, or each snapshot cycle's last), written to `average.npz` (with its epoch and count) beside
    the checkpoint."""

    def __init__(self, run_dir: Path, *, epochs: Iterable[int]) -> None:
        super().__init__()
        self.path = run_dir / AVERAGE_FILE
        self.wanted = frozenset(int(e) for e in epochs)  # the epochs in the average
        self.sum: list[np.ndarray] | None = None
        self.count = 0
        self.epoch = 0

    def add(self, model: keras.Model, epoch: int) -> None:
        if epoch not in self.wanted or epoch <= self.epoch:
            return
        weights = [np.asarray(w, dtype=np.float64) for w in model.trainable_weights]
        self.sum = weights if self.sum is None else [s + w for s, w in zip(self.sum, weights)]
        self.count, self.epoch = self.count + 1, epoch
        tmp = self.path.with_name(f".{AVERAGE_FILE}.tmp.npz")
        np.savez(tmp, *self.sum, meta=np.array(json.dumps({"count": self.count, "epoch": self.epoch})))
        os.replace(tmp, self.path)  # atomic, as the checkpoint

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if checkpoint_epoch(self.path.parent) == epoch + 1:  # whole (not cancelled, not NaN)
            self.add(self.model, epoch + 1)

    def resume(self, model: keras.Model, done: int) -> None:
        """Reload the running sum; the checkpoint being one epoch ahead of it, add that epoch's weights."""
        if done and self.path.exists():
            with np.load(self.path) as saved:
                meta = json.loads(str(saved["meta"]))
                self.sum = [saved[f"arr_{i}"] for i in range(len(saved.files) - 1)]
            self.count, self.epoch = int(meta["count"]), int(meta["epoch"])
        if done:
            self.add(model, done)

    def averaged_weights(self) -> list[np.ndarray]:
        if self.sum is None or not self.count:
            raise UserError("no epoch was averaged: weight averaging needs the run to reach the epochs it averages")
        return [s / self.count for s in self.sum]


def batch_norm_layers(model: keras.Model) -> list[keras.layers.BatchNormalization]:
    # Keras has no public walk over nested layers (blocks keep their BatchNormalization as attributes);
    # _flatten_layers is the walk its own summary and weight tracking use.
    return [
        layer
        for layer in model._flatten_layers(include_self=False, recursive=True)
        if isinstance(layer, keras.layers.BatchNormalization)
    ]


def recompute_batch_norm(model: keras.Model, images: Iterable) -> int:
    """BatchNorm's moving statistics as the exact mean over one pass of `images` (batches of the model's
    input, un-augmented), as SWA's bn_update does: momentum i/(i+1) at batch i makes Keras' moving average a
    cumulative one. Eager calls, one per batch: a tf.function would freeze the momentum. Returns the batches."""
    # A frozen BatchNorm runs in inference mode even when called with training=True: it keeps its statistics
    layers = [layer for layer in batch_norm_layers(model) if layer.trainable]
    if not layers:
        return 0
    saved = [layer.momentum for layer in layers]
    for layer in layers:
        layer.moving_mean.assign(keras.ops.zeros_like(layer.moving_mean))
        layer.moving_variance.assign(keras.ops.ones_like(layer.moving_variance))
    count = 0
    try:
        for batch in images:
            x = batch[0] if isinstance(batch, tuple) else batch
            for layer in layers:
                layer.momentum = count / (count + 1)
            model(x, training=True)
            count += 1
    finally:
        for layer, momentum in zip(layers, saved):
            layer.momentum = momentum
    return count


def store_average(
    store: RunStore,
    run_id: int,
    model: keras.Model,
    averager: AverageCallback,
    train_images: Iterable,
    evaluate: Evaluate,
) -> bool:
    """Put the averaged weights in `model`, recompute its BatchNorm statistics and store it (with its
    checkpoint) as the run's averaged result; False when a stop request cut its evaluation short."""
    for variable, value in zip(model.trainable_weights, averager.averaged_weights()):
        variable.assign(value.astype(variable.dtype))
    recompute_batch_norm(model, train_images)
    stored = store_derived(store, run_id, Derived.AVERAGED, model, evaluate, epoch=averager.epoch, keep=True)
    return stored is not None


def derived_callbacks(
    spec: object, store: RunStore, run_id: int, run_dir: Path, evaluate: Evaluate
) -> tuple[SnapshotCallback | None, AverageCallback | None]:
    """The spec's snapshot and averaging callbacks (None where it asks for none). The average is over the
    last K epochs (`average_last`) or the snapshots (`average_snapshots`): `RunSpec.averaged_epochs`."""
    cycles, epochs = int(getattr(spec, "snapshots", 0)), int(getattr(spec, "epochs", 0))
    keep = bool(getattr(spec, "snapshot_checkpoints", False))
    snapshots = SnapshotCallback(store, run_id, evaluate, cycles=cycles, epochs=epochs, keep=keep) if cycles else None
    averaged = tuple(getattr(spec, "averaged_epochs", tuple)())
    return snapshots, AverageCallback(run_dir, epochs=averaged) if averaged else None


__all__ = [
    "AverageCallback",
    "SnapshotCallback",
    "derived_callbacks",
    "recompute_batch_norm",
    "store_average",
    "store_derived",
]
