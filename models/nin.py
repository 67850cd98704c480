"""Network in Network for CIFAR-10 (three mlpconv blocks, global average pooling of class maps).

Paper: Lin, Chen, Yan. "Network In Network." ICLR 2014 (CIFAR-10 model: mlpconv blocks of
192-160-96, 192-192-192 and 192-192-classes channels, dropout 0.5 between blocks).
"""

from __future__ import annotations

import keras
from keras import layers

from .blocks import apply_conv_bn_relu, apply_dropout, conv2d, model_input
from .checks import check_positive
from .registry import register_family, register_model

PAPER = "Lin, Chen & Yan, 'Network In Network', ICLR 2014"
# The three mlpconv blocks: hidden widths, first kernel size, pooling after (the third ends in the classifier).
BLOCKS = (
    ((192, 160, 96), 5, layers.MaxPooling2D),
    ((192, 192, 192), 5, layers.AveragePooling2D),
    ((192, 192), 3, None),
)


def apply_mlpconv_block(x, filters, kernel_size: int, *, batch_norm: bool, weight_decay: float, name: str):
    """An mlpconv block: a kxk conv then 1x1 convs (the "micro network"), each followed by [BN-]ReLU."""
    for i, (f, k) in enumerate(zip(filters, (kernel_size, 1, 1)), start=1):
        x = apply_conv_bn_relu(x, f, k, batch_norm=batch_norm, weight_decay=weight_decay, name=f"{name}_mlp{i}")
    return x


@register_family("nin", paper=PAPER, tiny={"width": 0.1}, checks={"width": check_positive})
def nin(
    num_classes: int = 10,
    input_shape=(32, 32, 3),
    *,
    width: float = 1.0,
    batch_norm: bool = True,
    dropout: float = 0.5,
    weight_decay: float = 0.0,
    name: str = "nin",
) -> keras.Model:
    """Network in Network (Lin et al. 2014) for CIFAR-10.

    mlpconv(5x5: 192-160-96) - maxpool 3x3/2 - dropout - mlpconv(5x5: 192-192-192) - avgpool 3x3/2 -
    dropout - mlpconv(3x3: 192-192) - 1x1 conv to num_classes (linear) - global average pooling, whose
    output are the logits. The paper had no batch norm; `batch_norm=True` (default) adds it after every
    hidden conv, which makes the model train without the paper's careful learning-rate tuning.

    Args:
        num_classes: number of logits, default 10.
        input_shape: (H, W, C), default (32, 32, 3); H, W >= 8.
        width: multiplier of every hidden layer's width (192, 160, 96), default 1.0.
        batch_norm: BN after every hidden conv, default True.
        dropout: dropout rate after the first two blocks, default 0.5.
        weight_decay: SGD-style coefficient, applied as L2(wd / 2) to kernels, default 0.0.
        name: the model's name, default "nin".
    """

    def scaled(*units):
        return [max(1, round(u * width)) for u in units]

    x = inputs = model_input(input_shape)
    for i, (widths, kernel_size, pool) in enumerate(BLOCKS, start=1):
        x = apply_mlpconv_block(
            x, scaled(*widths), kernel_size, batch_norm=batch_norm, weight_decay=weight_decay, name=f"block{i}"
        )
        if pool:
            x = pool(3, strides=2, padding="same", name=f"block{i}_pool")(x)
            x = apply_dropout(x, dropout, name=f"block{i}_dropout")
    # The classifier is the last 1x1 conv of the third mlpconv block: linear, float32 (mixed precision).
    x = conv2d(num_classes, 1, use_bias=True, weight_decay=weight_decay, dtype="float32", name="logits_conv")(x)
    outputs = layers.GlobalAveragePooling2D(dtype="float32", name="logits")(x)
    return keras.Model(inputs, outputs, name=name)


register_model("nin", "nin")
