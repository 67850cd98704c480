"""Augmentations (workbench/data/augment/) on real tensors."""

import numpy as np
import pytest
import tensorflow as tf

from workbench.data.augment import autoaugment as aa
from workbench.data.augment import ops as aug
from workbench.data.augment.ops import AUGMENTATIONS, build_augmenter, parse_augmentations
from workbench.errors import UserError

FULL = "autoaugment,flip_crop,cutout,mixup,cutmix"
MEAN = (125.3, 123.0, 113.9)


def seed(a, b=0):
    return tf.constant([a, b], tf.int64)


def images(n=8, size=32, offset=0):
    """Deterministic RGB images with structure (gradients, a shape, noise), uint8 values as float32."""
    rng = np.random.default_rng(offset)
    r, c = np.mgrid[:size, :size]
    base = np.stack(
        [r * 255 / (size - 1), c * 255 / (size - 1), ((r - size / 2) ** 2 + (c - size / 3) ** 2) ** 0.5 * 6], axis=-1
    )
    out = base[None] * rng.uniform(0.3, 1.0, (n, 1, 1, 3)) + rng.normal(0, 12, (n, size, size, 3))
    return np.clip(np.round(out), 0, 255).astype(np.float32)


def onehot(n, k=10):
    return tf.one_hot(tf.range(n) % k, k)


# ------------------------------------------------------------------------------------------ parsing


def test_parse_forms_and_canonical_order():
    assert parse_augmentations("cutout, flip_crop") == ("flip_crop", "cutout")
    assert parse_augmentations(["cutmix", " mixup", "autoaugment"]) == ("autoaugment", "mixup", "cutmix")
    assert parse_augmentations(("flip_crop",)) == ("flip_crop",)
    assert parse_augmentations("cutmix,mixup,cutout,flip_crop,autoaugment") == tuple(
        n for n in aug.ORDER if n not in ("alt_flip", "translate")
    )
    assert parse_augmentations("translate,alt_flip") == ("alt_flip", "translate")
    assert set(aug.ORDER) == set(AUGMENTATIONS) and len(AUGMENTATIONS) == 7
    for nothing in ("", None, "none", " None ", [], (), ["none"], " , "):
        assert parse_augmentations(nothing) == ()
        assert build_augmenter(nothing) is None


@pytest.mark.parametrize(
    "value, expect",
    [
        ("flip_crop,rotate", ["unknown augmentation 'rotate'", "flip_crop, cutout, autoaugment, mixup, cutmix"]),
        (["cutout", "cutout"], ["'cutout'", "more than once"]),
        ("flip_crop, cutout ,flip_crop", ["'flip_crop'", "more than once"]),
        ("none,cutout", ["'none' cannot be combined"]),
        (7, ["comma-separated", "not int"]),
        (["cutout", 3], ["must be strings"]),
    ],
)
def test_parse_errors_say_what_is_allowed(value, expect):
    with pytest.raises(UserError) as err:
        parse_augmentations(value)
    for text in expect:
        assert text in str(err.value)


@pytest.mark.parametrize(
    "kwargs, expect",
    [
        (dict(names="flip_crop", pad=-1), "pad must be a whole number from 0 to 16"),
        (dict(names="flip_crop", pad=17), "from 0 to 16"),
        (dict(names="flip_crop", pad=2.5), "pad must be a whole number"),
        (dict(names="flip_crop", pad=True), "pad must be a whole number"),
        (dict(names="cutout", cutout_size=0), "cutout_size must be a whole number from 1 to 32"),
        (dict(names="cutout", cutout_size=33), "from 1 to 32"),
        (dict(names="cutout", image_size=24, cutout_size=25), "from 1 to 24"),
        (dict(names="mixup", mixup_alpha=0), "mixup_alpha must be a number greater than 0"),
        (dict(names="cutmix", cutmix_alpha=-1.0), "cutmix_alpha must be a number greater than 0"),
        (dict(names="cutmix", cutmix_alpha=float("nan")), "greater than 0"),
        (dict(names="cutout", fill=(0, 300, 0)), "fill must be one value per channel in 0..255"),
        (dict(names="cutout", fill="gray"), "fill must be"),
    ],
)
def test_bad_parameters_raise_user_error(kwargs, expect):
    with pytest.raises(UserError, match=expect):
        build_augmenter(**kwargs)


