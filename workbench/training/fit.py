"""Train one RunSpec: data, strategy, model, Keras callbacks that write to the store, final logits.

Lifecycle (driven by `workbench.jobs.queue` in a worker thread):
    prepare_data -> build or resume the model under the job's strategy -> model.fit with StoreCallback
    -> completed: logits of val/test (and their mirrored copies) to `predictions`, summary to `runs`
    -> or cancelled (stop flag), or diverged (non-finite loss; the last good checkpoint is kept).
"""
import json
import math
import os
import threading
import time
from dataclasses import dataclass

import keras
import numpy as np

import models
from workbench.training import devices as device_utils
from workbench.data.datasets import Dataset, channel_stats, load_dataset, make_split
from workbench.errors import UserError
from workbench.training.losses import build_loss
from workbench.data.pipeline import make_dataset, steps_per_epoch
from workbench.training.schedules import build_schedule
from workbench.specs.run import RunSpec

CHECKPOINT = "model.keras"
CHECKPOINT_INFO = "checkpoint.json"
PROGRESS_EVERY = 2.0  # seconds between in-epoch progress writes
# Mixed-precision policies are process-global in Keras; a layer takes the policy in force when it is
# built, so building under this lock lets side-by-side jobs use different precisions.
_policy_lock = threading.Lock()


@dataclass
class PreparedData:
    dataset: Dataset
    split_id: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    mean: np.ndarray
    std: np.ndarray


def prepare_data(spec: RunSpec, image_size=32, stats=True) -> PreparedData:
    dataset = load_dataset(spec.dataset, spec.data_path or None, image_size=image_size, **spec.dataset_options)
    split = make_split(dataset.y_train, val_size=spec.val_size or None, seed=spec.split_seed)
    train_idx = split.train_idx
    if spec.train_subset:
        # A seeded random subset: the split's indices are sorted, and folder datasets are stored class by class.
        subset = np.random.default_rng(spec.split_seed).permutation(train_idx)[: spec.train_subset]
        train_idx = np.sort(subset)
    x_train = dataset.x_train[train_idx]
    if spec.batch_size > len(x_train):
        raise UserError(f"batch size {spec.batch_size} is larger than the training split ({len(x_train)} images); "
                        "lower --batch-size")
    mean, std = channel_stats(x_train) if stats else (None, None)
    return PreparedData(dataset, split.identity, x_train, dataset.y_train[train_idx],
                        dataset.x_train[split.val_idx], dataset.y_train[split.val_idx], mean, std)


def build_model(spec: RunSpec, num_classes: int, input_shape) -> keras.Model:
    """The spec's model under its precision policy, with L2 weight decay unless the optimizer decouples it."""
    weight_decay = 0.0 if spec.optimizer == "adamw" else spec.weight_decay
    with _policy_lock:
        previous = keras.config.dtype_policy()
        keras.config.set_dtype_policy(spec.precision)
        try:
            return models.create_model(spec.model, num_classes=num_classes, input_shape=tuple(input_shape),
                                       weight_decay=weight_decay, **spec.model_kwargs)
        finally:
            keras.config.set_dtype_policy(previous)


def build_optimizer(spec: RunSpec, schedule) -> keras.optimizers.Optimizer:
    if spec.optimizer == "sgd":
        return keras.optimizers.SGD(schedule, momentum=spec.momentum, nesterov=spec.momentum > 0)
    if spec.optimizer == "adam":
        return keras.optimizers.Adam(schedule)
    if spec.optimizer == "adamw":
        return keras.optimizers.AdamW(schedule, weight_decay=spec.weight_decay)
    return keras.optimizers.RMSprop(schedule, momentum=spec.momentum)


