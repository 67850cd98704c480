"""DenseNet-BC for CIFAR (bottleneck layers, compressed transitions).

Paper: Huang, Liu, van der Maaten, Weinberger. "Densely Connected Convolutional Networks." CVPR 2017.
"""

from __future__ import annotations

import math
from functools import partial

import keras
from keras import layers

from workbench.errors import UserError

from .blocks import apply_bn_relu, apply_classifier, apply_dropout, conv2d, model_input
from .checks import check_bool, check_fraction, check_positive_int
from .registry import register_family, register_model

PAPER = "Huang et al., 'Densely Connected Convolutional Networks', CVPR 2017"


def apply_dense_layer(
    x, growth_rate: int, *, bottleneck: bool = True, dropout: float = 0.0, weight_decay: float = 0.0, name: str
):
    """One dense layer: [BN-ReLU-conv1x1(4k)] BN-ReLU-conv3x3(k), concatenated to its input.

    Args:
        x: input tensor (batch, H, W, C).
        growth_rate: k, the channels this layer adds.
        bottleneck: the 1x1 conv with 4k filters first (the "B" of DenseNet-BC), default True.
        dropout: dropout rate after each conv, default 0.0.
        weight_decay: SGD-style coefficient for the conv kernels, default 0.0.
        name: layer name prefix.
    """
    y = x
    if bottleneck:
        y = apply_bn_relu(y, name=f"{name}_bottleneck")
        y = conv2d(4 * growth_rate, 1, weight_decay=weight_decay, name=f"{name}_bottleneck_conv")(y)
        y = apply_dropout(y, dropout, name=f"{name}_bottleneck_dropout")
    y = apply_bn_relu(y, name=f"{name}_preact")
    y = conv2d(growth_rate, 3, weight_decay=weight_decay, name=f"{name}_conv")(y)
    y = apply_dropout(y, dropout, name=f"{name}_dropout")
    return layers.Concatenate(name=f"{name}_concat")([x, y])


def apply_transition(x, compression: float, *, dropout: float = 0.0, weight_decay: float = 0.0, name: str):
    """Transition: BN-ReLU-conv1x1(floor(compression * C))-[dropout]-avgpool 2x2 (the "C" of DenseNet-BC)."""
    filters = max(1, math.floor(compression * x.shape[-1]))
    x = apply_bn_relu(x, name=name)
    x = conv2d(filters, 1, weight_decay=weight_decay, name=f"{name}_conv")(x)
    x = apply_dropout(x, dropout, name=f"{name}_dropout")
    return layers.AveragePooling2D(2, name=f"{name}_pool")(x)


@register_family(
    "densenet_bc",
    paper=PAPER,
    tiny={"depth": 10, "growth_rate": 4},
    checks={
        "depth": check_positive_int,
        "growth_rate": check_positive_int,
        "bottleneck": check_bool,
        "compression": partial(check_fraction, low_open=True, high_closed=True),
    },
)
def densenet_bc(
    num_classes: int = 10,
    input_shape=(32, 32, 3),
    *,
    depth: int = 100,
    growth_rate: int = 12,
    compression: float = 0.5,
    bottleneck: bool = True,
    dropout: float = 0.0,
    weight_decay: float = 0.0,
    name: str = "densenet_bc",
) -> keras.Model:
    """DenseNet-BC for CIFAR (Huang et al. 2017).

    A 3x3 stem conv (2k filters for DenseNet-BC, else 16), three dense blocks of n layers joined by
    transitions that compress the channels by `compression` and halve the resolution, final BN-ReLU,
    global average pooling and a linear layer that outputs logits. With bottleneck layers each dense
    layer holds two convs, so n = (depth - 4) / 6; without, n = (depth - 4) / 3.
    DenseNet-BC L=100 k=12: 0.8M, L=250 k=24: 15.3M, L=190 k=40: 25.6M params.

    Args:
        num_classes: number of logits, default 10.
        input_shape: (H, W, C), default (32, 32, 3); H, W >= 8.
        depth: L; (L - 4) divisible by 6 with bottleneck (40, 100, 160, 190, 250, ...), default 100.
        growth_rate: k, channels each dense layer adds, default 12.
        compression: theta in (0, 1], channel factor of the transitions, default 0.5.
        bottleneck: 1x1 conv with 4k filters before each 3x3 conv, default True.
        dropout: dropout rate after each conv (the paper's 0.2 without augmentation), default 0.0.
        weight_decay: SGD-style coefficient (the paper's 1e-4), applied as L2(wd / 2) to kernels, default 0.0.
        name: the model's name, default "densenet_bc".
    """
    # The form of depth depends on bottleneck, so it is checked here, not by depth's own checker.
    step = 6 if bottleneck else 3
    if depth < 4 + step or (depth - 4) % step:
        kind = "with bottleneck=True" if bottleneck else "with bottleneck=False"
        examples = ", ".join(str(4 + step * n) for n in (1, 6, 16, 26, 31, 41))
        raise UserError(
            f"DenseNet depth {kind} must be 4 + {step}n with n >= 1, i.e. (depth - 4) "
            f"divisible by {step} ({examples}, ...), got {depth!r}"
        )
    n = (depth - 4) // step

    inputs = model_input(input_shape)
    stem_filters = 2 * growth_rate if bottleneck and compression < 1 else 16
    x = conv2d(stem_filters, 3, weight_decay=weight_decay, name="stem_conv")(inputs)
    for block in range(1, 4):
        for i in range(1, n + 1):
            x = apply_dense_layer(
                x,
                growth_rate,
                bottleneck=bottleneck,
                dropout=dropout,
                weight_decay=weight_decay,
                name=f"block{block}_layer{i}",
            )
        if block < 3:
            x = apply_transition(x, compression, dropout=dropout, weight_decay=weight_decay, name=f"transition{block}")
    x = apply_bn_relu(x, name="final")
    outputs = apply_classifier(x, num_classes, weight_decay=weight_decay)
    return keras.Model(inputs, outputs, name=name)


_TABLE2 = PAPER + ", Table 2"
register_model("densenet_bc_100_12", "densenet_bc", paper_params=0.8e6, paper=_TABLE2, depth=100, growth_rate=12)
register_model("densenet_bc_160_24", "densenet_bc", depth=160, growth_rate=24)
register_model("densenet_bc_190_40", "densenet_bc", paper_params=25.6e6, paper=_TABLE2, depth=190, growth_rate=40)
register_model("densenet_bc_250_24", "densenet_bc", paper_params=15.3e6, paper=_TABLE2, depth=250, growth_rate=24)
