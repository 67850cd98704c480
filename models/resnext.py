"""ResNeXt-29 for CIFAR (grouped-convolution bottlenecks), optionally with squeeze-excitation.

Papers:
    Xie, Girshick, Dollar, Tu, He. "Aggregated Residual Transformations for Deep Neural Networks."
    CVPR 2017 (CIFAR: ResNeXt-29 with cardinality C and bottleneck width d, written Cxd).
    Hu, Shen, Sun. "Squeeze-and-Excitation Networks." CVPR 2018 (SE-ResNeXt).
"""

from __future__ import annotations

from functools import partial

import keras
from keras import layers

from .blocks import apply_classifier, apply_conv_bn_relu, apply_se_block, model_input
from .checks import check_depth, check_positive_int
from .registry import register_family, register_model

PAPER = "Xie et al., 'Aggregated Residual Transformations for Deep Neural Networks', CVPR 2017"
SE_PAPER = PAPER + "; Hu et al., 'Squeeze-and-Excitation Networks', CVPR 2018"


def apply_resnext_block(
    x,
    filters: int,
    group_width: int,
    cardinality: int,
    *,
    strides: int = 1,
    se: bool = False,
    se_reduction: int = 16,
    weight_decay: float = 0.0,
    name: str,
):
    """ResNeXt bottleneck (form c): 1x1 conv - grouped 3x3 conv - 1x1 conv, each with BN, plus shortcut.

    Args:
        x: input tensor (batch, H, W, C).
        filters: output channels.
        group_width: channels of the grouped 3x3 conv (cardinality x bottleneck width).
        cardinality: number of groups C.
        strides: stride of the grouped conv and of the shortcut, default 1.
        se: squeeze-excitation before the addition, default False.
        se_reduction: SE reduction ratio, default 16.
        weight_decay: SGD-style coefficient for the conv/dense kernels, default 0.0.
        name: layer name prefix.
    """
    if strides != 1 or x.shape[-1] != filters:
        residual = apply_conv_bn_relu(
            x, filters, 1, strides=strides, activation=False, weight_decay=weight_decay, name=f"{name}_shortcut"
        )
    else:
        residual = x
    y = apply_conv_bn_relu(x, group_width, 1, weight_decay=weight_decay, name=f"{name}_reduce")
    y = apply_conv_bn_relu(
        y, group_width, 3, strides=strides, groups=cardinality, weight_decay=weight_decay, name=f"{name}_grouped"
    )
    y = apply_conv_bn_relu(y, filters, 1, activation=False, weight_decay=weight_decay, name=f"{name}_expand")
    if se:
        y = apply_se_block(y, reduction=se_reduction, weight_decay=weight_decay, name=f"{name}_se")
    y = layers.Add(name=f"{name}_add")([residual, y])
    return layers.ReLU(name=f"{name}_out")(y)


@register_family(
    "resnext",
    paper=PAPER,
    tiny={"depth": 11, "cardinality": 2, "base_width": 4, "stem_width": 8, "widen_factor": 2},
    checks={
        "depth": partial(check_depth, step=9, offset=2, family="ResNeXt"),
        "cardinality": check_positive_int,
        "stem_width": check_positive_int,
        "widen_factor": check_positive_int,
    },
)
def resnext(
    num_classes: int = 10,
    input_shape=(32, 32, 3),
    *,
    depth: int = 29,
    cardinality: int = 8,
    base_width: int = 64,
    stem_width: int = 64,
    widen_factor: int = 4,
    se: bool = False,
    se_reduction: int = 16,
    weight_decay: float = 0.0,
    name: str = "resnext",
) -> keras.Model:
    """ResNeXt for CIFAR (Xie et al. 2017), SE-ResNeXt with se=True (Hu et al. 2018).

    A 3x3 conv-BN-ReLU stem with `stem_width` filters, three stages of n = (depth - 2) / 9 bottleneck
    blocks (strides 1, 2, 2) whose outputs have stem_width x widen_factor x (1, 2, 4) channels and
    whose grouped 3x3 convs have cardinality x base_width x (1, 2, 4) channels, then global average
    pooling and a linear layer that outputs logits. ResNeXt-29 8x64d: 34.4M, 16x64d: 68.1M params.

    Args:
        num_classes: number of logits, default 10.
        input_shape: (H, W, C), default (32, 32, 3); H, W >= 8.
        depth: 9n+2 (11, 20, 29, ...), default 29.
        cardinality: number of groups C, default 8.
        base_width: bottleneck width d of one group in the first stage, default 64.
        stem_width: filters of the stem conv, default 64.
        widen_factor: first-stage output channels / stem_width, default 4 (256, 512, 1024 channels).
        se: add squeeze-excitation to every block (SE-ResNeXt), default False.
        se_reduction: SE reduction ratio, default 16.
        weight_decay: SGD-style coefficient (the paper's 5e-4), applied as L2(wd / 2) to kernels, default 0.0.
        name: the model's name, default "resnext".
    """
    n = (depth - 2) // 9
    inputs = model_input(input_shape)
    x = apply_conv_bn_relu(inputs, stem_width, 3, weight_decay=weight_decay, name="stem")
    for stage, multiplier in enumerate((1, 2, 4), start=1):
        for block in range(1, n + 1):
            x = apply_resnext_block(
                x,
                stem_width * widen_factor * multiplier,
                cardinality * base_width * multiplier,
                cardinality,
                strides=2 if stage > 1 and block == 1 else 1,
                se=se,
                se_reduction=se_reduction,
                weight_decay=weight_decay,
                name=f"stage{stage}_block{block}",
            )
    outputs = apply_classifier(x, num_classes, weight_decay=weight_decay)
    return keras.Model(inputs, outputs, name=name)


_TABLE7 = PAPER + ", Table 7"
register_model("resnext29_4x64d", "resnext", cardinality=4, base_width=64)
register_model("resnext29_8x64d", "resnext", paper_params=34.4e6, paper=_TABLE7, cardinality=8, base_width=64)
register_model("resnext29_16x64d", "resnext", paper_params=68.1e6, paper=_TABLE7, cardinality=16, base_width=64)
register_model("se_resnext29_4x64d", "resnext", paper=SE_PAPER, cardinality=4, base_width=64, se=True)
register_model("se_resnext29_16x64d", "resnext", paper=SE_PAPER, cardinality=16, base_width=64, se=True)
