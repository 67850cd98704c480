"""Augmentation throughput: our batched tf.data augmentations against Keras' classic ImageDataGenerator
and against Keras 3's own preprocessing layers in tf.data, the strongest baseline a user would pick.

    .venv/bin/python bench/augment.py [--images 20000] [--baseline-images 5000] [--batch-size 128]

Baselines: `tf_keras.preprocessing.image.ImageDataGenerator(horizontal_flip=True, width_shift_range=0.125,
height_shift_range=0.125, fill_mode="reflect").flow(x, y, batch_size=B)`, as classic Keras CIFAR scripts
feed their models; and Keras 3 layers mapped over the same tf.data batches as ours: RandomFlip +
RandomTranslation(0.125, reflect), RandomFlip + RandomCrop of the 4-pixel reflect-padded batch, and that
+ RandomErasing (a quarter of the image, as our 16-pixel Cutout). Keras 3's RandomCrop draws one offset
per batch (ours one per image): less work, so the comparison favours the baseline. Ours: uint8 images -> `tf.data`
batch(B) -> cast float32 -> augment (the pipeline's seeds zipped in from `Dataset.random`), iterated to
exhaustion. Target: flip_crop+cutout at least 20x the images/s of the fastest baseline doing at least
that work (ImageDataGenerator, which does no erasing, and the Keras 3 layers with RandomErasing); the
script exits 1 when it misses. All sides see the same uint8 images:
the real CIFAR-10 training images when ../shared/data/cifar10-jpeg.tar.gz exists, else random ones.
Each measurement is repeated (`--repeats`) in alternation with the others and the median is reported;
every side gets an untimed warm-up first (graph tracing, tf.data autotuning).
"""

import argparse
import io
import os
import statistics
import sys
import tarfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CIFAR = ROOT.parent / "shared" / "data" / "cifar10-jpeg.tar.gz"

import numpy as np

from bench.targets import Targets
from workbench.constants import CIFAR10_CLASSES as CLASSES

TARGET = 20  # flip_crop+cutout images/s over the fastest baseline's
IDG = "ImageDataGenerator flip+shift (tf_keras)"
KERAS_ERASING = "Keras 3 layers: RandomFlip + pad + RandomCrop + RandomErasing"


def load_images(count: int, seed: int = 0):
    """(uint8 [N, 32, 32, 3], int labels [N], description): real CIFAR-10 training JPEGs if present."""
    if CIFAR.exists():
        from PIL import Image

        images, labels = [], []
        with tarfile.open(CIFAR) as archive:
            for member in archive:
                parts = member.name.split("/")
                if member.isfile() and parts[0] == "train" and member.name.endswith(".jpg"):
                    data = archive.extractfile(member).read()
                    images.append(np.asarray(Image.open(io.BytesIO(data)).convert("RGB")))
                    labels.append(CLASSES.index(parts[1]))
                    if len(images) == count:
                        break
        order = np.random.default_rng(seed).permutation(len(images))  # the archive is sorted by class
        return np.stack(images)[order], np.asarray(labels)[order], f"real CIFAR-10 training images ({CIFAR.name})"
    rng = np.random.default_rng(seed)
    return (
        rng.integers(0, 256, (count, 32, 32, 3), dtype=np.uint8),
        rng.integers(0, 10, count),
        "random uint8 images (no CIFAR-10 copy at ../shared/data)",
    )


def keras_baseline(x, y, batch_size):
    """A function that runs one epoch of the classic ImageDataGenerator and returns images/s."""
    from tf_keras.preprocessing.image import ImageDataGenerator

    generator = ImageDataGenerator(
        horizontal_flip=True, width_shift_range=0.125, height_shift_range=0.125, fill_mode="reflect"
    )

    def epoch():
        flow = generator.flow(x, y, batch_size=batch_size, seed=0)
        start, seen = time.perf_counter(), 0
        for _ in range(len(flow)):
            images, _ = next(flow)
            seen += len(images)
        return seen / (time.perf_counter() - start)

    return epoch


def _batches(x, y, batch_size):
    import tensorflow as tf

    return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size)


def keras_layers(x, y, batch_size, layer_names, pad=0):
    """A function that runs one epoch of Keras 3 preprocessing layers mapped over tf.data batches (the
    Keras guide's way: `dataset.map(lambda x, y: (augment(x), y))`) and returns images/s."""
    import keras
    import tensorflow as tf

    make = {
        "flip": lambda: keras.layers.RandomFlip("horizontal", seed=0),
        "translate": lambda: keras.layers.RandomTranslation(0.125, 0.125, fill_mode="reflect", seed=0),
        "crop": lambda: keras.layers.RandomCrop(32, 32, seed=0),
        "erase": lambda: keras.layers.RandomErasing(factor=1.0, scale=(0.25, 0.25), seed=0),
    }
    augment = keras.Sequential([make[name]() for name in layer_names])

    def apply(images, labels):
        images = tf.cast(images, tf.float32)
        if pad:  # Keras has no reflect-padding layer: the classic pad-and-crop pads with tf.pad
            images = tf.pad(images, [[0, 0], [pad, pad], [pad, pad], [0, 0]], mode="REFLECT")
        return augment(images, training=True), labels

    return _epoch(_batches(x, y, batch_size).map(apply, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE))


