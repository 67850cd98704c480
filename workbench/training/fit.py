"""Train one spec, of any kind, into the store: the one training loop.

    fit(spec, store, run_id, devices=[], stop=threading.Event(), resume=False) -> final status

Lifecycle (run by `workbench.jobs`, in the job's own child process):
    prepare_data -> the runner builds the model under the job's strategy (on resume: rebuilt from the
    spec, the checkpoint's weights and optimizer state loaded) -> each phase: prepare, model.fit with
    StoreCallback -> completed: logits of val/test (and their mirrored copies) to `predictions`
    -> or cancelled (stop flag), or diverged (non-finite loss; the last good checkpoint is kept).
What differs between kinds of run (the model, the pixels it takes, its phases) is `workbench.training.runners`.
"""

import math
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import cast

import keras
import numpy as np

from store.store import Store, utc_now
from workbench.constants import RunPhase, RunStatus
from workbench.data.datasets import Dataset
from workbench.data.pipeline import BatchOptions, make_dataset, steps_per_epoch
from workbench.data.split import OOF, PreparedData, load_spec_dataset, prepare_data
from workbench.specs.base import Spec
from workbench.specs.hardware import precision_warning
from workbench.training import devices as device_utils
from workbench.training.checkpoint import (
    CHECKPOINT,
    StoreCallback,
    checkpoint_epoch,
    restore_weights,
    save_checkpoint,
    save_preprocessing,
)
from workbench.training.progress import EvaluationProgress, ProgressWriter
from workbench.training.reviews import training_reviews
from workbench.training.run_store import RunStore
from workbench.training.runners import Phase, Runner, runner_for
from workbench.training.snapshots import derived_callbacks, store_average
from workbench.training.tensorboard import live_writer
from workbench.training.verdict import pruned_by_study

DIVERGED = "the loss became NaN or infinite; lower the learning rate (the last good checkpoint is kept)"


