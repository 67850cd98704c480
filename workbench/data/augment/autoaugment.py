"""AutoAugment (Cubuk et al. 2018, arXiv:1805.09501): the published CIFAR-10 policy as batched TF ops.

The policy is the 25 sub-policies found on reduced CIFAR-10 (paper appendix; the same table as the
official `autoaugment/policies.py` `good_policies()` and torchvision's `AutoAugmentPolicy.CIFAR10`),
with torchvision's magnitude ranges (10 bins, `_augmentation_space`). Per image: one sub-policy is drawn
uniformly, then each of its two ops runs with its probability, with a random sign for signed ops.

Images are float32 [B, H, W, C] in 0..255 (RGB for Color/Contrast). Like PIL, every op returns pixels on
the 0..255 integer grid (except the `fill` colour of geometric ops), so LUT ops index by the rounded value.

Batching: each op belongs to one of four stages, and within one slot an image runs at most one op, so
a slot is four batched passes, each over only the images that need it (gathered, then scattered back):
  * geometric (ShearX/Y, TranslateX/Y, Rotate): one `ImageProjectiveTransformV3` with a per-image matrix,
    nearest neighbour, outside area filled with `fill` (the dataset mean, as the official code does);
  * point (Invert, Solarize, Posterize): elementwise arithmetic with per-image constants;
  * lookup (AutoContrast, Equalize): per-image, per-channel 256-entry tables from histograms that one
    `bincount` computes for all these images at once, applied with one gather;
  * blend (Brightness, Color, Contrast, Sharpness): PIL's ImageEnhance, `degenerate + f * (x - degenerate)`.
No per-image Python, map_fn, vectorized_map or py_function anywhere.
"""

import math
from collections.abc import Callable, Sequence

import tensorflow as tf

NUM_BINS = 10

# ((op, probability, magnitude bin), (op, probability, magnitude bin)); bins are 0..9, None for no magnitude.
CIFAR10_POLICY = (
    (("Invert", 0.1, None), ("Contrast", 0.2, 6)),
    (("Rotate", 0.7, 2), ("TranslateX", 0.3, 9)),
    (("Sharpness", 0.8, 1), ("Sharpness", 0.9, 3)),
    (("ShearY", 0.5, 8), ("TranslateY", 0.7, 9)),
    (("AutoContrast", 0.5, None), ("Equalize", 0.9, None)),
    (("ShearY", 0.2, 7), ("Posterize", 0.3, 7)),
    (("Color", 0.4, 3), ("Brightness", 0.6, 7)),
    (("Sharpness", 0.3, 9), ("Brightness", 0.7, 9)),
    (("Equalize", 0.6, None), ("Equalize", 0.5, None)),
    (("Contrast", 0.6, 7), ("Sharpness", 0.6, 5)),
    (("Color", 0.7, 7), ("TranslateX", 0.5, 8)),
    (("Equalize", 0.3, None), ("AutoContrast", 0.4, None)),
    (("TranslateY", 0.4, 3), ("Sharpness", 0.2, 6)),
    (("Brightness", 0.9, 6), ("Color", 0.2, 8)),
    (("Solarize", 0.5, 2), ("Invert", 0.0, None)),
    (("Equalize", 0.2, None), ("AutoContrast", 0.6, None)),
    (("Equalize", 0.2, None), ("Equalize", 0.6, None)),
    (("Color", 0.9, 9), ("Equalize", 0.6, None)),
    (("AutoContrast", 0.8, None), ("Solarize", 0.2, 8)),
    (("Brightness", 0.1, 3), ("Color", 0.7, 0)),
    (("Solarize", 0.4, 5), ("AutoContrast", 0.9, None)),
    (("TranslateY", 0.9, 9), ("TranslateY", 0.7, 9)),
    (("AutoContrast", 0.9, None), ("Solarize", 0.8, 3)),
    (("Equalize", 0.8, None), ("Invert", 0.1, None)),
    (("TranslateY", 0.7, 9), ("AutoContrast", 0.9, None)),
)

GEOMETRIC = ("ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate")
POINT = ("Invert", "Solarize", "Posterize")
LOOKUP = ("AutoContrast", "Equalize")
BLEND = ("Brightness", "Color", "Contrast", "Sharpness")
OPS = ("Identity",) + GEOMETRIC + POINT + LOOKUP + BLEND
SIGNED = frozenset(GEOMETRIC + BLEND)
_ID = {name: i for i, name in enumerate(OPS)}


