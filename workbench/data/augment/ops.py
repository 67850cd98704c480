"""Training-time data augmentation as batched, stateless TensorFlow ops for `tf.data` pipelines.

`build_augmenter(names, ...)` returns `augment(images, labels, seed) -> (images, labels)` for one batch:
images float32 [B, H, W, C] in 0..255 (before normalisation), labels float32 one-hot [B, K], seed an
int [2] tensor that differs per batch (the pipeline zips `tf.data.Dataset.random(seed=...).batch(2)`).
All randomness comes from stateless ops keyed by that seed, so a seed always gives the same batch.
The seed is split into one fixed stream per augmentation (`_STREAM`), so turning one augmentation on or
off does not change the random draws of the others.

Augmentations, applied in this order (`parse_augmentations` sorts names into it):
  autoaugment  the AutoAugment CIFAR-10 policy (Cubuk et al. 2018), see workbench/autoaugment.py
  alt_flip     alternating flip (cifar10-airbench): each image is mirrored in every other epoch, starting
               mirrored or not at random; the pipeline applies it (it knows the image and the epoch)
  flip_crop    horizontal flip (p=0.5), then a random HxW crop of the `pad`-pixel REFLECT-padded image
  translate    a random HxW crop of the `translate`-pixel REFLECT-padded image (flip_crop without its
               flip, for alt_flip; cifar10-airbench's 2-pixel translate)
  cutout       one `cutout_size` square per image at a uniform centre, clipped at the border, set to
               `fill` (DeVries & Taylor 2017)
  mixup        x = lam x + (1 - lam) x[perm], lam ~ Beta(alpha, alpha) per batch (Zhang et al. 2018)
  cutmix       a box of area ~(1 - lam) pasted from x[perm], labels by the box's real area (Yun et al. 2019)
With both mixup and cutmix, each batch gets one of them with probability 0.5.

Speed notes (measured on 2 shared CPU cores, B=128 at 32x32x3, ms per batch without XLA): flip+crop is
one gather of pixels through per-image index grids that do the REFLECT padding on the indices (~0.45 ms);
`tf.pad(mode="REFLECT")` of the batch alone costs ~0.9 ms, pad + row gather + column gather ~3.2 ms,
pad + one gather ~2.9 ms, `crop_and_resize` with integer boxes ~3.7 ms, and `ImageProjectiveTransformV3`
(translate + flip) ran ~3x slower than the gather in a tf.data pipeline. flip_crop and cutout then run as
one XLA-compiled function (`_spatial`) that fuses index arithmetic, gather and mask: ~1.5x the images/s
of the same ops without XLA. bench/augment.py compares the result with Keras' ImageDataGenerator and
with Keras 3's preprocessing layers in tf.data.
"""

import math
import numbers
import os
from collections.abc import Callable, Sequence
from typing import Any

import tensorflow as tf

from workbench.data.augment.autoaugment import autoaugment
from workbench.errors import UserError, choose

AUGMENTATIONS = ("flip_crop", "cutout", "autoaugment", "mixup", "cutmix", "alt_flip", "translate")
ORDER = ("autoaugment", "alt_flip", "flip_crop", "translate", "cutout", "mixup", "cutmix")
# XLA-compile the flip_crop/cutout pixel work (see `_spatial`); False (or WORKBENCH_AUGMENT_XLA=0 in the
# environment) runs the same ops without XLA, with identical results.
JIT_COMPILE = os.environ.get("WORKBENCH_AUGMENT_XLA", "1") != "0"
_STREAM = {"autoaugment": 0, "flip_crop": 1, "cutout": 2, "mixup": 3, "cutmix": 4, "mix_choice": 5}


