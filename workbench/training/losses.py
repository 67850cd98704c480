"""Training losses, by name, on top of Keras' own losses (all take logits and one-hot labels).

Labels are one-hot because mixup/cutmix produce soft labels. Keras computes the loss in float32
even when the model runs in float16/bfloat16 (the loss's dtype is float32 and the model's last
layer emits float32 logits), so all three are safe under mixed precision.
"""

import keras

from workbench.specs.catalogue import LOSSES, loss_params

__all__ = ["LOSSES", "build_loss", "loss_params"]


def build_loss(name: str, params: dict | None = None) -> keras.losses.Loss:
    params = loss_params(name, params)
    if name == "focal":
        return keras.losses.CategoricalFocalCrossentropy(
            alpha=params["alpha"], gamma=params["gamma"], label_smoothing=params["label_smoothing"], from_logits=True
        )
    return keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=params["label_smoothing"])