def test_parameters_of_unused_augmentations_are_not_checked_and_numpy_ints_pass():
    assert build_augmenter("flip_crop", cutout_size=99, mixup_alpha=-1) is not None
    assert build_augmenter("cutout", np.int64(32), cutout_size=np.int32(8)) is not None


# -------------------------------------------------------------------------- determinism and shapes


@pytest.mark.parametrize("names", [n for n in AUGMENTATIONS if n != "alt_flip"] + [FULL])  # alt_flip: the pipeline's
def test_same_seed_same_output_other_seed_other_output(names):
    f = build_augmenter(names, fill=MEAN)
    x, y = tf.constant(images(8)), onehot(8)
    a, la = f(x, y, seed(1, 2))
    b, lb = f(x, y, seed(1, 2))
    c, _ = f(x, y, tf.constant([3, 4], tf.int32))
    assert a.dtype == tf.float32 and a.shape == x.shape and la.shape == y.shape
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    np.testing.assert_array_equal(la.numpy(), lb.numpy())
    assert not np.array_equal(a.numpy(), c.numpy())
    assert not np.array_equal(a.numpy(), x.numpy())
    assert a.numpy().min() >= 0.0 and a.numpy().max() <= 255.0


@pytest.mark.parametrize("names", list(AUGMENTATIONS) + [FULL])
def test_inside_dataset_map_with_unknown_batch_size(names):
    f = build_augmenter(names, fill=MEAN)
    x, y = images(12), onehot(12).numpy()
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(5)  # 5, 5, 2: the batch dim is unknown
    seeds = tf.data.Dataset.random(seed=7).batch(2)
    ds = tf.data.Dataset.zip((data, seeds)).map(lambda xy, s: f(xy[0], xy[1], s))
    assert ds.element_spec[0].shape.as_list() == [None, 32, 32, 3]
    assert ds.element_spec[0].dtype == tf.float32 and ds.element_spec[1].shape.as_list() == [None, 10]
    first = [(a.numpy(), b.numpy()) for a, b in ds]
    assert [a.shape[0] for a, _ in first] == [5, 5, 2]
    again = [(a.numpy(), b.numpy()) for a, b in ds]  # graph mode is deterministic too...
    for (a, b), (c, d) in zip(first, again):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, d)
    s = next(iter(seeds))  # ...and gives what an eager call with the same seed gives
    eager = f(tf.constant(x[:5]), tf.constant(y[:5]), s)
    np.testing.assert_allclose(first[0][0], eager[0].numpy(), atol=1e-3)
    np.testing.assert_allclose(first[0][1], eager[1].numpy(), atol=1e-6)


def test_xla_and_plain_tensorflow_give_identical_flip_crop_cutout(monkeypatch):
    x, y = tf.constant(images(16)), onehot(16)
    jit = build_augmenter("flip_crop,cutout", fill=MEAN)(x, y, seed(5))[0]
    monkeypatch.setattr(aug, "JIT_COMPILE", False)
    plain = build_augmenter("flip_crop,cutout", fill=MEAN)(x, y, seed(5))[0]
    np.testing.assert_array_equal(jit.numpy(), plain.numpy())


def test_each_augmentation_draws_from_its_own_stream():
    """Turning cutout on does not change which flips and crops flip_crop makes."""
    x, y = tf.constant(images(16)), onehot(16)
    crop = build_augmenter("flip_crop", fill=(0, 0, 0))(x, y, seed(9))[0].numpy()
    both = build_augmenter("flip_crop,cutout", fill=(0, 0, 0), cutout_size=4)(x, y, seed(9))[0].numpy()
    kept = np.any(both != 0, axis=-1)
    np.testing.assert_array_equal(both[kept], crop[kept])


# ----------------------------------------------------------------------------------- flip and crop


def _windows(img, pad):
    """Every flipped/unflipped HxW crop of the REFLECT-padded image, keyed by (dy, dx, flipped)."""
    padded = tf.pad(img, [[pad, pad], [pad, pad], [0, 0]], mode="REFLECT").numpy()
    h, w = img.shape[:2]
    out = {}
    for dy in range(2 * pad + 1):
        for dx in range(2 * pad + 1):
            crop = padded[dy : dy + h, dx : dx + w]
            out[(dy, dx, False)], out[(dy, dx, True)] = crop, crop[:, ::-1]
    return out


