"""The catalogue of run settings that have a table: losses and schedules by name, with their
parameters' defaults and checks. Keras-free, so specs validate names and numbers without importing
TensorFlow, and the UI builds its forms and the CLI its flags from the same tables; `training.losses` and
`training.schedules` build the Keras objects from them.
"""

from typing import Any

from workbench.errors import UserError, choose

LOSSES = ("cross_entropy", "focal", "label_smoothing")
# Each loss's parameters with defaults; the UI builds its form from this and the CLI its flags.
LOSS_PARAMS = {
    "cross_entropy": {"label_smoothing": 0.0},
    "focal": {"gamma": 2.0, "alpha": 0.25, "label_smoothing": 0.0},
    "label_smoothing": {"label_smoothing": 0.1},
}


def loss_params(name: str, params: dict | None = None) -> dict:
    """The loss's full parameters: defaults overridden by `params`, each checked."""
    choose("loss", name, LOSSES)
    params = dict(params or {})
    unknown = sorted(set(params) - set(LOSS_PARAMS[name]))
    if unknown:
        raise UserError(
            f"loss {name!r} has no parameter {', '.join(unknown)}; it takes: {', '.join(LOSS_PARAMS[name])}"
        )
    merged = {**LOSS_PARAMS[name], **{k: float(v) for k, v in params.items()}}
    if not 0.0 <= merged["label_smoothing"] < 1.0:
        raise UserError("label_smoothing must be in [0, 1): the share of probability spread over all classes")
    if name == "label_smoothing" and merged["label_smoothing"] == 0.0:
        raise UserError("the label_smoothing loss needs label_smoothing > 0 (e.g. 0.1); use cross_entropy for none")
    if name == "focal":
        if merged["gamma"] < 0:
            raise UserError("focal gamma must be >= 0 (2.0 in Lin et al. 2017; 0 is cross-entropy)")
        if not 0.0 < merged["alpha"] <= 1.0:
            raise UserError("focal alpha must be in (0, 1] (0.25 in Lin et al. 2017)")
    return merged


SCHEDULES = ("step", "cosine", "htd", "constant", "linear")
SCHEDULE_PARAMS: dict[str, dict[str, Any]] = {
    # The classic CIFAR recipe: x0.2 at epochs 60, 120, 160 of 200, i.e. at 30%, 60%, 80% of the run.
    "step": {"milestones": (0.3, 0.6, 0.8), "gamma": 0.2},
    "cosine": {"final_fraction": 0.0},
    # Hsueh et al. 2019, "Stochastic gradient descent with hyperbolic-tangent decay": L=-6, U=3.
    "htd": {"lower": -6.0, "upper": 3.0},
    "constant": {},
    # cifar10-airbench: from start_fraction up to the peak over the warm-up, then down to final_fraction.
    "linear": {"start_fraction": 0.2, "final_fraction": 0.07},
}


def schedule_params(name: str, params: dict | None = None) -> dict:
    choose("schedule", name, SCHEDULES)
    params = dict(params or {})
    unknown = sorted(set(params) - set(SCHEDULE_PARAMS[name]))
    if unknown:
        allowed = ", ".join(SCHEDULE_PARAMS[name]) or "no parameters"
        raise UserError(f"schedule {name!r} has no parameter {', '.join(unknown)}; it takes: {allowed}")
    merged = {**SCHEDULE_PARAMS[name], **params}
    if name == "step":
        milestones = tuple(float(m) for m in merged["milestones"])
        if not milestones or any(not 0 < m < 1 for m in milestones) or list(milestones) != sorted(milestones):
            raise UserError("step milestones are increasing fractions of the run in (0, 1), e.g. 0.3,0.6,0.8")
        if not 0 < float(merged["gamma"]) < 1:
            raise UserError("step gamma is the factor applied at each milestone, in (0, 1) (classic: 0.2)")
        merged = {"milestones": milestones, "gamma": float(merged["gamma"])}
    if name == "cosine" and not 0 <= float(merged["final_fraction"]) < 1:
        raise UserError("cosine final_fraction is the last learning rate as a fraction of the first, in [0, 1)")
    if name == "linear":
        merged = {k: float(v) for k, v in merged.items()}
        if not all(0 <= v <= 1 for v in merged.values()):
            raise UserError("linear start_fraction and final_fraction are fractions of the peak rate, in [0, 1]")
    if name == "htd" and not float(merged["lower"]) < float(merged["upper"]):
        raise UserError("htd needs lower < upper (Hsueh et al.: lower -6, upper 3)")
    return merged
