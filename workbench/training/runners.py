"""What differs between the kinds of run, as data for the one training loop (`workbench.training.fit`).

A runner says how a spec's model is built, how its pixels reach the model, and its phases: each phase
runs up to an epoch and first gets the model ready (which layers train, which optimizer). A scratch run
is one phase; a fine-tune run is two (the new head on the frozen backbone, then the backbone's top); a
distillation run is a scratch run whose model is a `Distiller` taught by its teacher.

    runner = runner_for(spec)            # by the spec's kind
    model = runner.build(num_classes, image_shape, restoring=False)
    for phase in runner.phases(steps_per_epoch): phase.prepare(model); model.fit(..., epochs=phase.until)
"""

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import keras
import numpy as np

import models
from workbench.constants import PREPROCESSING, DistillMode, RunKind
from workbench.data.pipeline import BatchOptions, make_dataset
from workbench.data.split import PreparedData
from workbench.errors import UserError
from workbench.specs.base import Spec
from workbench.specs.distill import DistillSpec
from workbench.specs.finetune import FinetuneSpec
from workbench.specs.run import RunSpec
from workbench.training import backbones
from workbench.training.checkpoint import CHECKPOINT, load_checkpoint
from workbench.training.distiller import (
    TEACHER_TARGETS,
    Distiller,
    Teacher,
    as_distiller,
    check_same_teacher,
    pixel_map,
)
from workbench.training.losses import build_loss
from workbench.training.precision import under_policy
from workbench.training.recipe import recipe_callbacks
from workbench.training.run_store import RunStore
from workbench.training.schedules import build_schedule

DATA_INIT_IMAGES = 5000  # training images a family's data-computed weights see (cifar10-airbench: 5,000)


@dataclass
class Phase:
    until: int  # the phase's last epoch (1-based, inclusive)
    prepare: Callable  # prepare(model): trainable layers and compile, under the job's strategy
    callbacks: Sequence[keras.callbacks.Callback] = ()  # the phase's own, before the store's (lookahead, ...)


def accuracy_metric() -> keras.metrics.Metric:
    return keras.metrics.CategoricalAccuracy(name="accuracy")


# --- scratch -----------------------------------------------------------------------------------


def build_model(spec: RunSpec, num_classes: int, input_shape: Sequence[int]) -> keras.Model:
    """A zoo model under the spec's precision, with L2 weight decay unless the optimizer decouples it.
    A model option with a value the family refuses is a UserError (the job fails with its message)."""
    weight_decay = 0.0 if spec.optimizer == "adamw" else spec.weight_decay
    # cifar10-airbench's model-side settings (Dirac init, BN-bias rate, whitening bias) are run settings
    recipe = spec.airbench_options() if models.model_info(spec.model)["family"] == "airbench" else {}
    try:
        return under_policy(
            spec.precision,
            lambda: models.create_model(
                spec.model,
                num_classes=num_classes,
                input_shape=tuple(input_shape),
                weight_decay=weight_decay,
                **spec.model_kwargs,
                **recipe,
            ),
        )
    except UserError:
        raise
    except (ValueError, TypeError) as exc:
        raise UserError(f"model {spec.model!r} cannot be built with {spec.model_kwargs}: {exc}") from None


def build_optimizer(spec: RunSpec, schedule: Any) -> keras.optimizers.Optimizer:
    # ema_momentum > 0: Keras keeps an exponential moving average of the weights, which replaces them
    # when training ends (fit's finalize_variable_values), so the final evaluation uses the average.
    ema = getattr(spec, "ema_momentum", 0.0)
    kw = dict(use_ema=True, ema_momentum=ema) if ema > 0 else {}
    if spec.optimizer == "sgd":
        return keras.optimizers.SGD(schedule, momentum=spec.momentum, nesterov=spec.momentum > 0, **kw)
    if spec.optimizer == "adam":
        return keras.optimizers.Adam(schedule, **kw)
    if spec.optimizer == "adamw":
        return keras.optimizers.AdamW(schedule, weight_decay=spec.weight_decay, **kw)
    return keras.optimizers.RMSprop(schedule, momentum=spec.momentum, **kw)


