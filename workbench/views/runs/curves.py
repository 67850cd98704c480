"""A run's curves for the Runs tab: a metric of its epochs against epoch or wall time, and EMA smoothing."""

from __future__ import annotations

import math

from workbench.errors import UserError

# curve metric choice -> epochs column
CURVE_METRICS = {
    "Validation accuracy": "val_accuracy",
    "Validation loss": "val_loss",
    "Training loss": "loss",
    "Training accuracy": "accuracy",
    "Learning rate": "lr",
}
X_AXES = ("Epoch", "Wall time")


def ema(values, alpha: float) -> list:
    """Exponential moving average `s = alpha * s + (1 - alpha) * x`; None values stay None and
    do not move the average; alpha 0 returns the values unchanged."""
    alpha = float(alpha or 0.0)
    if not 0.0 <= alpha < 1.0:
        raise UserError(f"smoothing must be in [0, 1), got {alpha}")
    out: list[float | None] = []
    state: float | None = None
    for x in values:
        if x is None or (isinstance(x, float) and math.isnan(x)):
            out.append(None)
            continue
        state = float(x) if state is None else alpha * state + (1.0 - alpha) * float(x)
        out.append(state)
    return out


def curve_series(epochs: list[dict], metric: str, x_axis: str = "Epoch") -> tuple[list, list]:
    """x (epoch, or cumulative wall-clock minutes) and y (the metric; accuracies in %) of a run."""
    if metric not in CURVE_METRICS:
        raise UserError(f"unknown metric {metric!r}; choose one of: {', '.join(CURVE_METRICS)}")
    if x_axis not in X_AXES:
        raise UserError(f"unknown x axis {x_axis!r}; choose one of: {', '.join(X_AXES)}")
    column = CURVE_METRICS[metric]
    xs, ys, elapsed = [], [], 0.0
    for row in epochs:
        elapsed += float(row.get("seconds") or 0.0)
        xs.append(row["epoch"] if x_axis == "Epoch" else elapsed / 60.0)
        value = row.get(column)
        ys.append(None if value is None else (100.0 * value if "accuracy" in column else value))
    return xs, ys