def test_flip_crop_is_a_window_of_the_reflect_padded_image():
    x = images(64)
    x[..., 0] += np.arange(32)[None, :, None] * 1000  # unique pixels: any match is the true window
    x[..., 1] += np.arange(32)[None, None, :] * 1000
    out = build_augmenter("flip_crop", pad=4)(tf.constant(x), onehot(64), seed(3))[0].numpy()
    found = []
    for img, got in zip(x, out):
        matches = [k for k, crop in _windows(img, 4).items() if np.array_equal(crop, got)]
        assert len(matches) == 1
        found.append(matches[0])
    assert {f[2] for f in found} == {False, True}  # both flips happen...
    assert len({f[:2] for f in found}) > 20  # ...and many of the 81 offsets
    assert len({f[0] for f in found}) >= 7 and len({f[1] for f in found}) >= 7


def test_flip_crop_with_no_padding_only_flips():
    x = images(32)
    out = aug.flip_crop(tf.constant(x), seed(4), pad=0).numpy()
    flipped = [np.array_equal(o, i[:, ::-1]) for o, i in zip(out, x)]
    same = [np.array_equal(o, i) for o, i in zip(out, x)]
    assert all(f or s for f, s in zip(flipped, same))
    assert 4 < sum(flipped) < 28


# ------------------------------------------------------------------------------------------- cutout


