"""Pre-activation ResNet for CIFAR (basic blocks, depth 6n+2), optionally with squeeze-excitation.

Papers:
    He, Zhang, Ren, Sun. "Deep Residual Learning for Image Recognition." CVPR 2016 (CIFAR layout:
    a 3x3 stem conv, three stages of n basic blocks with 16/32/64 filters, option-A shortcuts).
    He, Zhang, Ren, Sun. "Identity Mappings in Deep Residual Networks." ECCV 2016 (pre-activation
    units: BN-ReLU-conv-BN-ReLU-conv, and a final BN-ReLU before pooling).
    Hu, Shen, Sun. "Squeeze-and-Excitation Networks." CVPR 2018 (SE on the residual branch).
"""

from __future__ import annotations

from functools import partial

import keras
from keras import layers

from .blocks import (
    apply_bn_relu,
    apply_classifier,
    apply_dropout,
    apply_pad_shortcut,
    apply_se_block,
    conv2d,
    model_input,
)
from .checks import check_choice, check_depth
from .registry import register_family, register_model

SHORTCUTS = ("identity", "projection")

PAPER = (
    "He et al., 'Deep Residual Learning for Image Recognition', CVPR 2016; "
    "He et al., 'Identity Mappings in Deep Residual Networks', ECCV 2016"
)


def apply_preact_basic_block(
    x,
    filters: int,
    *,
    strides: int = 1,
    shortcut: str = "identity",
    shortcut_from_preact: bool = False,
    dropout: float = 0.0,
    se: bool = False,
    se_reduction: int = 16,
    weight_decay: float = 0.0,
    name: str,
):
    """One pre-activation basic unit: BN-ReLU-conv3x3-BN-ReLU-[dropout]-conv3x3-[SE], plus shortcut.

    Args:
        x: input tensor (batch, H, W, C).
        filters: output channels.
        strides: stride of the first conv (and of the shortcut), default 1.
        shortcut: when the shape changes: "identity" (option A, subsample + zero-pad channels, no
            parameters) or "projection" (1x1 conv on the pre-activated input), default "identity".
        shortcut_from_preact: take an identity shortcut after the BN-ReLU (used for the first unit
            after the stem conv, as in the Identity Mappings paper), default False.
        dropout: dropout rate between the two convs (Wide ResNet), default 0.0.
        se: squeeze-excitation on the residual branch, default False.
        se_reduction: SE reduction ratio, default 16.
        weight_decay: SGD-style coefficient for the conv/dense kernels, default 0.0.
        name: layer name prefix.
    """
    preact = apply_bn_relu(x, name=f"{name}_preact")
    if strides != 1 or x.shape[-1] != filters:
        if shortcut == "projection":
            residual = conv2d(filters, 1, strides=strides, weight_decay=weight_decay, name=f"{name}_shortcut_conv")(
                preact
            )
        else:
            residual = apply_pad_shortcut(x, filters, strides, name=f"{name}_shortcut")
    else:
        residual = preact if shortcut_from_preact else x
    y = conv2d(filters, 3, strides=strides, weight_decay=weight_decay, name=f"{name}_conv1")(preact)
    y = apply_bn_relu(y, name=f"{name}_mid")
    y = apply_dropout(y, dropout, name=f"{name}_dropout")
    y = conv2d(filters, 3, weight_decay=weight_decay, name=f"{name}_conv2")(y)
    if se:
        y = apply_se_block(y, reduction=se_reduction, weight_decay=weight_decay, name=f"{name}_se")
    return layers.Add(name=f"{name}_add")([residual, y])