def parse_augmentations(value: str | Sequence[str] | None) -> tuple:
    """Names from "flip_crop,cutout", a list/tuple, or ""/None/"none"; returned in application `ORDER`."""
    if value is None:
        return ()
    if isinstance(value, str):
        items = value.split(",")
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        raise UserError(
            f"augmentations must be a comma-separated string or a list of names, "
            f"not {type(value).__name__}; choose from: {', '.join(AUGMENTATIONS)}"
        )
    names = []
    for item in items:
        if not isinstance(item, str):
            raise UserError(
                f"augmentation names must be strings, not {item!r}; choose from: {', '.join(AUGMENTATIONS)}"
            )
        name = item.strip().lower()
        if name:
            names.append(name)
    if names in ([], ["none"]):
        return ()
    for name in names:
        if name == "none":
            raise UserError(
                f"'none' cannot be combined with other augmentations (got {value!r}); "
                f"use 'none' alone or names from: {', '.join(AUGMENTATIONS)}"
            )
        choose("augmentation", name, AUGMENTATIONS)
        if names.count(name) > 1:
            raise UserError(
                f"augmentation {name!r} is listed more than once; name each of {', '.join(AUGMENTATIONS)} at most once"
            )
    return tuple(n for n in ORDER if n in names)


# ----------------------------------------------------------------------------------------------- ops


def _dims(images: tf.Tensor) -> tuple:
    """(B, H, W, C): Python ints where the static shape knows them, scalar tensors otherwise."""
    dynamic = tf.shape(images)
    return tuple(s if s is not None else dynamic[i] for i, s in enumerate(images.shape.as_list()))


def _reflect(i: tf.Tensor, n: int | tf.Tensor) -> tf.Tensor:
    """Index into a length-n axis of position i in [-(n-1), 2n-2] under tf.pad REFLECT (edge not repeated)."""
    i = tf.abs(i)
    return tf.where(i > n - 1, 2 * (n - 1) - i, i)


def flip_crop_draw(seed: tf.Tensor, batch: int | tf.Tensor, pad: int) -> tuple[tf.Tensor, tf.Tensor]:
    """Random draws for flip_crop: crop offsets int32 [B, 2] in -pad..pad (rows, columns), flip bool [B]."""
    offset_seed, flip_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    offset = tf.random.stateless_uniform([batch, 2], offset_seed, 0, 2 * pad + 1, tf.int32) - pad
    flip = tf.random.stateless_uniform([batch], flip_seed, 0, 2, tf.int32) > 0
    return offset, flip


def flip_crop_index(offset: tf.Tensor, flip: tf.Tensor, height: int | tf.Tensor, width: int | tf.Tensor) -> tf.Tensor:
    """int32 [B, H, W]: each output pixel's source pixel, as a row of the batch flattened to [B*H*W, C].

    Output pixel (r, c) of image b is pixel (r + dy, c' + dx) of the image REFLECT-padded by pad >= |dy|,
    |dx| (the reflection is done on the indices, so the padded batch is never built), where (dy, dx) =
    offset[b] and c' = c, or W-1-c when flip[b]: a flipped image, cropped.
    """
    batch = tf.shape(offset)[0]
    cols = tf.range(width)[None]
    rows = _reflect(offset[:, :1] + tf.range(height)[None], height)  # [B, H]
    cols = _reflect(offset[:, 1:] + tf.where(flip[:, None], width - 1 - cols, cols), width)  # [B, W]
    rows = (tf.range(batch)[:, None] * height + rows) * width
    return rows[:, :, None] + cols[:, None, :]


def cutout_draw(seed: tf.Tensor, batch: int | tf.Tensor, height: int | tf.Tensor, width: int | tf.Tensor) -> tf.Tensor:
    """Random draws for cutout: square centres int32 [B, 2] (row, column), uniform over the image."""
    # One draw for both axes (stateless_uniform takes one maxval); the modulo's bias is below size / 2**30.
    centre = tf.random.stateless_uniform([batch, 2], seed, 0, 2**30, tf.int32)
    return centre % tf.stack([height, width])


