"""Penultimate-layer features of a completed run for a split's images, computed once and kept beside its
checkpoint.

    features = split_features(store, run_id, "test", models=ModelCache(store), cache={})
    features.features       # float32 [N, D]: the input of the model's last Dense layer (its classifier)
    features.logits         # float32 [N, K]: the same pass's logits (the map's predicted class, top-5)

Splits: `test`, `val` (the run's validation images) and `train`: the dataset's WHOLE official training set
(50,000 for CIFAR-10, the run's validation images among them), which is what a test image can be a
near-duplicate of (ciFAIR compares with all of it). Images come from `workbench.inspect.sources` (val and
test checked against the run's stored labels fingerprint), batches through tf.data with the run's own
preprocessing (`workbench.predict.models.Preprocessing`, as its training pipeline did it).

The result is cached per (run, split) as `features-<split>.npz` in the run's folder of the store's files,
keyed by the checkpoint's modification time: a run trained again computes anew, deleting the run deletes
its cache with its folder.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from workbench.errors import UserError, choose
from workbench.inspect import source_images
from workbench.predict.models import LoadedModel, ModelCache, Preprocessing, completed_run
from workbench.training.checkpoint import CHECKPOINT

FEATURE_SPLITS = ("test", "val", "train")
SPLIT_TEXT = {"test": "test", "val": "validation", "train": "training (all official training images)"}
BATCH = 500  # images per batch: 500 x 512 float32 features are 1 MB; the model's activations dominate
CACHE_VERSION = "features-v1"


@dataclass(eq=False)
class SplitFeatures:
    run_id: int
    split: str
    features: np.ndarray  # float32 [N, D]
    logits: np.ndarray  # float32 [N, K]
    labels: np.ndarray  # int64 [N]
    layer: str  # the layer whose input the features are (the model's last Dense)
    seconds: float  # how long computing them took (0 when read from the cache)
    cached: bool

    @property
    def predicted(self) -> np.ndarray:
        return self.logits.argmax(axis=1).astype(np.int64)


def check_split(split: str) -> str:
    return choose("split", split, FEATURE_SPLITS)


def split_images(store, run_id: int, split: str, cache: dict) -> tuple:
    """(uint8 images, int64 labels) of the run's `split`, row for row as its features."""
    if check_split(split) == "train":
        return source_images.training_images(store, run_id, cache)
    images = source_images.split_images(store, run_id, split, cache)
    return images, store.load_labels(run_id, split)


def classifier_layer(model):
    """The model's last Dense layer (its classifier); its input is the penultimate layer's output."""
    for layer in reversed(model.layers):
        if isinstance(layer, keras.layers.Dense):
            return layer
    raise UserError(f"model {model.name} has no Dense classifier layer, so it has no penultimate-layer features")


def feature_model(model):
    """A Keras model with `model`'s input and two outputs: the classifier's input (features) and the logits."""
    head = classifier_layer(model)
    return keras.Model(model.inputs, [head.input, model.output], name=f"{model.name}_features")


def batches(images: np.ndarray, preprocessing: Preprocessing, batch_size: int = BATCH):
    """tf.data batches of `images` prepared as `Preprocessing.apply` does (normalise, then resize)."""
    prep = preprocessing
    mean = None if prep.mean is None else tf.constant(prep.mean, tf.float32)
    std = None if prep.std is None else tf.constant(prep.std, tf.float32)
    size = prep.resize_to

    def prepare(x):
        x = tf.cast(x, tf.float32)
        if mean is not None:
            x = (x - mean) / std
        if size and tuple(images.shape[1:3]) != (size, size):
            x = tf.image.resize(x, (size, size), method="bilinear")
        return x

    data = tf.data.Dataset.from_tensor_slices(images).batch(batch_size)
    return data.map(prepare, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def compute(
    loaded: LoadedModel, images: np.ndarray, *, batch_size: int = BATCH, progress: Callable | None = None
) -> tuple:
    """(float32 features [N, D], float32 logits [N, K]) of uint8 `images` by the loaded run's model.
    `progress(done, total)` after each batch."""
    extractor = feature_model(loaded.model)
    parts_f, parts_l, done = [], [], 0
    for x in batches(np.asarray(images), loaded.preprocessing, batch_size):
        features, logits = extractor(x, training=False)
        parts_f.append(np.asarray(features, np.float32).reshape(len(x), -1))
        parts_l.append(np.asarray(logits, np.float32))
        done += len(x)
        if progress:
            progress(done, len(images))
    if not parts_f:
        raise UserError("no images to compute features of")
    return np.concatenate(parts_f), np.concatenate(parts_l)


def cache_path(store, run_id: int, split: str) -> Path:
    return store.run_dir(run_id) / f"features-{check_split(split)}.npz"


def cache_key(store, run_id: int) -> str:
    """What the cached features of the run depend on: the checkpoint file (its modification time)."""
    return f"{CACHE_VERSION}:{(store.run_dir(run_id) / CHECKPOINT).stat().st_mtime_ns}"


def _read(path: Path, key: str) -> dict | None:
    try:
        with np.load(path, allow_pickle=False) as saved:
            if str(saved["key"]) != key:
                return None
            return {name: saved[name] for name in ("features", "logits", "labels", "layer")}
    except (OSError, ValueError, KeyError):
        return None  # missing or damaged: computed again


def _write(path: Path, key: str, **arrays) -> None:
    partial = path.with_name(path.name + ".partial.npz")  # np.savez adds .npz unless the name has it
    np.savez(partial, key=np.array(key), **arrays)
    partial.replace(path)


def split_features(
    store, run_id: int, split: str, *, models: ModelCache, cache: dict, progress: Callable | None = None
) -> SplitFeatures:
    """The run's features for `split`, from its cache file when the checkpoint has not changed since."""
    run_id, split = int(run_id), check_split(split)
    completed_run(store, run_id)  # refuses a run that did not complete or lost its checkpoint, with the reason
    path, key = cache_path(store, run_id, split), cache_key(store, run_id)
    saved = _read(path, key)
    if saved is not None:
        return SplitFeatures(
            run_id,
            split,
            saved["features"].astype(np.float32, copy=False),
            saved["logits"].astype(np.float32, copy=False),
            saved["labels"].astype(np.int64, copy=False),
            str(saved["layer"]),
            0.0,
            True,
        )
    images, labels = split_images(store, run_id, split, cache)
    loaded = models.get(run_id)
    started = time.perf_counter()
    features, logits = compute(loaded, images, progress=progress)
    seconds = time.perf_counter() - started
    layer = classifier_layer(loaded.model).name
    _write(path, key, features=features, logits=logits, labels=np.asarray(labels, np.int64), layer=np.array(layer))
    return SplitFeatures(run_id, split, features, logits, np.asarray(labels, np.int64), layer, seconds, False)