def compile_model(model: keras.Model, spec: RunSpec, steps: int) -> None:
    schedule = build_schedule(
        spec.schedule,
        base_lr=spec.learning_rate,
        epochs=spec.epochs,
        steps_per_epoch=steps,
        warmup_epochs=spec.warmup_epochs,
        params=spec.schedule_params,
        cycles=max(1, getattr(spec, "snapshots", 0)),
    )
    # Keras wraps the optimizer in a LossScaleOptimizer itself when the model's policy is mixed_float16.
    model.compile(
        optimizer=build_optimizer(spec, schedule),
        loss=build_loss(spec.loss, spec.loss_params),
        metrics=[accuracy_metric()],
        jit_compile=spec.xla,
    )


class Runner(Protocol):
    """What the loop needs of a kind of run (`ScratchRunner`, `FinetuneRunner`)."""

    normalizes: bool  # the pipeline standardises pixels; False: the model gets 0..255
    resize_to: int | None

    def build(self, num_classes: int, image_shape: Sequence[int], *, restoring: bool) -> keras.Model: ...

    def init_from_data(self, model: keras.Model, data: PreparedData, batches: BatchOptions) -> None: ...

    def phases(self, steps: int) -> list[Phase]: ...

    def prepare_fit(
        self, model: keras.Model, store: RunStore, run_id: int, data: PreparedData, batches: BatchOptions
    ) -> np.ndarray | None:
        """What the kind needs once the model is ready, on a start and on a resume (a distillation's
        teacher); returns [N, K] targets the training batches carry beside the labels, or None."""
        ...


class ScratchRunner:
    """A zoo model, trained in one phase; the pipeline normalises with the training split's statistics."""

    normalizes = True  # the pipeline standardises pixels; False: the model gets 0..255
    resize_to: int | None = None

    def __init__(self, spec: RunSpec) -> None:
        self.spec = spec

    def build(self, num_classes: int, image_shape: Sequence[int], *, restoring: bool) -> keras.Model:
        return build_model(self.spec, num_classes, image_shape)

    def init_from_data(self, model: keras.Model, data: PreparedData, batches: BatchOptions) -> None:
        """Weights the family computes from the training images (airbench's whitening layer), from up
        to 5,000 of them normalised as the pipeline feeds them."""
        if models.needs_data_init(self.spec.model):
            images = data.x_train[:DATA_INIT_IMAGES].astype(np.float32)
            models.init_from_data(self.spec.model, model, (images - batches.mean) / batches.std)

    def phases(self, steps: int) -> list[Phase]:
        return [
            Phase(
                self.spec.epochs,
                lambda model: compile_model(model, self.spec, steps),
                recipe_callbacks(self.spec, steps),
            )
        ]

    def prepare_fit(
        self, model: keras.Model, store: RunStore, run_id: int, data: PreparedData, batches: BatchOptions
    ) -> np.ndarray | None:
        return None


class FinetuneRunner:
    """An ImageNet backbone with a new head (`workbench.training.backbones`), in two phases; the model
    takes 0..255 pixels at the spec's size and preprocesses them itself."""

    normalizes = False

    def __init__(self, spec: FinetuneSpec) -> None:
        self.spec = spec
        self.resize_to: int | None = spec.image_size
        self.backbone, self.start = None, 0

    def build(self, num_classes: int, image_shape: Sequence[int], *, restoring: bool) -> keras.Model:
        # Restoring: the checkpoint's weights replace the backbone's, so skip loading the ImageNet file.
        model, self.backbone = backbones.build_model(self.spec, num_classes, weights="none" if restoring else None)
        self.start = backbones.unfreeze_index(self.spec, self.backbone)
        return model

    def init_from_data(self, model: keras.Model, data: PreparedData, batches: BatchOptions) -> None:
        """Nothing: the backbone's weights come from ImageNet."""

    def phases(self, steps: int) -> list[Phase]:
        def phase(number: int) -> Callable[[keras.Model], None]:
            def prepare(model: keras.Model) -> None:
                backbones.set_phase(self.backbone, number, self.start)
                backbones.compile_phase(model, self.spec, number)

            return prepare

        return [Phase(self.spec.head_epochs, phase(1)), Phase(self.spec.epochs, phase(2))]

    def prepare_fit(
        self, model: keras.Model, store: RunStore, run_id: int, data: PreparedData, batches: BatchOptions
    ) -> np.ndarray | None:
        return None


