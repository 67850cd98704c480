"""Datasets for the workbench: where they come from, the decode cache, the split and normalisation.

    dataset = load_dataset("cifar10", path="cifar10-jpeg.tar.gz")   # or the official archive, or None
    split = make_split(dataset.y_train, seed=0)                      # 45,000 / 5,000, stratified
    mean, std = channel_stats(dataset.x_train[split.train_idx])

Images stay uint8 in memory; `workbench.data.pipeline` normalises them batch by batch.
"""
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from workbench.data import sources
from workbench.errors import UserError, choose

DATASETS = ("cifar10", "cifar100", "folder", "synthetic")
OFFICIAL_URLS = {
    "cifar10": "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
    "cifar100": "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
}
_KERAS_CACHE_FOLDERS = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python"}
_CACHE_VERSION = 1


@dataclass
class Dataset:
    name: str
    x_train: np.ndarray  # uint8 [N, H, W, 3]: the official training set, before the train/val split
    y_train: np.ndarray  # int64 [N]
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: list
    source: str  # where it came from, shown to users ("synthetic (...)" for generated data)
    synthetic: bool = False

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple:
        return tuple(self.x_train.shape[1:])


@dataclass(frozen=True)
class Split:
    train_idx: np.ndarray = field(repr=False)
    val_idx: np.ndarray = field(repr=False)
    seed: int
    identity: str  # "seed0-<hash of the validation indices>": runs record it; ensembles require equal ones


def cache_dir() -> Path:
    return Path(os.environ.get("WORKBENCH_CACHE") or Path.home() / ".cache" / "cifar-workbench")


def keras_cache_dir() -> Path:
    return Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras") / "datasets"


def load_dataset(name="cifar10", path=None, *, image_size=32, **synthetic_options) -> Dataset:
    """Load a dataset by name. Sources, in order: `path` if given (official archive or extracted folder,
    image folder tree or tar/zip), then Keras' cache and loader (download on first use).

    `image_size` resizes image-folder data (None keeps the files' size, for fine-tuning);
    the official archives are always 32x32. Synthetic options: n_train, n_test, num_classes, seed.
    """
    choose("dataset", name, DATASETS)
    if name == "synthetic":
        raw = sources.make_synthetic(image_size=image_size or 32, **synthetic_options)
        return _dataset(name, raw, synthetic=True)
    if synthetic_options:
        raise UserError(f"options {sorted(synthetic_options)} apply to the synthetic dataset only")
    if path:
        return _load_path(name, Path(path).expanduser(), image_size)
    if name == "folder":
        raise UserError("the 'folder' dataset needs a data path: a folder or archive with train/<class>/* and test/<class>/*")
    return _load_keras(name)


def _load_path(name: str, path: Path, image_size) -> Dataset:
    path = path.resolve()
    if not path.exists():
        raise UserError(f"data path {path} does not exist; give a CIFAR archive, its extracted folder or an image folder")
    stat = path.stat()
    key = f"{_CACHE_VERSION}|{path}|{stat.st_size}|{stat.st_mtime_ns}|{image_size}"
    raw = _read_cache(key)
    if raw is None:
        files, fmt = sources.open_source(path)
        raw = sources.read_image_folder(files, image_size) if fmt == "folder" else sources.read_official(files, fmt)
        _write_cache(key, raw)
    if raw.fmt != "folder" and name not in (raw.fmt, "folder"):
        raise UserError(f"{path} holds {raw.fmt}, not {name}; choose dataset {raw.fmt!r} or another path")
    if name in ("cifar10", "cifar100"):
        expected = 10 if name == "cifar10" else 100
        if len(raw.class_names) != expected:
            raise UserError(f"{path} has {len(raw.class_names)} classes, {name} has {expected}; choose dataset 'folder'")
    return _dataset(name, raw)


def _load_keras(name: str) -> Dataset:
    """Keras' cache folder first (read with our safe reader), then Keras' own loader, which downloads."""
    cached = keras_cache_dir() / _KERAS_CACHE_FOLDERS[name]
    if cached.is_dir():
        return _load_path(name, cached, 32)
    import keras  # deferred: importing Keras costs seconds and is only needed for the download

    loader = keras.datasets.cifar10 if name == "cifar10" else keras.datasets.cifar100
    try:
        (x_train, y_train), (x_test, y_test) = loader.load_data()
    except Exception as exc:  # URLError, HTTP errors, a partial download: all mean "not available here"
        archive = OFFICIAL_URLS[name].rsplit("/", 1)[1]
        raise UserError(
            f"{name} is not on this machine and could not be downloaded ({type(exc).__name__}: {exc}). "
            f"Fetch {OFFICIAL_URLS[name]} and either pass its path as --data {archive} or extract it into "
            f"{keras_cache_dir()} (giving {keras_cache_dir() / _KERAS_CACHE_FOLDERS[name]})"
        ) from None
    return _load_path(name, cached, 32) if cached.is_dir() else _dataset(name, sources.RawData(
        x_train, y_train.reshape(-1).astype(np.int64), x_test, y_test.reshape(-1).astype(np.int64),
        [f"class_{i}" for i in range(int(y_train.max()) + 1)], f"{name} (Keras loader)"))


def _dataset(name: str, raw: sources.RawData, synthetic=False) -> Dataset:
    return Dataset(name, raw.x_train, raw.y_train, raw.x_test, raw.y_test, list(raw.class_names),
                   raw.description, synthetic)


# --- the decode cache: decoded uint8 arrays in an uncompressed .npz, so a second load is a memory copy ---

def _cache_file(key: str) -> Path:
    return cache_dir() / f"decoded-{hashlib.sha256(key.encode()).hexdigest()[:20]}.npz"


def _read_cache(key: str):
    path = _cache_file(key)
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as f:
            return sources.RawData(f["x_train"], f["y_train"], f["x_test"], f["y_test"],
                                   [str(c) for c in f["class_names"]], str(f["description"]), str(f["fmt"]))
    except Exception:  # a cache file cut short by a crash: decode again and overwrite it
        return None


def _write_cache(key: str, raw: sources.RawData):
    path = _cache_file(key)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
        np.savez(tmp, x_train=raw.x_train, y_train=raw.y_train, x_test=raw.x_test, y_test=raw.y_test,
                 class_names=np.array(raw.class_names), description=np.array(raw.description), fmt=np.array(raw.fmt))
        os.replace(tmp, path)  # atomic: readers see the old file or the whole new one
    except OSError:
        pass  # an unwritable cache only costs time on the next load


# --- split and normalisation ----------------------------------------------------------------------

def default_val_size(n_train: int) -> int:
    """5,000 for CIFAR's 50,000 training images; a tenth of smaller sets."""
    return 5000 if n_train >= 50000 else max(1, round(n_train / 10))


def make_split(y_train: np.ndarray, *, val_size=None, seed=0) -> Split:
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


def channel_stats(images: np.ndarray):
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
