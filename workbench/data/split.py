"""The train/validation split, and the arrays a run trains and is evaluated on, rebuilt from its spec.

    data = prepare_data(spec)             # a job: load, split, subset, check the batch, channel stats
    x_val, y_val = split_arrays(dataset, val_size=0, split_seed=0).validation   # the Errors tab

Both go through `split_arrays`, so the images the Errors tab shows beside a run's stored validation
predictions are chosen exactly as that run's training chose them.

Cross-validation (issue 24): a run with the dataset options `cv_folds=K,cv_fold=k` trains without fold k of
the training split (`fold_positions`: a seeded partition of the split's positions) and holds that fold out
(`x_holdout`, `y_holdout`); its logits for it are stored as split `oof`, and the K runs' parts stitch into one
out-of-fold matrix over the whole training split. Reviews (`reviews=exclude|relabel`) change the training
images only (`drop`, `relabel`: official training indices), never the validation or the held-out fold.
"""

import hashlib
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from workbench.data.datasets import Dataset, load_dataset
from workbench.data.reviewed import cv_fold_of, loader_options
from workbench.errors import UserError

OOF = "oof"  # the stored split of a cross-validation run's held-out fold (its logits and labels)


@dataclass(frozen=True)
class Split:
    train_idx: np.ndarray = field(repr=False)
    val_idx: np.ndarray = field(repr=False)
    seed: int
    identity: str  # "seed0-<hash of the validation indices>": runs record it; ensembles require equal ones


@dataclass
class SplitArrays:
    split_id: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_holdout: np.ndarray  # a cross-validation run's held-out fold of the training split (empty otherwise)
    y_holdout: np.ndarray
    train_positions: np.ndarray  # official training-set index of each training-split position (before a fold)

    @property
    def validation(self) -> tuple:
        return self.x_val, self.y_val


@dataclass
class PreparedData(SplitArrays):
    dataset: Dataset
    mean: np.ndarray | None = None  # per-channel statistics of x_train (None when the model normalises itself)
    std: np.ndarray | None = None


class DataSpec(Protocol):
    """The settings of a run's spec (`workbench.specs`, a layer above) that say what data it trains on."""

    dataset: str
    data_path: str
    dataset_options: dict
    val_size: int
    split_seed: int
    train_subset: int
    batch_size: int


def default_val_size(n_train: int) -> int:
    """5,000 for CIFAR's 50,000 training images; a tenth of smaller sets."""
    return 5000 if n_train >= 50000 else max(1, round(n_train / 10))


def make_split(y_train: np.ndarray, *, val_size: int | None = None, seed: int = 0) -> Split:
    """Stratified train/validation split of the official training set; the test set is never touched."""
    y_train = np.asarray(y_train)
    n = len(y_train)
    val_size = default_val_size(n) if val_size is None else int(val_size)
    if not 0 < val_size < n:
        raise UserError(f"validation size must be between 1 and {n - 1} (the training set has {n} images)")
    classes, counts = np.unique(y_train, return_counts=True)
    # Largest-remainder allocation keeps each class's share of the validation set proportional.
    exact = counts * val_size / n
    take = np.floor(exact).astype(int)
    take[np.argsort(-(exact - take), kind="stable")[: val_size - take.sum()]] += 1
    rng = np.random.default_rng(seed)
    val_parts = []
    for cls, k in zip(classes, take):
        members = np.flatnonzero(y_train == cls)
        val_parts.append(rng.permutation(members)[:k])
    val_idx = np.sort(np.concatenate(val_parts)).astype(np.int64)
    train_idx = np.setdiff1d(np.arange(n, dtype=np.int64), val_idx)
    digest = hashlib.sha256(val_idx.tobytes()).hexdigest()[:12]
    return Split(train_idx, val_idx, int(seed), f"seed{seed}-{digest}")


def subset_of(split: Split, train_subset: int) -> np.ndarray:
    """The official training indices of the training split's positions (a run's `train_subset` of them)."""
    if not train_subset:
        return split.train_idx
    # A seeded random subset: the split's indices are sorted, and folder datasets are stored class by class.
    return np.sort(np.random.default_rng(split.seed).permutation(split.train_idx)[:train_subset])


