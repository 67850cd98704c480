"""The images a source's predictions belong to, rebuilt from a run's stored spec and checked against the stored
labels' fingerprint (`workbench.inspect.sources` says why); datasets and split images kept in a cache per session.

    images = split_images(store, run_id, "test", cache)   # uint8 [N, 32, 32, 3], row i <-> the stored row i
"""

import json
from pathlib import Path

import numpy as np

from workbench.data import classes
from workbench.data.datasets import Dataset, keras_cache_dir, load_dataset
from workbench.data.reviewed import cv_fold_of, loader_options
from workbench.data.split import OOF, fold_positions, split_arrays
from workbench.errors import UserError, choose
from workbench.specs.run import RunSpec

SPLITS = ("val", "test")  # a run's or an ensemble's splits
TRAIN = "train"  # a cross-validation request's one split: the training split, out of fold
DATASETS_KEPT = 2  # whole datasets held in a cache (CIFAR: 180 MB each); older ones are dropped
IMAGES_KEPT = 8  # split image arrays held in a cache (CIFAR test: 30 MB)


def _check_split(split: str) -> str:
    return choose("split", split, (*SPLITS, TRAIN))


def data_settings(run: dict) -> dict:
    """The run's data settings (dataset, data_path, dataset_options, val_size, split_seed, train_subset), with
    RunSpec's defaults for those an older spec lacks."""
    spec, defaults = run.get("spec") or {}, RunSpec()
    return {
        name: spec.get(name, getattr(defaults, name))
        for name in ("dataset", "data_path", "dataset_options", "val_size", "split_seed", "train_subset")
    }


def _where(data: dict) -> str:
    if data["dataset"] == "synthetic":
        return f"synthetic data {json.dumps(data['dataset_options'] or {}, sort_keys=True)}"
    if data["data_path"]:
        return str(data["data_path"])
    return f"{keras_cache_dir()} ({data['dataset']}, Keras' cache)"


def _data_key(data: dict) -> tuple:
    """Identifies the dataset files' content as far as cheaply possible: a changed file is a new key."""
    stamp: tuple[int, int] | str | None = None
    if data["data_path"]:
        try:
            stat = Path(data["data_path"]).expanduser().stat()
            stamp = (stat.st_size, stat.st_mtime_ns)
        except OSError:
            stamp = "missing"
    return (
        data["dataset"],
        str(data["data_path"] or ""),
        # the loader's options only: `reviews` and a fold (cv_folds, cv_fold) do not change the files
        json.dumps(loader_options(data["dataset_options"]), sort_keys=True),
        stamp,
    )


def _remember(cache: dict, key: tuple, value, limit: int):
    same_kind = [k for k in cache if isinstance(k, tuple) and k[:1] == key[:1]]
    for old in same_kind[: max(0, len(same_kind) - limit + 1)]:
        cache.pop(old, None)
    cache[key] = value
    return value


def _dataset(data: dict, cache: dict, run_id: int, split: str) -> Dataset:
    key = ("dataset", *_data_key(data))
    if key not in cache:
        try:
            dataset = load_dataset(
                data["dataset"], data["data_path"] or None, image_size=32, **loader_options(data["dataset_options"])
            )
        except (UserError, OSError, TypeError) as exc:
            raise UserError(
                f"the images for run {run_id}'s {split} split are not available: the dataset at "
                f"{_where(data)} changed or is missing ({exc})"
            ) from None
        _remember(cache, key, dataset, DATASETS_KEPT)
    return cache[key]