def op_magnitude(name: str, level: int | None, image_size: int = 32) -> float:
    """Unsigned magnitude of `name` at bin `level` (0..9), as torchvision's `_augmentation_space(10, size)`.

    Shear: slope 0..0.3; Translate: whole pixels 0..150/331*size (truncated); Rotate: degrees 0..30;
    Brightness/Color/Contrast/Sharpness: 0..0.9 (the enhance factor is 1 +- it); Posterize: bits kept
    8..4; Solarize: threshold 255..0; AutoContrast/Equalize/Invert: no magnitude (0).
    """
    if name not in OPS:
        raise ValueError(f"unknown AutoAugment op {name!r}; choose one of: {', '.join(OPS)}")
    if level is None or name in ("Identity", "AutoContrast", "Equalize", "Invert"):
        return 0.0
    t = level / (NUM_BINS - 1)
    if name in ("ShearX", "ShearY"):
        return 0.3 * t
    if name in ("TranslateX", "TranslateY"):
        return float(int(150.0 / 331.0 * image_size * t))
    if name == "Rotate":
        return 30.0 * t
    if name == "Posterize":
        return float(8 - round(level / ((NUM_BINS - 1) / 4)))
    if name == "Solarize":
        return 255.0 * (1.0 - t)
    return 0.9 * t  # Brightness, Color, Contrast, Sharpness


def _policy_tables(image_size: int) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
    """The policy as [25, 2] tensors: op ids, probabilities, unsigned magnitudes, signed flags."""
    ops = [[_ID[op] for op, _, _ in sub] for sub in CIFAR10_POLICY]
    probs = [[p for _, p, _ in sub] for sub in CIFAR10_POLICY]
    mags = [[op_magnitude(op, lvl, image_size) for op, _, lvl in sub] for sub in CIFAR10_POLICY]
    signed = [[op in SIGNED for op, _, _ in sub] for sub in CIFAR10_POLICY]
    return (
        tf.constant(ops, tf.int32),
        tf.constant(probs, tf.float32),
        tf.constant(mags, tf.float32),
        tf.constant(signed, tf.bool),
    )


def _is(op: tf.Tensor, names: Sequence[str]) -> tf.Tensor:
    """Per image: whether op id `op` [k] is one of `names`."""
    return tf.reduce_any(tf.equal(op[:, None], tf.constant([_ID[n] for n in names], tf.int32)), axis=1)


def _round_clip(x: tf.Tensor) -> tf.Tensor:
    return tf.clip_by_value(tf.round(x), 0.0, 255.0)


def _geometric(images: tf.Tensor, op: tf.Tensor, mag: tf.Tensor, fill: Sequence[float]) -> tf.Tensor:
    """Shear/translate/rotate, each image by its own matrix, in one projective-transform op."""
    shape = tf.shape(images)
    h, w = tf.cast(shape[1], tf.float32), tf.cast(shape[2], tf.float32)
    cx, cy = (w - 1.0) / 2.0, (h - 1.0) / 2.0
    zero = tf.zeros_like(mag)

    def only(name: str) -> tf.Tensor:
        return tf.where(tf.equal(op, _ID[name]), mag, zero)

    theta = only("Rotate") * (math.pi / 180.0)  # counter-clockwise, about the centre (as tf.image.rot90)
    cos, sin = tf.cos(theta), tf.sin(theta)
    # Output pixel (x, y) reads input (a0 x + a1 y + a2, b0 x + b1 y + b2), pixel centres at integers.
    # Shear as the official code's PIL call (1, level, 0, 0, 1, 0): about the image's top-left corner,
    # which is (-0.5, -0.5) here, hence the level / 2. Positive translation moves the content right/down.
    shear_x, shear_y = only("ShearX"), only("ShearY")
    a0, a1, a2 = cos, shear_x - sin, cx - cos * cx + sin * cy - only("TranslateX") + shear_x / 2.0
    b0, b1, b2 = shear_y + sin, cos, cy - sin * cx - cos * cy - only("TranslateY") + shear_y / 2.0
    transforms = tf.stack([a0, a1, a2, b0, b1, b2, zero, zero], axis=1)
    uniform = all(f == fill[0] for f in fill)
    shift = 0.0 if uniform else tf.constant(fill, tf.float32)  # per-channel fill: transform x - fill
    out = tf.raw_ops.ImageProjectiveTransformV3(
        images=images - shift,
        transforms=transforms,
        output_shape=shape[1:3],
        fill_value=float(fill[0]) if uniform else 0.0,
        interpolation="NEAREST",
        fill_mode="CONSTANT",
    )
    return out + shift


def _per_image(value: tf.Tensor) -> tf.Tensor:
    return value[:, None, None, None]