def fit(
    spec: Spec,
    store: RunStore,
    run_id: int,
    *,
    devices: list,
    stop: threading.Event,
    resume: bool = False,
    dataset: Dataset | None = None,
    on_checkpoint: Callable[[int], None] | None = None,
    prune: threading.Event | None = None,
) -> str:
    """Train (or resume) run `run_id`; returns the final status. Exceptions propagate to the job runner,
    which marks the run failed with the message.
    dataset: the spec's decoded `Dataset`, when the job got it from elsewhere (a Ray node without the data
    path gets it through Ray's object store); on_checkpoint(epoch): called after each checkpoint is whole
    (a Ray job copies it to storage every node reaches); prune: set by a study's pruner, the run stops after
    its current epoch and becomes pruned (its epochs and checkpoint kept: resume continues it)."""
    run = store.get_run(run_id)
    progress = ProgressWriter(store, run_id, prior_seconds=run.get("train_seconds") or 0.0)
    progress.write(
        phase=RunPhase.PREPARING,
        attempt=(run.get("attempt") or 0) + 1,
        attempt_started_at=utc_now(),
        step=0,
        step_seconds=None,
    )
    runner = runner_for(spec)
    warning = precision_warning(spec.precision, on_cpu=not any("GPU" in d.upper() for d in devices))
    if warning:
        print(f"warning: {warning}", flush=True)  # the job's process.log
    keras.utils.set_random_seed(spec.seed)
    drop, relabel = None, None
    if (spec.dataset_options or {}).get("reviews"):
        dataset = dataset if dataset is not None else load_spec_dataset(spec)
        drop, relabel, used = training_reviews(store, spec, dataset)
        store.update_run(run_id, reviews_used=used)
    data = prepare_data(spec, stats=runner.normalizes, dataset=dataset, drop=drop, relabel=relabel)
    run_dir = store.run_dir(run_id)
    save_preprocessing(
        run_dir,
        mean=data.mean,
        std=data.std,
        resize_to=runner.resize_to,
        image_shape=data.dataset.image_shape,
        class_names=data.dataset.class_names,
    )
    strategy = device_utils.strategy_for(devices)
    steps = steps_per_epoch(len(data.x_train), spec.batch_size)
    done = min(checkpoint_epoch(run_dir), spec.epochs) if resume else 0
    phases = runner.phases(steps)
    current = next((i for i, p in enumerate(phases) if p.until > done), len(phases) - 1)
    batches = batch_options(spec, data, runner)
    with strategy.scope():
        model = runner.build(data.dataset.num_classes, data.dataset.image_shape, restoring=bool(done))
        if not done:  # weights computed from the data (airbench's whitening); a checkpoint has them
            runner.init_from_data(model, data, batches)
        _restore(model, run_dir, phases, current, done)
        extra_targets = runner.prepare_fit(model, store, run_id, data, batches)
    store.truncate_epochs(run_id, done)
    store.update_run(
        run_id,
        params=int(model.count_params()),
        split_id=data.split_id,
        dataset=data.dataset.source,
        device=describe_devices(devices),
        step=0,
        checkpoint_path=str(run_dir / CHECKPOINT),
        train_images=steps * spec.batch_size,
        steps_per_epoch=steps,
        val_steps=math.ceil(len(data.y_val) / spec.batch_size),  # the validation keeps its last partial batch
        phase=RunPhase.TRAINING,
    )
    store.set_status(run_id, RunStatus.RUNNING)
    train_ds = make_dataset(
        data.x_train,
        data.y_train,
        batches,
        training=True,
        augment=spec.augment,
        augment_options=getattr(spec, "augment_params", None),
        seed=spec.seed + 7919 * done,
        first_epoch=done,
        low_res_epochs=getattr(spec, "low_res_epochs", 0),
        extra_targets=extra_targets,
    )
    val_ds = make_dataset(data.x_val, data.y_val, batches)
    # TensorBoard event files as it trains, if the spec asks (a Ray job's spec does not: the store is local)
    events = live_writer(spec, cast(Store, store), run_id)
    callback = StoreCallback(
        store,
        run_id,
        run_dir,
        stop,
        progress,
        on_logged=events.epoch if events else None,
        on_checkpoint=on_checkpoint,
        prune=prune,
        verdict=lambda epoch: pruned_by_study(store, run_id, epoch, stop),
    )
    views = prediction_views(spec)

    def evaluate(evaluated: keras.Model, target: int) -> bool:  # a snapshot's or the average's evaluation
        return save_predictions(evaluated, store, target, data, batches, progress, stop, views)

    # After StoreCallback: a cycle's last checkpoint is its snapshot (workbench.training.snapshots)
    snapshots, averager = derived_callbacks(spec, store, run_id, run_dir, evaluate)
    if snapshots is not None:
        snapshots.catch_up(model, done)
    if averager is not None:
        averager.resume(model, done)
    callbacks = [callback] + [c for c in (snapshots, averager) if c is not None]
    for index in range(current, len(phases)):
        phase = phases[index]
        if done >= phase.until or stop.is_set() or callback.diverged or callback.pruned_at:
            continue
        if index != current:  # the previous phase just ended: unfreeze, switch optimizers
            with strategy.scope():
                phase.prepare(model)
        model.fit(
            train_ds,
            validation_data=val_ds,
            epochs=phase.until,
            initial_epoch=done,
            callbacks=[*phase.callbacks, *callbacks],  # the recipe's (lookahead) before the checkpoint's
            verbose=0,
            shuffle=False,
        )  # the pipeline shuffles
        done = phase.until
    pruned_early = 0 < callback.pruned_at < phases[-1].until  # pruned on its last epoch: it completes
    if not (stop.is_set() or callback.diverged or pruned_early) and getattr(spec, "ema_momentum", 0.0) > 0:
        # fit swapped the optimizer's EMA into the weights as it ended; the epoch's checkpoint holds the raw
        # ones. The logits stored next are the EMA's, so Predict, export, Grad-CAM and a resume of an
        # interrupted evaluation must load the same weights.
        save_checkpoint(model, run_dir, done)
    if callback.diverged:
        status, error = RunStatus.DIVERGED, DIVERGED
    elif pruned_early and not stop.is_set():
        status, error = RunStatus.PRUNED, None
    elif (
        not stop.is_set()
        and save_predictions(model, store, run_id, data, batches, progress, stop, views)
        and (averager is None or store_average(store, run_id, model, averager, train_pass(data, batches), evaluate))
    ):
        status, error = RunStatus.COMPLETED, None
    else:
        status, error = RunStatus.CANCELLED, None
    progress.write()
    store.set_status(run_id, status, error)
    if events:
        events.finish(store.get_run(run_id))
    return status


def train_pass(data: PreparedData, batches: BatchOptions) -> Iterable:
    """The training images un-augmented, in order: the one pass that recomputes an average's BatchNorm."""
    return make_dataset(data.x_train, data.y_train, batches)


