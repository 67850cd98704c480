"""Training losses, by name, on top of Keras' own losses (all take logits and one-hot labels).

Labels are one-hot because mixup/cutmix produce soft labels. Keras computes the loss in float32
even when the model runs in float16/bfloat16 (the loss's dtype is float32 and the model's last
layer emits float32 logits), so all three are safe under mixed precision.
"""
import keras

from workbench.errors import UserError, choose

LOSSES = ("cross_entropy", "focal", "label_smoothing")
# Each loss's parameters with defaults; the UI builds its form from this and the CLI its flags.
LOSS_PARAMS = {
    "cross_entropy": {"label_smoothing": 0.0},
    "focal": {"gamma": 2.0, "alpha": 0.25, "label_smoothing": 0.0},
    "label_smoothing": {"label_smoothing": 0.1},
}


def loss_params(name: str, params=None) -> dict:
    """The loss's full parameters: defaults overridden by `params`, each checked."""
    choose("loss", name, LOSSES)
    params = dict(params or {})
    unknown = sorted(set(params) - set(LOSS_PARAMS[name]))
    if unknown:
        raise UserError(f"loss {name!r} has no parameter {', '.join(unknown)}; it takes: {', '.join(LOSS_PARAMS[name])}")
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


def build_loss(name: str, params=None) -> keras.losses.Loss:
    params = loss_params(name, params)
    if name == "focal":
        return keras.losses.CategoricalFocalCrossentropy(
            alpha=params["alpha"], gamma=params["gamma"], label_smoothing=params["label_smoothing"],
            from_logits=True)
    return keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=params["label_smoothing"])
