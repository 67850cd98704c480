"""LeNet-5 for CIFAR (3-channel 32x32 inputs, ReLU and max pooling).

Paper: LeCun, Bottou, Bengio, Haffner. "Gradient-Based Learning Applied to Document Recognition."
Proc. IEEE 1998. The CIFAR variant keeps the 6-16-120-84 layout with full C3 connectivity, ReLU
instead of scaled tanh and max instead of trainable subsampling: 62,006 parameters at 32x32x3.
"""

from __future__ import annotations

from functools import partial

import keras
from keras import layers

from .blocks import conv2d, dense, model_input
from .checks import check_choice, check_positive
from .registry import register_family, register_model

PAPER = "LeCun et al., 'Gradient-Based Learning Applied to Document Recognition', Proc. IEEE 1998"
ACTIVATIONS = ("relu", "tanh")


@register_family(
    "lenet",
    paper=PAPER,
    tiny={"width": 0.5},
    min_input_size=16,
    checks={"width": check_positive, "activation": partial(check_choice, choices=ACTIVATIONS)},
)
def lenet(
    num_classes: int = 10,
    input_shape=(32, 32, 3),
    *,
    width: float = 1.0,
    activation: str = "relu",
    weight_decay: float = 0.0,
    name: str = "lenet",
) -> keras.Model:
    """LeNet-5 (LeCun et al. 1998): conv5x5(6)-pool-conv5x5(16)-pool-dense(120)-dense(84)-logits.

    Valid 5x5 convs and 2x2 max pooling, so inputs must be at least 16x16.

    Args:
        num_classes: number of logits, default 10.
        input_shape: (H, W, C), default (32, 32, 3); H, W >= 16.
        width: multiplier of every layer's width (6, 16, 120, 84), default 1.0.
        activation: "relu" or "tanh", default "relu".
        weight_decay: SGD-style coefficient, applied as L2(wd / 2) to kernels, default 0.0.
        name: the model's name, default "lenet".
    """

    def scaled(units: int) -> int:
        return max(1, round(units * width))

    x = inputs = model_input(input_shape)
    for i, filters in enumerate((6, 16), start=1):
        x = conv2d(scaled(filters), 5, padding="valid", use_bias=True, weight_decay=weight_decay, name=f"conv{i}")(x)
        x = layers.Activation(activation, name=f"conv{i}_{activation}")(x)
        x = layers.MaxPooling2D(2, name=f"pool{i}")(x)
    x = layers.Flatten(name="flatten")(x)
    for i, units in enumerate((120, 84), start=1):
        x = dense(scaled(units), activation=activation, weight_decay=weight_decay, name=f"fc{i}")(x)
    outputs = dense(num_classes, weight_decay=weight_decay, dtype="float32", name="logits")(x)
    return keras.Model(inputs, outputs, name=name)


register_model("lenet", "lenet")