def _restore(model: keras.Model, run_dir: Path, phases: list[Phase], current: int, done: int) -> None:
    """Get the model ready for phase `current` after `done` epochs: at a phase's first epoch the phase
    starts a new optimizer (weights only from the checkpoint); within a phase the optimizer's state
    (its step, so the schedule goes on; momenta) comes back too."""
    phase_start = phases[current - 1].until if current else 0
    if done and done == phase_start:
        restore_weights(model, run_dir)
    phases[current].prepare(model)
    if done and done != phase_start:
        model.optimizer.build(model.trainable_variables)
        restore_weights(model, run_dir)


def batch_options(spec: Spec, data: PreparedData, runner: Runner) -> BatchOptions:
    """The run's batches: its spec's batch size, its data's classes, and the pixels as its runner's model
    takes them (standardised by the training split's statistics, or 0..255; resized for a fine-tune)."""
    if runner.normalizes:
        assert data.mean is not None and data.std is not None, "prepare_data gives a normalising runner its statistics"
        mean, std = data.mean, data.std
    else:  # the identity: the model gets 0..255 pixels and preprocesses them itself
        mean, std = np.zeros(3, np.float32), np.ones(3, np.float32)
    return BatchOptions(
        num_classes=data.dataset.num_classes, batch_size=spec.batch_size, mean=mean, std=std, resize_to=runner.resize_to
    )


# The stored views of each split: (suffix, flip, shifts whose logits are averaged). Every run stores the
# plain and mirrored ones; a run trained with `translate` also stores the images moved by 1 pixel both
# ways (cifar10-airbench's translate test-time augmentation), plain and mirrored.
VIEWS = (("", False, (0,)), ("_flip", True, (0,)))
TRANSLATE_VIEWS = (("_translate", False, (-1, 1)), ("_translate_flip", True, (-1, 1)))


def prediction_views(spec: Spec) -> tuple:
    return VIEWS + (TRANSLATE_VIEWS if "translate" in spec.augment else ())


def save_predictions(
    model: keras.Model,
    store: RunStore,
    run_id: int,
    data: PreparedData,
    batches: BatchOptions,
    progress: ProgressWriter,
    stop: threading.Event,
    views: Sequence[tuple[str, bool, tuple[int, ...]]] = VIEWS,
) -> bool:
    """Logits of validation and test for each of `views` (plain, mirrored for flip test-time
    augmentation, translated), and the test accuracy (plain); its batches are progress steps of one pass
    (phase "evaluating validation", then "... test").
    A stop request ends it after the current batch with nothing stored: returns False."""
    splits = {
        RunPhase.EVAL_VALIDATION: ("val", data.x_val, data.y_val),
        RunPhase.EVAL_TEST: ("test", data.dataset.x_test, data.dataset.y_test),
    }
    if len(data.y_holdout):  # a cross-validation run: its held-out fold, for the out-of-fold matrix
        splits[RunPhase.EVAL_HOLDOUT] = (OOF, data.x_holdout, data.y_holdout)
    per_pass = {phase: math.ceil(len(y) / batches.batch_size) for phase, (_, _, y) in splits.items()}
    callback = EvaluationProgress(progress, stop)
    passes = sum(len(shifts) for _, _, shifts in views)
    progress.begin_pass(eval_steps=passes * sum(per_pass.values()))
    results = []
    for phase, (split, x, y) in splits.items():
        progress.write(phase=phase, step=callback.offset, step_seconds=progress.pass_seconds())
        for suffix, flip, shifts in views:
            logits = []
            for shift in shifts:
                ds = make_dataset(x, y, batches, flip=flip, shift=shift)
                logits.append(np.asarray(model.predict(ds, verbose=0, callbacks=[callback]), dtype=np.float32))
                if stop.is_set():
                    return False
                callback.offset += per_pass[phase]
            results.append((split + suffix, np.mean(logits, axis=0, dtype=np.float32), y))
    for split, view_logits, y in results:
        store.save_logits(run_id, split, view_logits, y)
    _, test_logits, test_labels = results[len(views)]
    store.update_run(
        run_id, test_accuracy=float((test_logits.argmax(1) == test_labels).mean()), eval_seconds=progress.pass_seconds()
    )
    return True


def describe_devices(devices: list) -> str:
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