def ours(x, y, batch_size, names, fill):
    """A function that runs one epoch of our tf.data pipeline to exhaustion and returns images/s."""
    import tensorflow as tf

    from workbench.data.augment.ops import build_augmenter

    augment = build_augmenter(names, fill=fill) or (lambda images, labels, seed: (images, labels))
    seeds = tf.data.Dataset.random(seed=0).batch(2)
    return _epoch(
        tf.data.Dataset.zip((_batches(x, y, batch_size), seeds))
        .map(lambda xy, seed: augment(tf.cast(xy[0], tf.float32), xy[1], seed), num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )


def _epoch(dataset):
    def epoch():
        start, seen = time.perf_counter(), 0
        for images, _ in dataset:
            seen += int(images.shape[0])
        return seen / (time.perf_counter() - start)

    return epoch


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=20000, help="images per epoch for our pipelines")
    parser.add_argument(
        "--baseline-images",
        type=int,
        default=5000,
        help="images per epoch for ImageDataGenerator (slower; rates are per second)",
    )
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5, help="timed epochs per side (median reported)")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    x, labels, source = load_images(max(args.images, args.baseline_images))
    y = np.eye(10, dtype=np.float32)[labels]
    fill = tuple(float(v) for v in x.reshape(-1, 3).mean(axis=0))
    print(f"data: {len(x)} {source}, loaded in {time.perf_counter() - start:.1f} s; batch size {args.batch_size}")

    import tensorflow as tf

    print(
        f"tensorflow {tf.__version__}, {os.cpu_count()} CPU cores visible, "
        f"GPU: {', '.join(d.name for d in tf.config.list_physical_devices('GPU')) or 'none'}"
    )
    xb, yb = x[: args.baseline_images], y[: args.baseline_images]
    xo, yo = x[: args.images], y[: args.images]
    sides = {
        IDG: (keras_baseline(xb, yb, args.batch_size), len(xb)),
        "Keras 3 layers: RandomFlip + RandomTranslation": (
            keras_layers(xb, yb, args.batch_size, ("flip", "translate")),
            len(xb),
        ),
        "Keras 3 layers: RandomFlip + pad + RandomCrop": (
            keras_layers(xb, yb, args.batch_size, ("flip", "crop"), pad=4),
            len(xb),
        ),
        KERAS_ERASING: (keras_layers(xb, yb, args.batch_size, ("flip", "crop", "erase"), pad=4), len(xb)),
        "ours: flip_crop,cutout": (ours(xo, yo, args.batch_size, "flip_crop,cutout", fill), len(xo)),
        "ours: flip_crop": (ours(xo, yo, args.batch_size, "flip_crop", fill), len(xo)),
        "ours: cutout": (ours(xo, yo, args.batch_size, "cutout", fill), len(xo)),
        "tf.data batch + cast only (no augmentation)": (ours(xo, yo, args.batch_size, "none", fill), len(xo)),
        "ours: autoaugment": (ours(xo, yo, args.batch_size, "autoaugment", fill), len(xo)),
        "ours: autoaugment,flip_crop,cutout": (
            ours(xo, yo, args.batch_size, "autoaugment,flip_crop,cutout", fill),
            len(xo),
        ),
    }
    for epoch, _ in sides.values():  # warm-up: tracing, autotuning, first-touch allocations
        epoch()
    rates = {name: [] for name in sides}
    for _ in range(args.repeats):  # alternate so that load from other processes hits every side alike
        for name, (epoch, _) in sides.items():
            rates[name].append(epoch())

    median = {name: statistics.median(values) for name, values in rates.items()}
    print()
    print(f"| pipeline | images/epoch | images/s (median) | min..max | vs ImageDataGenerator | vs {KERAS_ERASING} |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, (_, count) in sides.items():
        print(
            f"| {name} | {count} | {median[name]:,.0f} | {min(rates[name]):,.0f}..{max(rates[name]):,.0f} "
            f"| {median[name] / median[IDG]:.1f}x | {median[name] / median[KERAS_ERASING]:.1f}x |"
        )
    print()
    ours_rate = median["ours: flip_crop,cutout"]
    for name in (IDG, KERAS_ERASING):
        print(f"flip_crop+cutout vs {name}: {ours_rate / median[name]:.1f}x")
    flip_crop = median["ours: flip_crop"]
    for name in list(sides)[:3]:
        print(f"flip_crop vs {name}: {flip_crop / median[name]:.1f}x")
    fastest = max((IDG, KERAS_ERASING), key=median.get)
    targets = Targets()
    targets.at_least(f"flip_crop+cutout vs the fastest baseline ({fastest})", ours_rate / median[fastest], TARGET, "x")
    return targets.exit_code()


if __name__ == "__main__":
    sys.exit(main())
