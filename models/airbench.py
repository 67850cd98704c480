"""airbench: the small VGG-like net of cifar10-airbench (Keller Jordan, "94% on CIFAR-10 in 3.29 seconds
on a single GPU", arXiv:2404.00498), in Keras 3.

    whiten (frozen 2x2 conv, 2 x 12 filters, no padding) -> GELU
    -> `depth` blocks of [conv3x3 -> max-pool 2 -> BN -> GELU -> conv3x3 -> BN -> GELU] (conv_per_block convs)
    -> global max-pool -> Dense (no bias) -> x scale (1/9)

The first layer whitens 2x2 patches: its kernel holds the eigenvectors of the patches' covariance scaled by
1/sqrt(eigenvalue + eps), and their negatives (so GELU keeps both signs). The kernel is a plain
non-trainable Conv2D weight: `whitening_kernel(images)` computes it from the training images and
`init_whitening(model, images)` sets it (the job does this before training, `data_init` of the family), so
checkpoints and `.keras` files carry it and load with safe_mode. BatchNorm has no scale (as in the paper,
whose BN weights are frozen at 1) and momentum 0.6 (the paper's PyTorch momentum 0.4).

The rest of the paper's recipe, as options (a run sets them from its spec: `--dirac-init`, `--bn-bias-lr`,
`--whiten-bias-epochs`; all off by default, so older checkpoints keep their layers):
    dirac=True          the 3x3 convs start as the identity on their first channels (`airbench_layers.Dirac`);
    bn_bias_lr=64       BatchNorm without its own bias, followed by `ScaledBias(sqrt(64))`: SGD then moves the
                        bias 64x as far, weight decay as for a plain weight (the paper's rule);
    whiten_bias=True    a trainable bias after the frozen whitening conv (`whiten_bias`; the run freezes it
                        after `whiten_bias_epochs`, `workbench.training.recipe`);
    any_size=True       an input of any height and width (`--low-res-epochs`: early epochs at 24 px).
"""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import layers

from workbench.errors import UserError

from .airbench_layers import Dirac, ScaledBias
from .blocks import conv2d, kernel_regularizer, model_input
from .checks import check_bool, check_positive, check_positive_int
from .registry import register_family, register_model

PAPER = "Jordan, '94% on CIFAR-10 in 3.29 Seconds on a Single GPU', arXiv:2404.00498 (cifar10-airbench)"
WHITEN = "whiten"  # the whitening layer's name
WHITEN_BIAS = "whiten_bias"  # its bias, a layer of its own (whiten_bias=True)
BN_MOMENTUM = 0.6
PATCH = 2


def _widths(name, value):
    """A tuple of positive ints (one width per block)."""
    try:
        widths = tuple(value)
    except TypeError:
        widths = ()
    if not widths or not all(isinstance(w, (int, np.integer)) and not isinstance(w, bool) and w >= 1 for w in widths):
        raise UserError(
            f"{name} must be a list of positive integers, one per block (airbench94: 64,256,256), got {value!r}"
        )
    return tuple(int(w) for w in widths)


def _conv(filters: int, weight_decay: float, dirac: bool, name: str) -> layers.Conv2D:
    initializer = Dirac("he_normal") if dirac else "he_normal"
    return conv2d(filters, 3, weight_decay=weight_decay, kernel_initializer=initializer, name=name)


def _batch_norm(x, weight_decay: float, bn_bias_lr: float, name: str):
    """BatchNorm without scale; its bias Keras' own (bn_bias_lr 1) or a `ScaledBias` of sqrt(bn_bias_lr)."""
    own_bias = bn_bias_lr == 1
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=1e-5, scale=False, center=own_bias, name=name)(x)
    if not own_bias:
        x = ScaledBias(math.sqrt(bn_bias_lr), regularizer=kernel_regularizer(weight_decay), name=f"{name}_bias")(x)
    return x


def _block(x, filters: int, convs: int, weight_decay: float, name: str, *, dirac: bool, bn_bias_lr: float):
    x = _conv(filters, weight_decay, dirac, f"{name}_conv1")(x)
    x = layers.MaxPooling2D(2, name=f"{name}_pool")(x)
    for i in range(1, convs + 1):
        if i > 1:
            x = _conv(filters, weight_decay, dirac, f"{name}_conv{i}")(x)
        x = _batch_norm(x, weight_decay, bn_bias_lr, f"{name}_bn{i}")
        x = layers.Activation("gelu", name=f"{name}_gelu{i}")(x)
    return x