def build_preact_resnet(
    num_classes: int,
    input_shape,
    blocks_per_stage: int,
    widths,
    *,
    stem_width: int,
    shortcut: str,
    dropout: float,
    se: bool,
    se_reduction: int,
    weight_decay: float,
    name: str,
) -> keras.Model:
    """The CIFAR pre-activation ResNet that `resnet` and `wide_resnet` configure (arguments checked).

    A 3x3 stem conv, three stages (strides 1, 2, 2) of `blocks_per_stage` basic units with `widths`
    filters, the final BN-ReLU, global average pooling and the logits layer.
    """
    inputs = model_input(input_shape)
    x = conv2d(stem_width, 3, weight_decay=weight_decay, name="stem_conv")(inputs)
    for stage, filters in enumerate(widths, start=1):
        for block in range(1, blocks_per_stage + 1):
            x = apply_preact_basic_block(
                x,
                filters,
                strides=2 if stage > 1 and block == 1 else 1,
                shortcut=shortcut,
                shortcut_from_preact=stage == 1 and block == 1,
                dropout=dropout,
                se=se,
                se_reduction=se_reduction,
                weight_decay=weight_decay,
                name=f"stage{stage}_block{block}",
            )
    x = apply_bn_relu(x, name="final")
    outputs = apply_classifier(x, num_classes, weight_decay=weight_decay)
    return keras.Model(inputs, outputs, name=name)


@register_family(
    "resnet",
    paper=PAPER,
    tiny={"depth": 8, "base_width": 4},
    checks={
        "depth": partial(check_depth, step=6, offset=2, family="ResNet", examples=(3, 5, 7, 9, 18)),
        "shortcut": partial(check_choice, choices=SHORTCUTS),
    },
)
def resnet(
    num_classes: int = 10,
    input_shape=(32, 32, 3),
    *,
    depth: int = 20,
    base_width: int = 16,
    shortcut: str = "identity",
    se: bool = False,
    se_reduction: int = 16,
    dropout: float = 0.0,
    weight_decay: float = 0.0,
    name: str = "resnet",
) -> keras.Model:
    """Pre-activation ResNet for CIFAR with basic blocks (He et al. 2016), optional SE (Hu et al. 2018).

    A 3x3 conv stem with `base_width` filters, then three stages of n = (depth - 2) / 6 basic units
    with base_width x (1, 2, 4) filters (strides 1, 2, 2), final BN-ReLU, global average pooling and a
    linear layer that outputs logits. ResNet-20/32/44/56/110 have 0.27/0.46/0.66/0.85/1.7M parameters.

    Args:
        num_classes: number of logits, default 10.
        input_shape: (H, W, C), default (32, 32, 3); H, W >= 8.
        depth: 6n+2 (20, 32, 44, 56, 110, ...), default 20.
        base_width: filters of the stem and first stage, default 16.
        shortcut: "identity" (option A: zero-padded, parameter-free) or "projection" (1x1 conv) where the
            shape changes, default "identity".
        se: add squeeze-excitation to every residual branch, default False.
        se_reduction: SE reduction ratio, default 16.
        dropout: dropout rate between the two convs of each unit, default 0.0.
        weight_decay: SGD-style coefficient (the paper's 1e-4), applied as L2(wd / 2) to kernels, default 0.0.
        name: the model's name, default "resnet".
    """
    return build_preact_resnet(
        num_classes,
        input_shape,
        (depth - 2) // 6,
        [base_width * m for m in (1, 2, 4)],
        stem_width=base_width,
        shortcut=shortcut,
        dropout=dropout,
        se=se,
        se_reduction=se_reduction,
        weight_decay=weight_decay,
        name=name,
    )


_TABLE6 = "He et al., 'Deep Residual Learning for Image Recognition', CVPR 2016, Table 6"
for _depth, _params in ((20, 0.27e6), (32, 0.46e6), (44, 0.66e6), (56, 0.85e6), (110, 1.7e6)):
    register_model(f"resnet{_depth}", "resnet", paper_params=_params, paper=_TABLE6, depth=_depth)
register_model(
    "se_resnet56",
    "resnet",
    depth=56,
    se=True,
    paper=PAPER + "; Hu et al., 'Squeeze-and-Excitation Networks', CVPR 2018",
)