def cutout_mask(centre: tf.Tensor, height: int | tf.Tensor, width: int | tf.Tensor, size: int) -> tf.Tensor:
    """bool [B, H, W], true in each image's square: rows cy - size//2 .. cy - size//2 + size - 1 and
    likewise columns, clipped at the border."""
    start = centre - size // 2
    rows, cols = tf.range(height)[None], tf.range(width)[None]
    in_rows = (rows >= start[:, :1]) & (rows < start[:, :1] + size)
    in_cols = (cols >= start[:, 1:]) & (cols < start[:, 1:] + size)
    return in_rows[:, :, None] & in_cols[:, None, :]


def _crop_pixels(images: tf.Tensor, offset: tf.Tensor, flip: tf.Tensor) -> tf.Tensor:
    _, height, width, channels = _dims(images)
    return tf.gather(tf.reshape(images, [-1, channels]), flip_crop_index(offset, flip, height, width))


def _cutout_pixels(images: tf.Tensor, centre: tf.Tensor, size: int, fill: Sequence[float]) -> tf.Tensor:
    _, height, width, _ = _dims(images)
    keep = tf.cast(~cutout_mask(centre, height, width, size), tf.float32)[..., None]
    return images * keep + tf.constant(fill, tf.float32) * (1.0 - keep)  # exact: keep is 0 or 1


def flip_crop(images: tf.Tensor, seed: tf.Tensor, pad: int = 4) -> tf.Tensor:
    """Random horizontal flip (p = 0.5) + random crop after `pad`-pixel REFLECT padding, per image."""
    return _crop_pixels(images, *flip_crop_draw(seed, tf.shape(images)[0], pad))


def cutout(images: tf.Tensor, seed: tf.Tensor, size: int = 16, fill: Sequence[float] = (0.0, 0.0, 0.0)) -> tf.Tensor:
    """Set one `size` square per image (random centre, clipped at the border) to `fill`."""
    batch, height, width, _ = _dims(images)
    return _cutout_pixels(images, cutout_draw(seed, batch, height, width), size, fill)


def _spatial(
    crop: bool, cut: bool, pad: int, size: int, fill: Sequence[float], random_flip: bool = True
) -> Callable[[tf.Tensor, tf.Tensor, tf.Tensor], tf.Tensor]:
    """flip_crop then cutout as `f(images, crop_seed, cutout_seed)`. The pixel work (index arithmetic,
    gather, mask) is one XLA-compiled function when JIT_COMPILE: XLA fuses it into a single pass over the
    batch, ~1.6x faster than TF's kernels one by one. The random draws stay outside it, in TF's stateless
    kernels, so results are the same with or without XLA (XLA draws other numbers from the same seed)."""

    def pixels(images: tf.Tensor, offset: tf.Tensor, flip: tf.Tensor, centre: tf.Tensor) -> tf.Tensor:
        if crop:
            images = _crop_pixels(images, offset, flip)
        if cut:
            images = _cutout_pixels(images, centre, size, fill)
        return images

    pixels_fn = tf.function(pixels, jit_compile=True) if JIT_COMPILE else pixels

    def spatial(images: tf.Tensor, crop_seed: tf.Tensor, cutout_seed: tf.Tensor) -> tf.Tensor:
        batch, height, width, _ = _dims(images)
        offset, flip = (
            flip_crop_draw(crop_seed, batch, pad)
            if crop
            else (tf.zeros([batch, 2], tf.int32), tf.zeros([batch], tf.bool))
        )
        if not random_flip:  # translate: the crop's offsets only
            flip = tf.zeros([batch], tf.bool)
        centre = cutout_draw(cutout_seed, batch, height, width) if cut else tf.zeros([batch, 2], tf.int32)
        return pixels_fn(images, offset, flip, centre)

    return spatial


