"""The train/validation split, and the arrays a run trains and is evaluated on, rebuilt from its spec.

    data = prepare_data(spec)             # a job: load, split, subset, check the batch, channel stats
    x_val, y_val = split_arrays(dataset, val_size=0, split_seed=0).validation   # the Errors tab

Both go through `split_arrays`, so the images the Errors tab shows beside a run's stored validation
predictions are chosen exactly as that run's training chose them.
"""

import hashlib
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from workbench.data.datasets import Dataset, load_dataset
from workbench.errors import UserError


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


def split_arrays(dataset: Dataset, *, val_size: int = 0, split_seed: int = 0, train_subset: int = 0) -> SplitArrays:
    """The training and validation arrays of `dataset` for a run's split settings (0: the defaults)."""
    split = make_split(dataset.y_train, val_size=val_size or None, seed=split_seed)
    train_idx = split.train_idx
    if train_subset:
        # A seeded random subset: the split's indices are sorted, and folder datasets are stored class by class.
        train_idx = np.sort(np.random.default_rng(split_seed).permutation(train_idx)[:train_subset])
    return SplitArrays(
        split.identity,
        dataset.x_train[train_idx],
        dataset.y_train[train_idx],
        dataset.x_train[split.val_idx],
        dataset.y_train[split.val_idx],
    )


def load_spec_dataset(spec: DataSpec, *, image_size: int | None = 32) -> Dataset:
    """The decoded dataset a spec names (its path, Keras' cache or download, or generated)."""
    return load_dataset(spec.dataset, spec.data_path or None, image_size=image_size, **spec.dataset_options)


def prepare_data(
    spec: DataSpec, *, image_size: int | None = 32, stats: bool = True, dataset: Dataset | None = None
) -> PreparedData:
    """Load a spec's dataset (or take `dataset`, the same one decoded elsewhere) and split it as its
    settings say; refuse a batch larger than the training split. `stats`: compute the channel statistics
    the pipeline normalises with."""
    dataset = dataset if dataset is not None else load_spec_dataset(spec, image_size=image_size)
    arrays = split_arrays(dataset, val_size=spec.val_size, split_seed=spec.split_seed, train_subset=spec.train_subset)
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