@register_family(
    "airbench",
    paper=PAPER,
    tiny={"widths": (8, 8, 8)},
    min_input_size=16,
    data_init=lambda model, images: init_whitening(model, images),
    checks={
        "widths": _widths,
        "conv_per_block": check_positive_int,
        "scale": check_positive,
        "dirac": check_bool,
        "bn_bias_lr": check_positive,
        "whiten_bias": check_bool,
        "any_size": check_bool,
    },
)
def airbench(
    num_classes: int = 10,
    input_shape=(32, 32, 3),
    *,
    widths=(64, 256, 256),
    conv_per_block: int = 2,
    scale: float = 1 / 9,
    dirac: bool = False,
    bn_bias_lr: float = 1.0,
    whiten_bias: bool = False,
    any_size: bool = False,
    weight_decay: float = 0.0,
    name: str = "airbench",
) -> keras.Model:
    """The cifar10-airbench net: frozen patch-whitening conv, conv/pool/BN/GELU blocks, max-pool head.

    Args:
        num_classes: number of logits, default 10.
        input_shape: (H, W, C), default (32, 32, 3); H and W >= 16 (each block halves them).
        widths: filters of each block; their number is the depth, default (64, 256, 256) (airbench94).
        conv_per_block: 3x3 convs per block (the first before the pooling), default 2.
        scale: the factor applied to the logits, default 1/9 as in the paper.
        dirac: identity (Dirac) init of the 3x3 convs' first channels, as the paper; default False (he_normal).
        bn_bias_lr: learning-rate multiplier of the BatchNorm biases by reparameterisation (paper: 64); 1: off.
        whiten_bias: a trainable bias after the whitening conv (the paper trains it 3 epochs); default False.
        any_size: take images of any height and width (the global max-pool head allows it), for progressive
            resolution (early epochs at 24 px); default False: exactly `input_shape`.
        weight_decay: SGD-style coefficient, applied as L2(wd / 2) to conv and dense kernels, default 0.0.
        name: the model's name, default "airbench".
    """
    channels = input_shape[-1]
    inputs = model_input((None, None, channels) if any_size else input_shape)
    # Non-trainable: the kernel is set from the data (`init_whitening`) and frozen, as in the paper.
    x = layers.Conv2D(
        2 * channels * PATCH * PATCH, PATCH, padding="valid", use_bias=False, trainable=False, name=WHITEN
    )(inputs)
    if whiten_bias:
        x = ScaledBias(1.0, regularizer=kernel_regularizer(weight_decay), name=WHITEN_BIAS)(x)
    x = layers.Activation("gelu", name="whiten_gelu")(x)
    for i, filters in enumerate(widths, start=1):
        x = _block(x, filters, conv_per_block, weight_decay, f"block{i}", dirac=dirac, bn_bias_lr=bn_bias_lr)
    x = layers.GlobalMaxPooling2D(name="head_pool")(x)
    x = layers.Dense(
        num_classes, use_bias=False, kernel_regularizer=kernel_regularizer(weight_decay), dtype="float32", name="head"
    )(x)
    outputs = layers.Rescaling(scale, dtype="float32", name="logits")(x)
    return keras.Model(inputs, outputs, name=name)


def patches(images: np.ndarray, size: int = PATCH) -> np.ndarray:
    """Every size x size patch (stride 1) of float images [N, H, W, C], flattened: [N * P, size * size * C]
    in the order of a Conv2D kernel's (kh, kw, c) axes."""
    x = np.asarray(images, np.float64)
    _n, _h, _w, c = x.shape
    views = np.lib.stride_tricks.sliding_window_view(x, (size, size), axis=(1, 2))  # [N, H', W', C, kh, kw]
    return views.transpose(0, 1, 2, 4, 5, 3).reshape(-1, size * size * c)


def whitening_kernel(images: np.ndarray, eps: float = 5e-4, size: int = PATCH) -> np.ndarray:
    """The whitening conv's kernel [size, size, C, 2 * size * size * C] for float images [N, H, W, C]
    (already normalised as the model sees them): eigenvectors of the patches' second-moment matrix
    scaled by 1/sqrt(eigenvalue + eps), largest first, then their negatives (as cifar10-airbench)."""
    p = patches(images, size)
    covariance = p.T @ p / len(p)
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    order = np.argsort(eigenvalues)[::-1]
    filters = eigenvectors[:, order] / np.sqrt(eigenvalues[order] + eps)  # [D, D]: one filter per column
    filters = np.concatenate([filters, -filters], axis=1)
    c = images.shape[-1]
    return filters.reshape(size, size, c, 2 * size * size * c).astype(np.float32)


def init_whitening(model: keras.Model, images: np.ndarray, eps: float = 5e-4) -> None:
    """Set the model's whitening kernel from (normalised, float) training images."""
    layer = model.get_layer(WHITEN)
    layer.kernel.assign(whitening_kernel(images, eps, layer.kernel.shape[0]))


# The paper's widths (its airbench94.py); the paper prints no parameter count.
register_model("airbench94", "airbench", widths=(64, 256, 256))
# Narrower for a 2-core CPU: a quarter of the multiply-adds of airbench94 at half its widths.
register_model("airbench_cpu", "airbench", widths=(32, 128, 128))
