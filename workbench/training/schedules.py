"""Learning-rate schedules by name, stepped per optimizer iteration.

`step` and `cosine` are Keras' own `PiecewiseConstantDecay` and `CosineDecay`; Keras has no
hyperbolic-tangent decay, no warm-up wrapper for arbitrary schedules and no piecewise-linear schedule
(`linear`: cifar10-airbench's warm-up then linear decay; `PolynomialDecay(power=1)` has no warm-up), so
those are written here (small, serialisable, so a saved `.keras` model restores its optimizer's schedule).
"""

from collections.abc import Callable, Iterable
from typing import Any

import keras
import numpy as np

from workbench.errors import UserError
from workbench.specs.catalogue import SCHEDULES, schedule_params

__all__ = ["SCHEDULES", "build_schedule", "learning_rates", "schedule_params"]


@keras.saving.register_keras_serializable(package="workbench")
class HyperbolicTangentDecay(keras.optimizers.schedules.LearningRateSchedule):
    """lr(t) = lr0 / 2 * (1 - tanh(L + (U - L) * t / T))  (Hsueh et al. 2019)."""

    def __init__(self, initial_learning_rate: float, decay_steps: int, lower: float = -6.0, upper: float = 3.0) -> None:
        self.initial_learning_rate = float(initial_learning_rate)
        self.decay_steps = int(decay_steps)
        self.lower, self.upper = float(lower), float(upper)

    def __call__(self, step: Any) -> Any:
        progress = keras.ops.minimum(keras.ops.cast(step, "float32") / self.decay_steps, 1.0)
        return self.initial_learning_rate / 2 * (1 - keras.ops.tanh(self.lower + (self.upper - self.lower) * progress))

    def get_config(self) -> dict:
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": self.decay_steps,
            "lower": self.lower,
            "upper": self.upper,
        }


@keras.saving.register_keras_serializable(package="workbench")
class LinearWarmup(keras.optimizers.schedules.LearningRateSchedule):
    """Ramp linearly from 0 to the wrapped schedule's value over `warmup_steps`, then follow it."""

    def __init__(self, schedule: keras.optimizers.schedules.LearningRateSchedule | dict, warmup_steps: int) -> None:
        if isinstance(schedule, dict):
            schedule = keras.optimizers.schedules.deserialize(schedule)
        self.schedule = schedule
        self.warmup_steps = int(warmup_steps)

    def __call__(self, step: Any) -> Any:
        step = keras.ops.cast(step, "float32")
        ramp = keras.ops.minimum((step + 1) / self.warmup_steps, 1.0)
        return ramp * self.schedule(step)

    def get_config(self) -> dict:
        return {"schedule": keras.optimizers.schedules.serialize(self.schedule), "warmup_steps": self.warmup_steps}


@keras.saving.register_keras_serializable(package="workbench")
class PiecewiseLinear(keras.optimizers.schedules.LearningRateSchedule):
    """The rate interpolated linearly between (boundaries[i], values[i]), constant beyond the ends
    (NumPy's `interp`, as cifar10-airbench's schedule)."""

    def __init__(self, boundaries: Iterable[float], values: Iterable[float]) -> None:
        self.boundaries = [float(b) for b in boundaries]
        self.values = [float(v) for v in values]

    def __call__(self, step: Any) -> Any:
        step = keras.ops.cast(step, "float32")
        rate = keras.ops.cast(self.values[0], "float32") + 0 * step
        for (b0, v0), (b1, v1) in zip(zip(self.boundaries, self.values), zip(self.boundaries[1:], self.values[1:])):
            fraction = keras.ops.clip((step - b0) / max(b1 - b0, 1e-9), 0.0, 1.0)
            rate = rate + fraction * (v1 - v0)
        return rate

    def get_config(self) -> dict:
        return {"boundaries": self.boundaries, "values": self.values}


@keras.saving.register_keras_serializable(package="workbench")
class Constant(keras.optimizers.schedules.LearningRateSchedule):
    def __init__(self, learning_rate: float) -> None:
        self.learning_rate = float(learning_rate)

    def __call__(self, step: Any) -> Any:
        return keras.ops.cast(self.learning_rate, "float32") + 0 * keras.ops.cast(step, "float32")

    def get_config(self) -> dict:
        return {"learning_rate": self.learning_rate}


def build_schedule(
    name: str,
    *,
    base_lr: float,
    epochs: int,
    steps_per_epoch: int,
    warmup_epochs: float = 0,
    params: dict | None = None,
    cycles: int = 1,
) -> keras.optimizers.schedules.LearningRateSchedule:
    """The schedule for a run of `epochs` x `steps_per_epoch` optimizer steps; `cycles` > 1 (a snapshot
    ensemble, cosine only): that many equal cosine cycles, each restarting at the peak rate."""
    params = schedule_params(name, params)
    if not base_lr > 0:
        raise UserError("learning rate must be > 0 (classic SGD recipe: 0.1)")
    if not 0 <= warmup_epochs < epochs:
        raise UserError(f"warm-up epochs must be in [0, {epochs}) for a {epochs}-epoch run")
    total = max(1, int(epochs * steps_per_epoch))
    warmup = round(warmup_epochs * steps_per_epoch)
    if name == "cosine" and cycles > 1:
        # Keras' CosineDecayRestarts with equal cycles (t_mul=1) of equal height (m_mul=1): Huang et al.'s
        # snapshot schedule; each cycle ends at an epoch's end (RunSpec checks epochs % cycles == 0).
        if epochs % cycles:
            raise UserError(f"{epochs} epochs do not split into {cycles} equal cosine cycles")
        return keras.optimizers.schedules.CosineDecayRestarts(
            base_lr,
            first_decay_steps=max(1, total // cycles),
            t_mul=1.0,
            m_mul=1.0,
            alpha=params["final_fraction"],
        )
    if name == "cosine":
        # Keras' CosineDecay ramps up itself: from 0 to warmup_target over warmup_steps, then decays.
        return keras.optimizers.schedules.CosineDecay(
            0.0 if warmup else base_lr,
            decay_steps=max(1, total - warmup),
            alpha=params["final_fraction"],
            warmup_target=base_lr if warmup else None,
            warmup_steps=warmup,
        )
    if name == "linear":
        # Its own warm-up: up from start_fraction (not 0) over the warm-up steps, then down to the end.
        values = [base_lr * params["start_fraction"], base_lr, base_lr * params["final_fraction"]]
        return PiecewiseLinear([0, warmup, total], values) if warmup else PiecewiseLinear([0, total], values[1:])
    if name == "step":
        # PiecewiseConstantDecay switches *after* a boundary step; -1 makes the new rate start exactly
        # at the milestone's first step (epoch 60 of 200 starts at step 60 * steps_per_epoch).
        boundaries = sorted({max(0, round(m * total) - 1) for m in params["milestones"]})
        values = [base_lr * params["gamma"] ** i for i in range(len(boundaries) + 1)]
        schedule = keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values)
    elif name == "htd":
        schedule = HyperbolicTangentDecay(base_lr, total, params["lower"], params["upper"])
    else:
        schedule = Constant(base_lr)
    return LinearWarmup(schedule, warmup) if warmup else schedule


def learning_rates(schedule: Callable[[int], Any], steps: Iterable[int]) -> np.ndarray:
    """The schedule's value at each of `steps` (for plots and tests)."""
    return np.array([float(schedule(int(s))) for s in steps])
