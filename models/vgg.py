"""VGG with batch normalization, adapted to CIFAR (one linear classifier on the pooled features).

Paper: Simonyan, Zisserman. "Very Deep Convolutional Networks for Large-Scale Image Recognition."
ICLR 2015 (configurations A/B/D/E = VGG-11/13/16/19); batch normalization after every conv as in
Ioffe & Szegedy 2015. The CIFAR adaptation replaces the three 4096-unit layers with one linear layer.
"""

from __future__ import annotations

import keras
from keras import layers

from workbench.errors import UserError

from .blocks import apply_classifier, apply_conv_bn_relu, model_input
from .checks import check_positive_int
from .registry import register_family, register_model

PAPER = (
    "Simonyan & Zisserman, 'Very Deep Convolutional Networks for Large-Scale Image Recognition', "
    "ICLR 2015 (CIFAR variant with batch norm and a single linear classifier)"
)

# Convs per stage (stages have width x 1, 2, 4, 8, 8 filters, each followed by 2x2 max pooling).
CONVS_PER_STAGE = {11: (1, 1, 2, 2, 2), 13: (2, 2, 2, 2, 2), 16: (2, 2, 3, 3, 3), 19: (2, 2, 4, 4, 4)}


def check_vgg_depth(name: str, value) -> int:
    """Return `value`; it must be one of the depths of `CONVS_PER_STAGE`."""
    if isinstance(value, bool) or not isinstance(value, int) or value not in CONVS_PER_STAGE:
        raise UserError(f"VGG {name} must be one of {', '.join(map(str, CONVS_PER_STAGE))}, got {value!r}")
    return value


@register_family(
    "vgg",
    paper=PAPER,
    tiny={"depth": 11, "width": 4},
    min_input_size=32,
    checks={"depth": check_vgg_depth, "width": check_positive_int},
)
def vgg(
    num_classes: int = 10,
    input_shape=(32, 32, 3),
    *,
    depth: int = 19,
    width: int = 64,
    batch_norm: bool = True,
    dropout: float = 0.0,
    weight_decay: float = 0.0,
    name: str = "vgg",
) -> keras.Model:
    """VGG-11/13/16/19 for CIFAR (Simonyan & Zisserman 2015) with optional batch norm.

    Five stages of 3x3 convs with width x (1, 2, 4, 8, 8) filters, each stage ending in 2x2 max
    pooling (so inputs must be at least 32x32), then global average pooling, optional dropout and a
    linear layer that outputs logits. VGG-19-BN has about 20.0M parameters at 10 classes.

    Args:
        num_classes: number of logits, default 10.
        input_shape: (H, W, C), default (32, 32, 3); H, W >= 32.
        depth: 11, 13, 16 or 19 weight layers, default 19.
        width: filters of the first stage, default 64.
        batch_norm: BN after every conv (convs then have no bias), default True.
        dropout: dropout rate before the classifier, default 0.0.
        weight_decay: SGD-style coefficient (typically 5e-4), applied as L2(wd / 2) to kernels, default 0.0.
        name: the model's name, default "vgg".
    """
    x = inputs = model_input(input_shape)
    for stage, (convs, multiplier) in enumerate(zip(CONVS_PER_STAGE[depth], (1, 2, 4, 8, 8)), start=1):
        for i in range(1, convs + 1):
            x = apply_conv_bn_relu(
                x, width * multiplier, 3, batch_norm=batch_norm, weight_decay=weight_decay, name=f"stage{stage}_conv{i}"
            )
        x = layers.MaxPooling2D(2, name=f"stage{stage}_pool")(x)
    outputs = apply_classifier(x, num_classes, dropout=dropout, weight_decay=weight_decay)
    return keras.Model(inputs, outputs, name=name)


register_model("vgg11_bn", "vgg", depth=11)
register_model("vgg16_bn", "vgg", depth=16)
register_model("vgg19_bn", "vgg", depth=19)