def _point(images: tf.Tensor, op: tf.Tensor, mag: tf.Tensor) -> tf.Tensor:
    """Invert, Solarize, Posterize: pixel-wise arithmetic with per-image constants. (Arithmetic masks,
    not tf.where: TF's select kernel is several times slower than a fused multiply-add on CPU.)"""
    x = _round_clip(images)
    posterize = tf.equal(op, _ID["Posterize"])
    step = _per_image(tf.round(tf.pow(2.0, tf.where(posterize, 8.0 - mag, 0.0))))  # keep the top `mag` bits
    threshold = tf.where(tf.equal(op, _ID["Solarize"]), mag, tf.where(tf.equal(op, _ID["Invert"]), 0.0, 256.0))
    y = tf.floor(x / step) * step  # exact: step is a power of two
    inverted = tf.cast(x >= _per_image(threshold), tf.float32)  # pixels >= threshold become 255 - x
    return y + inverted * (255.0 - x - y)


def _equalize_lut(hist: tf.Tensor, top: tf.Tensor) -> tf.Tensor:
    """PIL/torchvision Equalize tables from int32 histograms [k, C, 256]; `top` [k, C] is each max value."""
    total = tf.reduce_sum(hist, axis=-1)
    last = tf.gather(hist, top, batch_dims=2)  # count of the highest occupied bin
    step = (total - last) // 255
    safe = tf.maximum(step, 1)[..., None]
    below = tf.cumsum(hist, axis=-1, exclusive=True)
    lut = tf.minimum((below + safe // 2) // safe, 255)
    return tf.where((step > 0)[..., None], lut, tf.range(256)[None, None])


def _lookup(images: tf.Tensor, op: tf.Tensor, mag: tf.Tensor) -> tf.Tensor:
    """AutoContrast, Equalize: per-image, per-channel 256-entry tables built from histograms (one
    bincount over the images), applied with one gather."""
    del mag
    k, channels = tf.shape(images)[0], tf.shape(images)[3]
    values = tf.cast(_round_clip(images), tf.int32)
    index = values + (tf.range(k)[:, None, None, None] * channels + tf.range(channels)) * 256
    n = k * channels * 256
    hist = tf.reshape(tf.math.bincount(tf.reshape(index, [-1]), minlength=n, maxlength=n), [k, channels, 256])
    i = tf.range(256)
    lo = tf.reduce_min(tf.where(hist > 0, i, 255), axis=-1)  # lowest and highest value per channel
    hi = tf.reduce_max(tf.where(hist > 0, i, 0), axis=-1)
    equalize = tf.cast(_equalize_lut(hist, hi), tf.float32)
    lo, hi, i = tf.cast(lo, tf.float32)[..., None], tf.cast(hi, tf.float32)[..., None], tf.cast(i, tf.float32)
    # AutoContrast maps lo..hi to 0..255; + 1e-3: (hi - lo) * 255 / (hi - lo) may land just under 255 in
    # float32, and PIL truncates with int().
    stretch = tf.clip_by_value(tf.floor((i - lo) * (255.0 / tf.maximum(hi - lo, 1.0)) + 1e-3), 0.0, 255.0)
    autocontrast = tf.where(hi > lo, stretch, i)
    lut = tf.where(tf.equal(op, _ID["AutoContrast"])[:, None, None], autocontrast, equalize)
    return tf.gather(tf.reshape(lut, [-1]), index)


def _blend(images: tf.Tensor, op: tf.Tensor, mag: tf.Tensor) -> tf.Tensor:
    """PIL ImageEnhance: blend each image with a degenerate image by factor 1 + mag (1 = unchanged)."""
    channels = images.shape[-1]
    if channels == 3:  # PIL's "L" conversion
        r, g, b = images[..., :1], images[..., 1:2], images[..., 2:]
        gray = _round_clip(0.299 * r + 0.587 * g + 0.114 * b)
    else:
        gray = tf.reduce_mean(images, axis=3, keepdims=True)
    mean = tf.round(tf.reduce_mean(gray, axis=[1, 2, 3], keepdims=True))
    # Sharpness: PIL's SMOOTH kernel inside, the 1-pixel border left as it is.
    kernel = tf.constant([[1.0, 1.0, 1.0], [1.0, 5.0, 1.0], [1.0, 1.0, 1.0]]) / 13.0
    kernel = tf.tile(kernel[:, :, None, None], [1, 1, channels, 1])
    smooth = _round_clip(tf.nn.depthwise_conv2d(images, kernel, [1, 1, 1, 1], "VALID"))
    smooth = tf.pad(smooth, [[0, 0], [1, 1], [1, 1], [0, 0]])
    shape = tf.shape(images)
    inner = tf.pad(tf.ones([1, shape[1] - 2, shape[2] - 2, 1]), [[0, 0], [1, 1], [1, 1], [0, 0]])
    smooth = smooth * inner + images * (1.0 - inner)

    def weight(name: str) -> tf.Tensor:
        return _per_image(tf.cast(tf.equal(op, _ID[name]), tf.float32))

    # Brightness: black; selected by 0/1 weights (exact) rather than tf.where (slow on CPU).
    degenerate = weight("Color") * gray + weight("Contrast") * mean + weight("Sharpness") * smooth
    factor = 1.0 + _per_image(mag)
    return tf.clip_by_value(tf.floor(degenerate + factor * (images - degenerate)), 0.0, 255.0)  # PIL truncates


def _on_subset(
    images: tf.Tensor,
    need: tf.Tensor,
    op: tf.Tensor,
    mag: tf.Tensor,
    stage: Callable[[tf.Tensor, tf.Tensor, tf.Tensor], tf.Tensor],
) -> tf.Tensor:
    """Run `stage` on the images where `need` is true only, and put them back in place."""

    def run() -> tf.Tensor:
        where = tf.where(need)
        out = stage(tf.gather_nd(images, where), tf.gather_nd(op, where), tf.gather_nd(mag, where))
        return tf.tensor_scatter_nd_update(images, where, out)

    # Skipped when no image needs the stage (also: some kernels mis-shape empty batches).
    return tf.cond(tf.reduce_any(need), run, lambda: tf.identity(images))


def apply_ops(images: tf.Tensor, op: tf.Tensor, mag: tf.Tensor, fill: Sequence[float] = (0.0, 0.0, 0.0)) -> tf.Tensor:
    """Apply op id `op[i]` (index into OPS, 0 = Identity) with signed magnitude `mag[i]` to image i."""
    fill = tuple(float(f) for f in fill)
    stages: tuple[tuple[tuple[str, ...], Callable[[tf.Tensor, tf.Tensor, tf.Tensor], tf.Tensor]], ...] = (
        (GEOMETRIC, lambda x, o, m: _geometric(x, o, m, fill)),
        (POINT, _point),
        (LOOKUP, _lookup),
        (BLEND, _blend),
    )
    for names, stage in stages:
        images = _on_subset(images, _is(op, names), op, mag, stage)
    return images


def apply_op(
    images: tf.Tensor, name: str, magnitude: float | tf.Tensor = 0.0, fill: Sequence[float] = (0.0, 0.0, 0.0)
) -> tf.Tensor:
    """Apply one op to every image: `magnitude` (a scalar or one per image) as `op_magnitude` gives,
    with a sign for signed ops. For tests and inspection; the policy goes through `apply_ops` too."""
    if name not in OPS:
        raise ValueError(f"unknown AutoAugment op {name!r}; choose one of: {', '.join(OPS)}")
    images = tf.convert_to_tensor(images, tf.float32)
    batch = tf.shape(images)[:1]
    mag = tf.broadcast_to(tf.cast(magnitude, tf.float32), batch)
    out = apply_ops(images, tf.fill(batch, _ID[name]), mag, fill)
    out.set_shape(images.shape)
    return out


def autoaugment(
    images: tf.Tensor, seed: tf.Tensor, fill: Sequence[float] = (0.0, 0.0, 0.0), image_size: int | None = None
) -> tf.Tensor:
    """The CIFAR-10 AutoAugment policy on a batch, deterministic under `seed` (int [2])."""
    images = tf.convert_to_tensor(images, tf.float32)
    if image_size is None:
        image_size = images.shape[1] or 32
    ops, probs, mags, signed = _policy_tables(image_size)
    batch = tf.shape(images)[0]
    pick_seed, prob_seed, sign_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 3))
    sub = tf.random.stateless_uniform([batch], pick_seed, 0, len(CIFAR10_POLICY), tf.int32)
    chance = tf.random.stateless_uniform([batch, 2], prob_seed)
    flip = tf.random.stateless_uniform([batch, 2], sign_seed) < 0.5
    out = images
    for slot in range(2):
        op = tf.gather(ops[:, slot], sub)
        op = tf.where(chance[:, slot] < tf.gather(probs[:, slot], sub), op, 0)
        mag = tf.gather(mags[:, slot], sub)
        mag = tf.where(tf.gather(signed[:, slot], sub) & flip[:, slot], -mag, mag)
        out = apply_ops(out, op, mag, fill)
    out.set_shape(images.shape)
    return out
