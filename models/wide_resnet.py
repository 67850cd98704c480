"""Wide Residual Networks (WRN-d-k) for CIFAR.

Paper: Zagoruyko, Komodakis. "Wide Residual Networks." BMVC 2016.
"""

from __future__ import annotations

from functools import partial

import keras

from .checks import check_depth, check_positive
from .registry import register_family, register_model
from .resnet import build_preact_resnet

PAPER = "Zagoruyko & Komodakis, 'Wide Residual Networks', BMVC 2016"


@register_family(
    "wide_resnet",
    paper=PAPER,
    tiny={"depth": 10, "widen_factor": 1, "base_width": 4},
    checks={
        "depth": partial(check_depth, step=6, offset=4, family="Wide ResNet", examples=(1, 2, 4, 6)),
        "widen_factor": check_positive,
    },
)
def wide_resnet(
    num_classes: int = 10,
    input_shape=(32, 32, 3),
    *,
    depth: int = 28,
    widen_factor: float = 10,
    base_width: int = 16,
    dropout: float = 0.0,
    se: bool = False,
    se_reduction: int = 16,
    weight_decay: float = 0.0,
    name: str = "wide_resnet",
) -> keras.Model:
    """Wide ResNet WRN-depth-k (Zagoruyko & Komodakis 2016): pre-activation basic blocks B(3,3).

    A 3x3 conv stem with `base_width` filters, three stages of n = (depth - 4) / 6 pre-activation
    basic units with base_width x k x (1, 2, 4) filters (strides 1, 2, 2), 1x1 conv shortcuts where the
    width changes, dropout between the two convs of a unit, final BN-ReLU, global average pooling
    and a linear layer that outputs logits. WRN-16-8: 11.0M, WRN-28-10: 36.5M, WRN-40-4: 8.9M params.

    Args:
        num_classes: number of logits, default 10.
        input_shape: (H, W, C), default (32, 32, 3); H, W >= 8.
        depth: 6n+4 (10, 16, 22, 28, 40, ...), default 28.
        widen_factor: k, the width multiplier, default 10.
        base_width: filters of the stem; stage widths are base_width * k * (1, 2, 4), default 16.
        dropout: dropout rate between the convs of each unit (the paper's 0.3), default 0.0.
        se: add squeeze-excitation to every residual branch, default False.
        se_reduction: SE reduction ratio, default 16.
        weight_decay: SGD-style coefficient (the paper's 5e-4), applied as L2(wd / 2) to kernels, default 0.0.
        name: the model's name, default "wide_resnet".
    """
    widths = [max(1, round(base_width * widen_factor * m)) for m in (1, 2, 4)]
    return build_preact_resnet(
        num_classes,
        input_shape,
        (depth - 4) // 6,
        widths,
        stem_width=base_width,
        shortcut="projection",
        dropout=dropout,
        se=se,
        se_reduction=se_reduction,
        weight_decay=weight_decay,
        name=name,
    )


_TABLE = PAPER + ", Tables 4-5"
register_model("wrn_16_8", "wide_resnet", paper_params=11.0e6, paper=_TABLE, depth=16, widen_factor=8)
register_model("wrn_28_10", "wide_resnet", paper_params=36.5e6, paper=_TABLE, depth=28, widen_factor=10)
register_model("wrn_40_4", "wide_resnet", paper_params=8.9e6, paper=_TABLE, depth=40, widen_factor=4)