def _beta(seed: tf.Tensor, alpha: float) -> tf.Tensor:
    """One Beta(alpha, alpha) sample from two stateless Gamma(alpha) samples (float64: small alphas)."""
    a, b = tf.unstack(tf.random.stateless_gamma([2], seed, alpha=alpha, dtype=tf.float64))
    return tf.cast(tf.where(a + b > 0, a / tf.maximum(a + b, 1e-300), 0.5), tf.float32)


def _partner(seed: tf.Tensor, batch: int | tf.Tensor) -> tf.Tensor:
    """A stateless random permutation of the batch: who each image is mixed with."""
    return tf.argsort(tf.random.stateless_uniform([batch], seed))


def mixup(images: tf.Tensor, labels: tf.Tensor, seed: tf.Tensor, alpha: float = 0.2) -> tuple[tf.Tensor, tf.Tensor]:
    """Mixup: one lam ~ Beta(alpha, alpha) for the batch, mixed with a permutation of the batch."""
    lam_seed, perm_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    lam = _beta(lam_seed, alpha)
    perm = _partner(perm_seed, tf.shape(images)[0])
    images = lam * images + (1.0 - lam) * tf.gather(images, perm)
    labels = lam * labels + (1.0 - lam) * tf.gather(labels, perm)
    return images, labels