class DistillRunner(ScratchRunner):
    """A zoo model trained as a scratch run is, as a `Distiller` (its own graph with the distillation
    loss, `workbench.training.distiller`) taught by the spec's resolved teacher members."""

    def __init__(self, spec: DistillSpec) -> None:
        super().__init__(spec)
        self.distill = spec

    def build(self, num_classes: int, image_shape: Sequence[int], *, restoring: bool) -> keras.Model:
        return as_distiller(build_model(self.spec, num_classes, image_shape))

    def prepare_fit(
        self, model: keras.Model, store: RunStore, run_id: int, data: PreparedData, batches: BatchOptions
    ) -> np.ndarray | None:
        """Load the teacher (refusing one that changed since the run started), and in cached mode its
        probabilities on the un-augmented training images: computed on the first start, stored in the
        run's folder and read back on a resume."""
        spec, run_dir = self.distill, store.run_dir(run_id)
        if not spec.members:
            raise UserError("the distillation run has no resolved teacher; queue it again with --teacher")
        files = [(r, w, teacher_dir(store, r) / CHECKPOINT) for r, w in spec.members]
        for member, _, path in files:
            if not path.is_file():
                raise UserError(f"teacher run {member} has no checkpoint ({path}); it cannot teach")
        check_same_teacher(run_dir, files)
        assert isinstance(model, Distiller), "DistillRunner builds Distillers"
        cached = spec.distill_mode == DistillMode.CACHED
        targets_path = run_dir / TEACHER_TARGETS
        if cached and targets_path.is_file():
            targets = np.load(targets_path)
            if targets.shape == (len(data.x_train), data.dataset.num_classes):
                model.teach(None, temperature=spec.temperature, alpha=spec.alpha, cached=True)
                return targets
        teacher = load_teacher(store, spec.members, batches)
        model.teach(teacher, temperature=spec.temperature, alpha=spec.alpha, cached=cached)
        if not cached:
            return None
        images = make_dataset(data.x_train, data.y_train, batches)
        targets = np.concatenate([np.asarray(teacher.probs(x, spec.temperature)) for x, _ in images]).astype(np.float32)
        tmp = run_dir / f".{TEACHER_TARGETS}.tmp.npy"
        np.save(tmp, targets)
        os.replace(tmp, targets_path)
        return targets


def teacher_dir(store: RunStore, run_id: int) -> Path:
    """A teacher member's run folder; a member deleted since the run was queued is said as such."""
    try:
        return store.run_dir(run_id)
    except UserError:
        raise UserError(
            f"teacher run {run_id} was deleted since this run was queued: it cannot go on with its teacher; "
            "start a new distillation run (Clone it in the Runs tab and pick another teacher)"
        ) from None


def load_teacher(store: RunStore, members: Sequence[tuple[int, float]], batches: BatchOptions) -> Teacher:
    """The teacher's networks from their checkpoints (safe_mode), each with its map from the student's
    pixels to its own (its preprocessing.json: the statistics it was normalised with)."""
    loaded = []
    for run_id, weight in members:
        run_dir = teacher_dir(store, run_id)
        info = json.loads((run_dir / PREPROCESSING).read_text())
        if info.get("mean") is None or info.get("resize_to"):
            raise UserError(f"teacher run {run_id} takes other pixels (a fine-tune); it cannot teach this student")
        teacher_model = load_checkpoint(run_dir)
        teacher_model.trainable = False
        loaded.append((teacher_model, weight, *pixel_map(batches.mean, batches.std, info["mean"], info["std"])))
    return Teacher(loaded)


RUNNERS: dict[str, Callable[[Any], Runner]] = {
    RunKind.SCRATCH: ScratchRunner,
    RunKind.FINETUNE: FinetuneRunner,
    RunKind.DISTILL: DistillRunner,
}  # spec -> runner


def runner_for(spec: Spec) -> Runner:
    """The runner of a spec's kind (the spec protocol's `kind`, `workbench.specs.base`)."""
    return RUNNERS[spec.kind](spec)