@pytest.mark.parametrize("size", [16, 5])
def test_cutout_fills_one_clipped_square_and_keeps_the_rest(size):
    n, fill = 64, (125.5, 0.25, 255.0)
    x = images(n)
    x[..., 1] = np.maximum(x[..., 1], 1.0)  # no input pixel equals the fill colour
    out = build_augmenter("cutout", cutout_size=size, fill=fill)(tf.constant(x), onehot(n), seed(6))[0].numpy()
    filled = np.all(out == np.array(fill, np.float32), axis=-1)
    np.testing.assert_array_equal(out[~filled], x[~filled])
    inside, low = 0, (size - size // 2) ** 2
    for mask in filled:
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        assert mask.sum() == len(rows) * len(cols)  # one axis-aligned rectangle
        assert mask[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1].all()
        assert low <= mask.sum() <= size * size
        if rows[0] > 0 and rows[-1] < 31 and cols[0] > 0 and cols[-1] < 31:
            assert mask.sum() == size * size  # not clipped: exactly the square
            inside += 1
    assert inside > 5


# ----------------------------------------------------------------------------------- mixup, cutmix


def _constant_images(n):
    values = np.arange(1, n + 1, dtype=np.float32) * 20.0  # image i is all 20 (i + 1); label class i
    return tf.constant(np.broadcast_to(values[:, None, None, None], (n, 32, 32, 3)).copy()), values


def test_mixup_mixes_images_and_labels_by_the_same_lambda():
    n = 10
    x, values = _constant_images(n)
    out, labels = build_augmenter("mixup", mixup_alpha=0.4)(x, onehot(n), seed(11))
    out, labels = out.numpy(), labels.numpy()
    np.testing.assert_allclose(labels.sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(out[:, 0, 0, 0], labels @ values, rtol=1e-5)  # pixels = label-weighted mix
    own = labels[np.arange(n), np.arange(n)]
    lam = own[own < 1 - 1e-6]  # images mixed with another: own share lam, the same for the batch
    assert len(lam) >= 2 and np.allclose(lam, lam[0], atol=1e-6) and 0 < lam[0] < 1
    assert np.all(
        np.isclose(labels, 0) | np.isclose(labels, lam[0]) | np.isclose(labels, 1 - lam[0]) | np.isclose(labels, 1)
    )


def test_cutmix_labels_follow_the_pasted_area():
    n = 10
    x, values = _constant_images(n)
    for s in range(4):
        out, labels = build_augmenter("cutmix")(x, onehot(n), seed(20 + s))
        out, labels = out.numpy()[..., 0], labels.numpy()
        np.testing.assert_allclose(labels.sum(axis=1), 1.0, atol=1e-6)
        boxes = out != values[:, None, None]
        for i in range(n):
            got = set(np.unique(out[i])) - {values[i]}
            assert len(got) <= 1  # pixels come from the image itself or one partner
            if got:
                partner = int(np.flatnonzero(values == got.pop())[0])
                assert labels[i, partner] == pytest.approx(boxes[i].mean(), abs=1e-6)
                assert labels[i, i] == pytest.approx(1 - boxes[i].mean(), abs=1e-6)
        pasted = boxes[boxes.reshape(n, -1).any(axis=1)]
        assert all(np.array_equal(b, pasted[0]) for b in pasted)  # one box for the batch


def test_mixup_and_cutmix_together_pick_one_per_batch():
    n = 10
    x, values = _constant_images(n)
    f = build_augmenter("mixup,cutmix")
    kinds = set()
    for s in range(12):
        out = f(x, onehot(n), seed(40 + s))[0].numpy()
        kinds.add("cutmix" if set(np.unique(out)) <= set(values) else "mixup")
    assert kinds == {"mixup", "cutmix"}


def test_beta_samples_have_the_right_mean_and_spread():
    lam = np.array([float(aug._beta(seed(i), 0.2)) for i in range(300)])
    assert lam.min() >= 0.0 and lam.max() <= 1.0
    assert abs(lam.mean() - 0.5) < 0.08  # Beta(0.2, 0.2): mean 1/2, mostly near 0 or 1
    assert np.mean((lam < 0.1) | (lam > 0.9)) > 0.5


# ------------------------------------------------------------------------------------- autoaugment


def test_policy_table_is_the_published_cifar10_policy():
    policy = aa.CIFAR10_POLICY
    assert len(policy) == 25 and all(len(sub) == 2 for sub in policy)
    for sub in policy:
        for op, prob, level in sub:
            assert op in aa.OPS and op != "Identity"
            assert 0.0 <= prob <= 1.0
            assert (level is None) == (op in ("Invert", "AutoContrast", "Equalize"))
            assert level is None or 0 <= level <= 9
    assert policy[0] == (("Invert", 0.1, None), ("Contrast", 0.2, 6))
    assert policy[3] == (("ShearY", 0.5, 8), ("TranslateY", 0.7, 9))
    assert policy[14] == (("Solarize", 0.5, 2), ("Invert", 0.0, None))
    assert policy[24] == (("TranslateY", 0.7, 9), ("AutoContrast", 0.9, None))
    used = {op for sub in policy for op, _, _ in sub}
    assert used == set(aa.OPS) - {"Identity", "ShearX"}  # the CIFAR-10 policy never uses ShearX


def test_magnitudes_follow_torchvision_ranges():
    assert aa.op_magnitude("Rotate", 9) == pytest.approx(30.0)
    assert aa.op_magnitude("ShearY", 9) == pytest.approx(0.3)
    assert aa.op_magnitude("TranslateY", 9, 32) == 14.0  # int(150/331 * 32)
    assert aa.op_magnitude("Color", 9) == pytest.approx(0.9)
    assert [aa.op_magnitude("Posterize", i) for i in range(10)] == [8, 8, 7, 7, 6, 6, 5, 5, 4, 4]
    assert aa.op_magnitude("Solarize", 0) == 255.0 and aa.op_magnitude("Solarize", 9) == 0.0
    assert aa.op_magnitude("Equalize", None) == 0.0


def _op(x, name, mag=0.0, fill=(0.0, 0.0, 0.0)):
    return aa.apply_op(tf.constant(x), name, mag, fill).numpy()


def test_pixel_ops_do_what_they_say():
    x = images(4)
    np.testing.assert_array_equal(_op(x, "Invert"), 255 - x)
    sol = _op(x, "Solarize", 128.0)
    np.testing.assert_array_equal(sol, np.where(x >= 128, 255 - x, x))
    np.testing.assert_array_equal(_op(x, "Posterize", 4.0), (x.astype(np.uint8) & 0xF0).astype(np.float32))
    np.testing.assert_array_equal(_op(x, "Posterize", 8.0), x)
    np.testing.assert_array_equal(_op(x, "Brightness", -1.0), 0 * x)
    gray = _op(x, "Color", -1.0)
    assert np.all(gray == gray[..., :1]) and not np.all(x == x[..., :1])
    flat = _op(x, "Contrast", -1.0)
    assert np.all(flat == flat[:, :1, :1, :1])
    low = 50 + np.round(x / 255 * 50)  # values 50..100
    stretched = _op(low, "AutoContrast")
    assert np.all(stretched.min(axis=(1, 2)) == 0) and np.all(stretched.max(axis=(1, 2)) == 255)
    for name in ("Brightness", "Color", "Contrast", "Sharpness"):
        np.testing.assert_array_equal(_op(x, name, 0.0), x)


def test_geometric_ops_move_pixels():
    x = images(4)
    for name in ("Rotate", "ShearX", "ShearY", "TranslateX", "TranslateY"):
        np.testing.assert_array_equal(_op(x, name, 0.0), x)
    np.testing.assert_array_equal(_op(x, "Rotate", 90.0), tf.image.rot90(x).numpy())  # counter-clockwise
    moved = _op(x, "TranslateX", 5.0, fill=MEAN)
    np.testing.assert_array_equal(moved[:, :, 5:], x[:, :, :-5])
    np.testing.assert_allclose(moved[:, :, :5], np.broadcast_to(np.float32(MEAN), moved[:, :, :5].shape))
    down = _op(x, "TranslateY", -3.0)
    np.testing.assert_array_equal(down[:, :-3], x[:, 3:])
    assert np.all(down[:, -3:] == 0)
    sheared = _op(x, "ShearX", 0.3)
    np.testing.assert_array_equal(sheared[:, 0], x[:, 0])  # row 0 stays, lower rows shift
    assert not np.array_equal(sheared[:, 20], x[:, 20])


@pytest.mark.parametrize(
    "name, mag, max_diff, max_share",
    [
        ("Invert", 0.0, 0, 0),
        ("Solarize", 100.0, 0, 0),
        ("Posterize", 5.0, 0, 0),
        ("Equalize", 0.0, 0, 0),
        ("AutoContrast", 0.0, 1, 0.01),
        ("Color", 0.5, 0, 0),
        ("Sharpness", -0.6, 0, 0),
        ("Contrast", 0.5, 1, 0.02),
        ("Brightness", 0.5, 0, 0),
        ("TranslateX", 5.0, 0, 0),
        ("ShearY", -0.3, 0, 0),
        ("Rotate", -13.3, 255, 0.002),
    ],
)
def test_ops_match_pil_as_the_original_autoaugment_used(name, mag, max_diff, max_share):
    from PIL import Image, ImageEnhance, ImageOps

    pil = {
        "Invert": ImageOps.invert,
        "Solarize": lambda im: ImageOps.solarize(im, mag),
        "Posterize": lambda im: ImageOps.posterize(im, int(mag)),
        "Equalize": ImageOps.equalize,
        "AutoContrast": ImageOps.autocontrast,
        "Color": lambda im: ImageEnhance.Color(im).enhance(1 + mag),
        "Sharpness": lambda im: ImageEnhance.Sharpness(im).enhance(1 + mag),
        "Contrast": lambda im: ImageEnhance.Contrast(im).enhance(1 + mag),
        "Brightness": lambda im: ImageEnhance.Brightness(im).enhance(1 + mag),
        "TranslateX": lambda im: im.transform(im.size, Image.AFFINE, (1, 0, -mag, 0, 1, 0)),
        "ShearY": lambda im: im.transform(im.size, Image.AFFINE, (1, 0, 0, mag, 1, 0)),
        "Rotate": lambda im: im.rotate(mag),
    }[name]
    x = images(6, offset=1)
    ours = _op(x, name, mag)
    ref = np.stack([np.asarray(pil(Image.fromarray(i.astype(np.uint8)))) for i in x]).astype(np.float32)
    diff = np.abs(ours - ref)
    assert diff.max() <= max_diff and np.mean(diff > 0) <= max_share


def test_batched_ops_equal_one_op_at_a_time():
    """Each image in a batch gets its own op and magnitude; stages gather and scatter correctly."""
    names = aa.OPS
    x = images(len(names), offset=2)
    mags = [
        aa.op_magnitude(n, 7) * (-1 if i % 2 else 1) if n in aa.SIGNED else aa.op_magnitude(n, 7)
        for i, n in enumerate(names)
    ]
    op = tf.constant([aa._ID[n] for n in names], tf.int32)
    batched = aa.apply_ops(tf.constant(x), op, tf.constant(mags, tf.float32), MEAN).numpy()
    for i, name in enumerate(names):
        alone = _op(x[i : i + 1], name, mags[i], MEAN)[0]
        np.testing.assert_array_equal(batched[i], alone, err_msg=name)
    changed = [not np.array_equal(batched[i], x[i]) for i in range(len(names))]
    assert changed == [n != "Identity" for n in names]


def test_autoaugment_policy_on_a_batch():
    x = tf.constant(images(64, offset=3))
    out = aa.autoaugment(x, seed(8), MEAN).numpy()
    assert out.shape == x.shape and out.dtype == np.float32
    assert out.min() >= 0 and out.max() <= 255
    changed = np.mean([not np.array_equal(o, i) for o, i in zip(out, x.numpy())])
    assert 0.5 < changed < 1.0  # most images change; sub-policies with low probabilities leave some as they are
    np.testing.assert_array_equal(out, aa.autoaugment(x, seed(8), MEAN).numpy())