def cutmix(images: tf.Tensor, labels: tf.Tensor, seed: tf.Tensor, alpha: float = 1.0) -> tuple[tf.Tensor, tf.Tensor]:
    """CutMix: lam ~ Beta(alpha, alpha); a box of sides sqrt(1 - lam) * (H, W) at a uniform centre
    (clipped) is taken from a permutation of the batch; labels are mixed by the box's real area."""
    lam_seed, box_seed, perm_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 3))
    _, height, width, _ = _dims(images)
    lam = _beta(lam_seed, alpha)
    hw = tf.cast(tf.stack([height, width]), tf.float32)
    cut = tf.cast(tf.floor(hw * tf.sqrt(1.0 - lam)), tf.int32)
    centre = tf.random.stateless_uniform([2], box_seed, 0, 2**30, tf.int32) % tf.cast(hw, tf.int32)
    start = tf.clip_by_value(centre - cut // 2, 0, tf.cast(hw, tf.int32))
    stop = tf.clip_by_value(centre - cut // 2 + cut, 0, tf.cast(hw, tf.int32))
    rows, cols = tf.range(height), tf.range(width)
    in_rows = (rows >= start[0]) & (rows < stop[0])
    in_cols = (cols >= start[1]) & (cols < stop[1])
    box = (in_rows[:, None] & in_cols[None, :])[None, :, :, None]
    perm = _partner(perm_seed, tf.shape(images)[0])
    images = tf.where(box, tf.gather(images, perm), images)
    area = tf.cast(tf.reduce_prod(stop - start), tf.float32) / (hw[0] * hw[1])
    labels = (1.0 - area) * labels + area * tf.gather(labels, perm)
    return images, labels


# ------------------------------------------------------------------------------------------ builder


def _check_int(name: str, value: Any, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not lo <= int(value) <= hi:
        raise UserError(f"{name} must be a whole number from {lo} to {hi}, not {value!r}")
    return int(value)


def _check_alpha(name: str, value: Any) -> float:
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value <= 0:
        raise UserError(f"{name} must be a number greater than 0 (Beta(alpha, alpha)), not {value!r}")
    return float(value)


def _check_fill(fill: Any) -> tuple[float, ...]:
    values = (fill,) * 3 if isinstance(fill, numbers.Real) and not isinstance(fill, bool) else fill
    try:
        values = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        values = ()
    if not values or not all(0.0 <= v <= 255.0 for v in values):
        raise UserError(f"fill must be one value per channel in 0..255 (the dataset mean), not {fill!r}")
    return values


AUGMENT_PARAMS = {"pad": 4, "cutout_size": 16, "mixup_alpha": 0.2, "cutmix_alpha": 1.0, "translate": 2}


def check_augment_params(params: dict) -> dict:
    """Refuse parameter names that no augmentation takes (a typo would otherwise be a TypeError)."""
    unknown = sorted(set(params or {}) - set(AUGMENT_PARAMS))
    if unknown:
        raise UserError(
            f"unknown augmentation parameter {', '.join(unknown)}; "
            f"allowed: {', '.join(f'{k} (default {v})' for k, v in AUGMENT_PARAMS.items())}"
        )
    return dict(params or {})


def build_augmenter(
    names: str | Sequence[str] | None,
    image_size: int = 32,
    *,
    pad: int = 4,
    cutout_size: int = 16,
    mixup_alpha: float = 0.2,
    cutmix_alpha: float = 1.0,
    translate: int = 2,
    fill: Sequence[float] | float = (0.0, 0.0, 0.0),
) -> Callable[[tf.Tensor, tf.Tensor, tf.Tensor], tuple[tf.Tensor, tf.Tensor]] | None:
    """`augment(images, labels, seed) -> (images, labels)` for the named augmentations, or None for none.

    Checks the parameters the chosen augmentations use: pad and translate 0..image_size//2, cutout_size
    1..image_size, alphas > 0, fill one 0..255 value per channel (the training set's mean pixel).
    `alt_flip` is checked here but applied by the pipeline (`workbench.data.pipeline`).
    """
    names = parse_augmentations(names)
    if not names:
        return None
    size = _check_int("image_size", image_size, 1, 4096)
    if "flip_crop" in names and "translate" in names:
        raise UserError("translate is flip_crop without its random flip (for alt_flip); choose one of them")
    if "flip_crop" in names:
        pad = _check_int("pad", pad, 0, size // 2)
    if "translate" in names:
        pad = _check_int("translate", translate, 0, size // 2)
    if "cutout" in names:
        cutout_size = _check_int("cutout_size", cutout_size, 1, size)
    if "mixup" in names:
        mixup_alpha = _check_alpha("mixup_alpha", mixup_alpha)
    if "cutmix" in names:
        cutmix_alpha = _check_alpha("cutmix_alpha", cutmix_alpha)
    fill = _check_fill(fill)
    crop, cut = "flip_crop" in names or "translate" in names, "cutout" in names
    spatial = _spatial(crop, cut, pad, cutout_size, fill, random_flip="translate" not in names) if crop or cut else None

    def augment(images: tf.Tensor, labels: tf.Tensor, seed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        images = tf.convert_to_tensor(images)
        shape = images.shape
        if images.dtype != tf.float32:
            images = tf.cast(images, tf.float32)
        labels = tf.cast(labels, tf.float32)
        seeds = tf.unstack(tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), len(_STREAM)))
        stream = {name: seeds[i] for name, i in _STREAM.items()}
        if shape[-1] is not None and len(fill) != shape[-1]:
            raise UserError(f"fill has {len(fill)} values but the images have {shape[-1]} channels")
        if "autoaugment" in names:
            images = autoaugment(images, stream["autoaugment"], fill, image_size=size)
        if spatial is not None:
            images = spatial(images, stream["flip_crop"], stream["cutout"])
        if "mixup" in names and "cutmix" in names:
            use_mixup = tf.random.stateless_uniform([], stream["mix_choice"]) < 0.5
            images, labels = tf.cond(
                use_mixup,
                lambda: mixup(images, labels, stream["mixup"], mixup_alpha),
                lambda: cutmix(images, labels, stream["cutmix"], cutmix_alpha),
            )
        elif "mixup" in names:
            images, labels = mixup(images, labels, stream["mixup"], mixup_alpha)
        elif "cutmix" in names:
            images, labels = cutmix(images, labels, stream["cutmix"], cutmix_alpha)
        images.set_shape(shape)
        return images, labels

    augment.names = names  # type: ignore[attr-defined]  # what it applies, for whoever holds it
    return augment