def fold_positions(n: int, folds: int, seed: int) -> list[np.ndarray]:
    """The K folds of a training split of `n` images: sorted positions, a seeded partition (K runs and the
    stitching of their held-out logits compute the same one from n alone)."""
    if not 2 <= folds <= n:
        raise UserError(f"cross-validation needs 2 to {n} folds for a training split of {n} images (got {folds})")
    order = np.random.default_rng([int(seed), 24]).permutation(n)
    return [np.sort(part).astype(np.int64) for part in np.array_split(order, folds)]


def split_arrays(
    dataset: Dataset,
    *,
    val_size: int = 0,
    split_seed: int = 0,
    train_subset: int = 0,
    cv: tuple[int, int] = (0, 0),
    drop: np.ndarray | None = None,
    relabel: dict | None = None,
) -> SplitArrays:
    """The training and validation arrays of `dataset` for a run's split settings (0: the defaults).
    cv: (folds, fold) of a cross-validation run (0, 0: none); drop, relabel: the training images its
    reviews remove or relabel (official training indices, `workbench.data.reviewed.training_changes`)."""
    split = make_split(dataset.y_train, val_size=val_size or None, seed=split_seed)
    train_idx = positions = subset_of(split, train_subset)
    holdout_idx = np.zeros(0, np.int64)
    folds, fold = cv
    if folds:
        held = fold_positions(len(train_idx), folds, split_seed)[fold]
        holdout_idx = train_idx[held]
        train_idx = np.delete(train_idx, held)
    y_train = dataset.y_train[train_idx]
    if relabel:
        y_train = y_train.copy()
        for where, index in enumerate(train_idx):
            if int(index) in relabel:
                y_train[where] = relabel[int(index)]
    if drop is not None and len(drop):
        keep = ~np.isin(train_idx, drop)
        train_idx, y_train = train_idx[keep], y_train[keep]
    return SplitArrays(
        split.identity,
        dataset.x_train[train_idx],
        y_train,
        dataset.x_train[split.val_idx],
        dataset.y_train[split.val_idx],
        dataset.x_train[holdout_idx],
        dataset.y_train[holdout_idx],
        positions,
    )


def load_spec_dataset(spec: DataSpec, *, image_size: int | None = 32) -> Dataset:
    """The decoded dataset a spec names (its path, Keras' cache or download, or generated)."""
    return load_dataset(
        spec.dataset, spec.data_path or None, image_size=image_size, **loader_options(spec.dataset_options)
    )


def prepare_data(
    spec: DataSpec,
    *,
    image_size: int | None = 32,
    stats: bool = True,
    dataset: Dataset | None = None,
    drop: np.ndarray | None = None,
    relabel: dict | None = None,
) -> PreparedData:
    """Load a spec's dataset (or take `dataset`, the same one decoded elsewhere) and split it as its
    settings say (a cross-validation fold held out; `drop`/`relabel`: its reviews' changes to the training
    images); refuse a batch larger than the training split. `stats`: compute the channel statistics
    the pipeline normalises with."""
    dataset = dataset if dataset is not None else load_spec_dataset(spec, image_size=image_size)
    arrays = split_arrays(
        dataset,
        val_size=spec.val_size,
        split_seed=spec.split_seed,
        train_subset=spec.train_subset,
        cv=cv_fold_of(spec.dataset_options),
        drop=drop,
        relabel=relabel,
    )
    if spec.batch_size > len(arrays.x_train):
        raise UserError(
            f"batch size {spec.batch_size} is larger than the training split ({len(arrays.x_train)} "
            "images); lower the batch size"
        )
    mean, std = channel_stats(arrays.x_train) if stats else (None, None)
    return PreparedData(**vars(arrays), dataset=dataset, mean=mean, std=std)


def channel_stats(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std (in 0..255) of uint8 images.

    Exact and fast: a 256-bin histogram per channel instead of a float copy of the whole array.
    """
    flat = images.reshape(-1, images.shape[-1])
    values = np.arange(256, dtype=np.float64)
    mean, std = [], []
    for channel in range(flat.shape[1]):
        hist = np.bincount(flat[:, channel], minlength=256).astype(np.float64)
        m = (hist * values).sum() / hist.sum()
        mean.append(m)
        std.append(np.sqrt(max((hist * (values - m) ** 2).sum() / hist.sum(), 1e-12)))
    return np.array(mean, np.float32), np.array(std, np.float32)
