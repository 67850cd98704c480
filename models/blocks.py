"""Small shared building blocks: convolutions, BN-ReLU, squeeze-excitation, shortcuts, the head.

Every helper names its layers from the `name` it is given, so a model's layers have stable,
readable names (`stage2_block1_conv1`, `stage2_block1_se_reduce`, ...). Only built-in Keras layers
are used here (airbench's own two pieces are registered in `airbench_layers`), so `.keras` files load
with safe_mode.

Weight decay: `weight_decay` is the SGD-style coefficient of the papers (5e-4, 1e-4). It is applied as
`L2(weight_decay / 2)` on conv and dense kernels only, whose gradient is `weight_decay * w`; batch
norm parameters and biases are never decayed (but airbench's reparameterised biases, `airbench_layers`,
which its paper decays as weights).
"""

from __future__ import annotations

import keras
from keras import layers

BN_MOMENTUM = 0.9  # PyTorch's momentum=0.1, as used by the CIFAR reference implementations
BN_EPSILON = 1e-5


def kernel_regularizer(weight_decay: float):
    """`L2(weight_decay / 2)` for a kernel, or None when `weight_decay` is 0."""
    return keras.regularizers.L2(weight_decay / 2) if weight_decay > 0 else None


def conv2d(
    filters: int,
    kernel_size: int,
    *,
    strides: int = 1,
    groups: int = 1,
    padding: str = "same",
    use_bias: bool = False,
    weight_decay: float = 0.0,
    kernel_initializer="he_normal",
    dtype=None,
    name: str,
) -> layers.Conv2D:
    """A `Conv2D` (he_normal init unless `kernel_initializer` says) with the kernel decayed by `weight_decay`."""
    return layers.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        groups=groups,
        padding=padding,
        use_bias=use_bias,
        kernel_initializer=kernel_initializer,
        kernel_regularizer=kernel_regularizer(weight_decay),
        dtype=dtype,
        name=name,
    )


def dense(units: int, *, activation=None, weight_decay: float = 0.0, dtype=None, name: str) -> layers.Dense:
    """A `Dense` layer with its kernel decayed by `weight_decay`."""
    return layers.Dense(
        units, activation=activation, kernel_regularizer=kernel_regularizer(weight_decay), dtype=dtype, name=name
    )


def batch_norm_layer(name: str) -> layers.BatchNormalization:
    """`BatchNormalization` with the momentum/epsilon of the CIFAR reference implementations."""
    return layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name=name)


def apply_bn_relu(x, *, name: str):
    """BN then ReLU (layers `{name}_bn`, `{name}_relu`)."""
    x = batch_norm_layer(f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def apply_conv_bn_relu(
    x,
    filters: int,
    kernel_size: int = 3,
    *,
    strides: int = 1,
    groups: int = 1,
    batch_norm: bool = True,
    activation: bool = True,
    weight_decay: float = 0.0,
    name: str,
):
    """Conv then BN, then ReLU unless `activation=False` (layers `{name}_conv/_bn/_relu`).

    `batch_norm=False` (VGG and NIN without BN) leaves out the BN and gives the conv a bias instead.
    """
    x = conv2d(
        filters,
        kernel_size,
        strides=strides,
        groups=groups,
        use_bias=not batch_norm,
        weight_decay=weight_decay,
        name=f"{name}_conv",
    )(x)
    if batch_norm:
        x = batch_norm_layer(f"{name}_bn")(x)
    if activation:
        x = layers.ReLU(name=f"{name}_relu")(x)
    return x


def apply_se_block(x, *, reduction: int = 16, weight_decay: float = 0.0, name: str):
    """Squeeze-and-excitation (Hu et al., "Squeeze-and-Excitation Networks", CVPR 2018).

    Global average pool -> Dense(C / reduction, ReLU) -> Dense(C, sigmoid) -> channel-wise scale.

    Args:
        x: a (batch, H, W, C) tensor.
        reduction: channel reduction ratio r, default 16 (hidden units = max(1, C // r)).
        weight_decay: SGD-style coefficient for the two dense kernels, default 0.0.
        name: layer name prefix.
    """
    channels = x.shape[-1]
    s = layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_squeeze")(x)
    s = dense(max(1, channels // reduction), activation="relu", weight_decay=weight_decay, name=f"{name}_reduce")(s)
    s = dense(channels, activation="sigmoid", weight_decay=weight_decay, name=f"{name}_expand")(s)
    return layers.Multiply(name=f"{name}_scale")([x, s])


def apply_pad_shortcut(x, filters: int, strides: int, *, name: str):
    """Parameter-free shortcut, He et al. 2016 option A: subsample by `strides`, zero-pad channels.

    Built from built-in layers only: 1x1 max pooling with stride (= x[:, ::s, ::s]), then the channel
    axis is padded with ZeroPadding3D on a (H, W, C, 1) view.
    """
    if strides != 1:
        x = layers.MaxPooling2D(pool_size=1, strides=strides, padding="same", name=f"{name}_subsample")(x)
    extra = filters - x.shape[-1]
    if extra > 0:
        h, w, c = x.shape[1:]
        x = layers.Reshape((h, w, c, 1), name=f"{name}_expand_dims")(x)
        x = layers.ZeroPadding3D(((0, 0), (0, 0), (extra // 2, extra - extra // 2)), name=f"{name}_pad")(x)
        x = layers.Reshape((h, w, filters), name=f"{name}_squeeze_dims")(x)
    return x


def apply_dropout(x, rate: float, *, name: str):
    """`Dropout(rate)` named `name`, or `x` itself when `rate` is 0 (no layer at all)."""
    return layers.Dropout(rate, name=name)(x) if rate > 0 else x


def apply_classifier(x, num_classes: int, *, dropout: float = 0.0, weight_decay: float = 0.0):
    """Global average pool, optional dropout, then the float32 `logits` Dense (no activation)."""
    x = layers.GlobalAveragePooling2D(name="head_pool")(x)
    x = apply_dropout(x, dropout, name="head_dropout")
    return dense(num_classes, weight_decay=weight_decay, dtype="float32", name="logits")(x)


def model_input(input_shape) -> keras.KerasTensor:
    """The functional model's `keras.Input`, named `input`."""
    return keras.Input(shape=tuple(input_shape), name="input")
