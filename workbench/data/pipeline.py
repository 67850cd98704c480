"""tf.data pipelines over uint8 images held once in memory.

The images stay uint8 in one tensor; the pipeline shuffles and batches *indices*, gathers a batch,
augments it with batched ops (`workbench.data.augment.ops`), normalises, and prefetches, as cifar10-airbench
does, so there is no per-image Python and no float copy of the dataset.

    options = BatchOptions(num_classes=10, batch_size=128, mean=data.mean, std=data.std)  # once per run
    train_ds = make_dataset(x_train, y_train, options, training=True, augment=("flip_crop",))
    val_ds = make_dataset(x_val, y_val, options)
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from workbench.data.augment.ops import build_augmenter, parse_augmentations

LOW_RES_SIZE = 24  # progressive resolution's early epochs (low_res_epochs)


@dataclass(frozen=True, eq=False)  # eq=False: mean and std are arrays, which == does not compare to a bool
class BatchOptions:
    """What every pass over a run's splits shares: how its images become batches for its model (training,
    validation, the final evaluation's views). A run's are made by `workbench.training.fit.batch_options`."""

    num_classes: int
    """Classes of the dataset: the labels become one-hot vectors of this length."""
    batch_size: int
    """Images per batch, the global batch (split over the job's GPUs); training drops the last partial one."""
    mean: np.ndarray
    """Per channel, subtracted from the 0..255 pixels: the training split's mean, or zeros for a model that
    preprocesses its pixels itself."""
    std: np.ndarray
    """Per channel, what the pixels are divided by after the mean: the training split's standard deviation, or
    ones."""
    resize_to: int | None = None
    """A side to resize each normalised batch to on the fly (fine-tuning at 96x96) instead of materialising a
    resized copy of the dataset; None keeps the images' own size."""


def make_dataset(
    images: np.ndarray,
    labels: np.ndarray,
    options: BatchOptions,
    *,
    training: bool = False,
    augment: str | Sequence[str] = (),
    augment_options: dict | None = None,
    seed: int = 0,
    flip: bool = False,
    shift: int = 0,
    first_epoch: int = 0,
    drop_remainder: bool | None = None,
    low_res_epochs: int = 0,
    low_res_size: int = LOW_RES_SIZE,
    extra_targets: np.ndarray | None = None,
) -> tf.data.Dataset:
    """Batches of (normalised float32 images, one-hot float32 labels), made as `options` say.

    training: shuffle each epoch (seeded) and apply the augmentations; evaluation keeps the order.
    flip: mirror every image, shift: move every image by `shift` pixels down and right (negative: up and
    left), REFLECT-padded (test-time augmentation).
    first_epoch: the epoch the first pass over the dataset trains (alt_flip's parity on resume).
    low_res_epochs: progressive resolution: training batches of epochs before this one are resized (bilinear,
    antialiased) to low_res_size pixels a side; the batches' height and width are then unknown to the graph,
    which a model that pools globally (airbench) takes at either size.
    extra_targets: [N, K] float32 rows appended to each image's one-hot label (a cached distillation's
    teacher probabilities), gathered with the same indices.
    """
    n = len(images)
    images = tf.constant(images)
    labels_1hot = tf.one_hot(tf.constant(labels, tf.int64), options.num_classes, dtype=tf.float32)
    if extra_targets is not None:
        labels_1hot = tf.concat([labels_1hot, tf.constant(np.asarray(extra_targets, np.float32))], axis=1)
    mean = tf.constant(np.asarray(options.mean, np.float32))
    std = tf.constant(np.asarray(options.std, np.float32))
    resize_to = options.resize_to
    augmenter = (
        build_augmenter(
            augment, images.shape[1], **(augment_options or {}), fill=tuple(float(m) for m in np.asarray(mean))
        )
        if training
        else None
    )

    alternate = training and "alt_flip" in parse_augmentations(augment)
    low_res = training and low_res_epochs > first_epoch
    if alternate:
        # cifar10-airbench's alternating flip: image i is mirrored in epoch e iff start[i] xor (e odd).
        start = tf.constant(np.random.default_rng(seed).integers(0, 2, n).astype(bool))
    if alternate or low_res:
        # Each pass over the dataset (an epoch: Keras iterates it anew) takes the next epoch number from
        # a counter, read once when the pass starts.
        with tf.device("/CPU:0"):  # tf.data runs on the host, also on a GPU machine
            counter = tf.Variable(first_epoch, dtype=tf.int64, trainable=False)
        epochs = tf.data.Dataset.from_tensors(tf.constant(0, tf.int64)).map(lambda _: counter.assign_add(1) - 1)
        epochs = epochs.flat_map(lambda e: tf.data.Dataset.from_tensors(e).repeat())

    indices = tf.data.Dataset.range(n)
    if training:
        indices = indices.shuffle(n, seed=seed, reshuffle_each_iteration=True)
    drop = training if drop_remainder is None else drop_remainder
    batches = indices.batch(options.batch_size, drop_remainder=drop)
    if augmenter is not None:
        # One stateless seed pair per batch, different every epoch but fixed by `seed`.
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
        batches = tf.data.Dataset.zip((batches, seeds))
    else:
        batches = batches.map(lambda idx: (idx, tf.zeros([2], tf.int64)))
    if alternate or low_res:
        count = batches.cardinality()  # zipped with the endless epoch number: keep the count known to Keras
        batches = tf.data.Dataset.zip((batches, epochs)).map(lambda b, e: (b[0], b[1], e))
        batches = batches.apply(tf.data.experimental.assert_cardinality(count))
    else:
        batches = batches.map(lambda idx, s: (idx, s, tf.constant(0, tf.int64)))

    def load(idx: tf.Tensor, batch_seed: tf.Tensor, epoch: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        x = tf.cast(tf.gather(images, idx), tf.float32)
        y = tf.gather(labels_1hot, idx)
        if alternate:
            mirror = tf.not_equal(tf.gather(start, idx), tf.equal(epoch % 2, 1))
            x = tf.where(mirror[:, None, None, None], tf.reverse(x, axis=[2]), x)
        if augmenter is not None:
            x, y = augmenter(x, y, batch_seed)
        if flip:
            x = tf.image.flip_left_right(x)
        if shift:
            x = _shift(x, shift)
        x = (x - mean) / std
        if low_res:
            x = tf.cond(
                epoch < low_res_epochs,
                lambda: tf.image.resize(x, (low_res_size, low_res_size), method="bilinear", antialias=True),
                lambda: x,
            )
        if resize_to:
            x = tf.image.resize(x, (resize_to, resize_to), method="bilinear")
        return x, y

    return batches.map(load, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def _shift(x: tf.Tensor, shift: int) -> tf.Tensor:
    """Images moved by `shift` pixels along both axes, the uncovered border REFLECT-filled."""
    p = abs(shift)
    padded = tf.pad(x, [[0, 0], [p, p], [p, p], [0, 0]], mode="REFLECT")
    start = p - shift  # shift > 0: the content moves down and right
    return padded[:, start : start + x.shape[1], start : start + x.shape[2], :]


def steps_per_epoch(n: int, batch_size: int) -> int:
    """Training drops the last partial batch so every step has the global batch size."""
    return max(1, n // batch_size)