def split_images(store, run_id: int, split: str, cache: dict) -> np.ndarray:
    """uint8 [N, H, W, 3]: the images run `run_id`'s stored `split` predictions belong to, row for row.

    Rebuilt from the run's spec (dataset, data_path, dataset_options, val_size, split_seed) as training
    chose them, checked against the stored labels fingerprint, and kept in `cache` (keyed by the dataset
    settings, the data file's size and time, and the split), so later pages cost nothing.
    """
    split = _check_split(split)
    run_id = int(run_id)
    if split == TRAIN:
        return _fold_checkedtraining_split(store, run_id, cache)
    run = store.get_run(run_id)
    expected = store.prediction_info(run_id, split)["labels_hash"]
    data = data_settings(run)
    split_key = ("test",) if split == "test" else ("val", int(data["val_size"] or 0), int(data["split_seed"]))
    key = ("images", *_data_key(data), *split_key)
    if key not in cache:
        dataset = _dataset(data, cache, run_id, split)
        if split == "test":
            images, labels = dataset.x_test, dataset.y_test
        else:
            try:
                images, labels = split_arrays(
                    dataset, val_size=data["val_size"], split_seed=data["split_seed"]
                ).validation
            except UserError as exc:
                raise UserError(
                    f"the images for run {run_id}'s val split are not available: the dataset at "
                    f"{_where(data)} changed ({exc})"
                ) from None
        _remember(cache, key, (images, store.labels_hash(labels)), IMAGES_KEPT)
    images, found = cache[key]
    if found != expected:
        raise UserError(
            f"the images for run {run_id}'s {split} split do not match its stored predictions: the "
            f"dataset at {_where(data)} changed or is missing (its labels differ from those the "
            "run was evaluated on); restore the original data to browse the images"
        )
    return images


def training_split(store, run_id: int, cache: dict) -> tuple:
    """(images, labels) of run `run_id`'s training split as `split_arrays` makes it before a fold is held out and
    without reviews applied (row i: position i, the row order of `crossval.stitch`), kept in `cache`."""
    run = store.get_run(run_id)
    data = data_settings(run)
    key = (
        "images",
        *_data_key(data),
        TRAIN,
        int(data["val_size"] or 0),
        int(data["split_seed"]),
        int(data["train_subset"] or 0),
    )
    if key not in cache:
        dataset = _dataset(data, cache, run_id, TRAIN)
        try:
            arrays = split_arrays(
                dataset, val_size=data["val_size"], split_seed=data["split_seed"], train_subset=data["train_subset"]
            )
        except UserError as exc:
            raise UserError(
                f"the images for run {run_id}'s training split are not available: the dataset at "
                f"{_where(data)} changed ({exc})"
            ) from None
        _remember(cache, key, (arrays.x_train, np.asarray(arrays.y_train, np.int64)), IMAGES_KEPT)
    return cache[key]


def _fold_checkedtraining_split(store, run_id: int, cache: dict) -> np.ndarray:
    """The training split's images (`_training_split`) for cross-validation run `run_id`, refused unless the
    rows of its held-out fold carry the labels it stored for that fold."""
    run = store.get_run(run_id)
    folds, fold = cv_fold_of((run.get("spec") or {}).get("dataset_options") or {})
    if not folds or OOF not in store.prediction_splits(run_id):
        raise UserError(
            f"run {run_id} is not a completed cross-validation fold: only a cv:NAME source has training-split images"
        )
    images, labels = training_split(store, run_id, cache)
    held = fold_positions(len(labels), folds, int(data_settings(run)["split_seed"]))[fold]
    if store.labels_hash(labels[held]) != store.prediction_info(run_id, OOF)["labels_hash"]:
        raise UserError(
            f"the images for run {run_id}'s held-out fold do not match its stored predictions: the dataset at "
            f"{_where(data_settings(run))} changed or is missing; restore the original data to browse the images"
        )
    return images


def class_names_of(store, run_id: int, cache: dict, num_classes: int) -> list:
    """The run's class names (`workbench.data.classes`), its dataset's as loaded into `cache` among them."""
    run = store.get_run(run_id)
    key = ("dataset", *_data_key(data_settings(run)))
    return classes.class_names(store, run, num_classes, found=cache[key].class_names if key in cache else None)


def run_dataset(store, run_id: int, cache: dict) -> Dataset:
    """The decoded dataset run `run_id` trained on (kept in `cache`): for mapping its splits' rows back to
    the dataset's own positions (`workbench.inspect.label_quality`)."""
    return _dataset(data_settings(store.get_run(int(run_id))), cache, int(run_id), "train")


def training_images(store, run_id: int, cache: dict) -> tuple:
    """(uint8 images, int64 labels) of run `run_id`'s dataset's whole official training set (its validation
    images among them: what a test image may duplicate), from `cache` as `split_images` keeps datasets."""
    dataset = run_dataset(store, run_id, cache)
    return dataset.x_train, np.asarray(dataset.y_train, np.int64).reshape(-1)