def compile_model(model, spec: RunSpec, steps: int):
    schedule = build_schedule(spec.schedule, base_lr=spec.learning_rate, epochs=spec.epochs,
                              steps_per_epoch=steps, warmup_epochs=spec.warmup_epochs, params=spec.schedule_params)
    # Keras wraps the optimizer in a LossScaleOptimizer itself when the model's policy is mixed_float16.
    model.compile(optimizer=build_optimizer(spec, schedule), loss=build_loss(spec.loss, spec.loss_params),
                  metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")], jit_compile=spec.xla)


class StoreCallback(keras.callbacks.Callback):
    """Writes each epoch to the store, checkpoints it, honours the stop flag, and stops on NaN.

    Order matters for crash safety: the epoch row is written before the checkpoint, and the checkpoint's
    epoch is recorded beside it only once the file is complete. A crash between the two leaves the
    checkpoint one epoch behind; resume deletes the rows after the checkpoint's epoch and redoes them.
    """

    def __init__(self, store, run_id: int, run_dir, stop: threading.Event, train_images: int):
        super().__init__()
        self.store, self.run_id, self.run_dir, self.stop = store, run_id, run_dir, stop
        self.train_images = train_images
        self.diverged = False
        self._started = 0.0
        self._progress_written = time.perf_counter()

    def on_epoch_begin(self, epoch, logs=None):
        self._started = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        if self.stop.is_set():  # checked every step: a cancel takes effect within one batch
            self.model.stop_training = True
        now = time.perf_counter()
        if now - self._progress_written >= PROGRESS_EVERY:  # a few writes a minute, not one per step
            self._progress_written = now
            self.store.update_run(self.run_id, step=batch + 1)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.stop.is_set() and self.model.stop_training:
            return  # cancelled mid-epoch: the partial epoch is neither logged nor checkpointed
        seconds = time.perf_counter() - self._started
        loss = float(logs.get("loss", float("nan")))
        self.store.log_epoch(self.run_id, epoch + 1, lr=float(self.model.optimizer.learning_rate), loss=loss,
                             accuracy=_get(logs, "accuracy"), val_loss=_get(logs, "val_loss"),
                             val_accuracy=_get(logs, "val_accuracy"), seconds=seconds)
        if not math.isfinite(loss):
            self.diverged = True  # keep the last good checkpoint: do not overwrite it with NaN weights
            self.model.stop_training = True
            return
        save_checkpoint(self.model, self.run_dir, epoch + 1)
        self.store.update_run(self.run_id, step=0)


def _get(logs, key):
    value = logs.get(key)
    return None if value is None else float(value)


def save_checkpoint(model, run_dir, epoch: int):
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


def load_checkpoint(run_dir):
    """The checkpointed model, loaded with Keras' safe_mode (no arbitrary code from the file)."""
    path = run_dir / CHECKPOINT
    try:
        return keras.models.load_model(path, safe_mode=True)
    except Exception as exc:  # zip, HDF5 and config errors all mean the same thing to the user
        raise UserError(f"the checkpoint {path} cannot be loaded ({type(exc).__name__}: {str(exc)[:200]}); it is "
                        "damaged (a truncated copy or a full disk?). Start the run again (clone it in the Runs tab)") from None


def checkpoint_epoch(run_dir) -> int:
    """The epoch of the complete checkpoint in run_dir, 0 if there is none."""
    try:
        info = json.loads((run_dir / CHECKPOINT_INFO).read_text())
        return int(info["epoch"]) if (run_dir / CHECKPOINT).exists() else 0
    except (OSError, ValueError, KeyError):
        return 0


def fit(spec: RunSpec, store, run_id: int, *, devices: list, stop: threading.Event, resume=False) -> str:
    """Train (or resume) run `run_id`; returns the final status. Exceptions propagate to the job runner,
    which marks the run failed with the message."""
    started = time.perf_counter()
    keras.utils.set_random_seed(spec.seed)
    data = prepare_data(spec)
    run_dir = store.run_dir(run_id)
    strategy = device_utils.strategy_for(devices)
    steps = steps_per_epoch(len(data.x_train), spec.batch_size)
    initial_epoch = checkpoint_epoch(run_dir) if resume else 0
    with strategy.scope():
        if initial_epoch:
            model = load_checkpoint(run_dir)
        else:
            model = build_model(spec, data.dataset.num_classes, data.dataset.image_shape)
            compile_model(model, spec, steps)
    store.truncate_epochs(run_id, initial_epoch)
    store.update_run(run_id, params=int(model.count_params()), split_id=data.split_id,
                     dataset=data.dataset.source, device=_describe(devices), step=0,
                     checkpoint_path=str(run_dir / CHECKPOINT), train_images=steps * spec.batch_size,
                     steps_per_epoch=steps)
    store.set_status(run_id, "running")
    batches = dict(num_classes=data.dataset.num_classes, batch_size=spec.batch_size, mean=data.mean, std=data.std)
    train_ds = make_dataset(data.x_train, data.y_train, training=True, augment=spec.augment,
                            augment_options=spec.augment_params, seed=spec.seed + 7919 * initial_epoch, **batches)
    val_ds = make_dataset(data.x_val, data.y_val, **batches)
    callback = StoreCallback(store, run_id, run_dir, stop, len(data.x_train))
    if initial_epoch < spec.epochs and not stop.is_set():
        model.fit(train_ds, validation_data=val_ds, epochs=spec.epochs, initial_epoch=initial_epoch,
                  callbacks=[callback], verbose=0, shuffle=False)  # the pipeline shuffles
    seconds = (store.get_run(run_id).get("train_seconds") or 0) + time.perf_counter() - started
    if callback.diverged:
        status, error = "diverged", "the loss became NaN or infinite; lower the learning rate (the last good checkpoint is kept)"
    elif stop.is_set():
        status, error = "cancelled", None
    else:
        test_accuracy = save_predictions(model, store, run_id, data, batches)
        store.update_run(run_id, test_accuracy=test_accuracy)
        status, error = "completed", None
    store.update_run(run_id, train_seconds=seconds)
    store.set_status(run_id, status, error)
    return status


def save_predictions(model, store, run_id, data: PreparedData, batches: dict, resize_to=None) -> float:
    """Logits of validation and test, plain and mirrored (for flip test-time augmentation)."""
    splits = {"val": (data.x_val, data.y_val), "test": (data.dataset.x_test, data.dataset.y_test)}
    test_accuracy = None
    for split, (x, y) in splits.items():
        for flip in (False, True):
            ds = make_dataset(x, y, flip=flip, resize_to=resize_to, **batches)
            logits = np.asarray(model.predict(ds, verbose=0), dtype=np.float32)
            store.save_logits(run_id, f"{split}_flip" if flip else split, logits, y)
            if split == "test" and not flip:
                test_accuracy = float((logits.argmax(1) == y).mean())
    return test_accuracy


def _describe(devices: list) -> str:
    """The devices as the runs table shows them, GPUs by their physical number: a job's process sees
    its leased cards renumbered from 0 through CUDA_VISIBLE_DEVICES (`workbench.jobs.child`)."""
    physical = device_utils.cuda_visible_ids(os.environ.get("CUDA_VISIBLE_DEVICES"))
    names = []
    for device in devices:
        kind, _, index = device.split("device:")[-1].lstrip("/").upper().partition(":")
        if kind == "GPU" and index.isdigit() and int(index) < len(physical):
            index = physical[int(index)]
        names.append(f"{kind}:{index}")
    return ", ".join(names) or "CPU:0"
