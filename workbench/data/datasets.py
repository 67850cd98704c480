"""Datasets for the workbench: where they come from, the decode cache, the split and normalisation.

    dataset = load_dataset("cifar10", path="cifar10-jpeg.tar.gz")   # or the official archive, or None

Sources, in order: a path the user gives, then Keras' cache folder (Keras 3's layout or the older one),
then Keras' download.
The split lives in `workbench.data.split`; images stay uint8 in memory and `workbench.data.pipeline`
normalises them batch by batch.
"""

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from workbench.data import sources
from workbench.errors import UserError, choose
from workbench.paths import decode_cache, keras_home

DATASETS = ("cifar10", "cifar100", "folder", "synthetic")
OFFICIAL_URLS = {
    "cifar10": "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
    "cifar100": "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
}
# Keras' download of each archive: get_file's arguments as keras.datasets' loaders pass them, so both
# share one copy. Keras 3 extracts into datasets/<fname>/<inner>; Keras 2 (and people) into datasets/<inner>.
_KERAS_DOWNLOADS = {
    "cifar10": (
        "cifar-10-batches-py-target",
        "cifar-10-batches-py",
        "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
    ),
    "cifar100": (
        "cifar-100-python-target",
        "cifar-100-python",
        "85cd44d02ba6437773c5bbd22e183051d648de2e7d6b014e1ef29b855ba677a7",
    ),
}
_CACHE_VERSION = 2  # 2: an image folder's file names are kept


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
    train_files: tuple = ()  # an image folder's file names, row for row (label reviews' CSV); () otherwise
    test_files: tuple = ()

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple:
        return tuple(self.x_train.shape[1:])


def keras_cache_dir() -> Path:
    return keras_home() / "datasets"


def load_dataset(
    name: str = "cifar10", path: str | Path | None = None, *, image_size: int | None = 32, **synthetic_options: Any
) -> Dataset:
    """Load a dataset by name. Sources, in order: `path` if given (official archive or extracted folder,
    image folder tree or tar/zip), then Keras' cache and loader (download on first use).

    `image_size` resizes image-folder data (None keeps the files' size, for fine-tuning);
    the official archives are always 32x32. Synthetic options: n_train, n_test, num_classes, seed, label_noise.
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
        raise UserError(
            "the 'folder' dataset needs a data path: a folder or archive with train/<class>/* and test/<class>/*"
        )
    return _load_keras(name)


def _load_path(name: str, path: Path, image_size: int | None) -> Dataset:
    path = path.resolve()
    if not path.exists():
        raise UserError(
            f"data path {path} does not exist; give a CIFAR archive, its extracted folder or an image folder"
        )
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
            raise UserError(
                f"{path} has {len(raw.class_names)} classes, {name} has {expected}; choose dataset 'folder'"
            )
    return _dataset(name, raw)


def keras_layouts(name: str) -> list:
    """Where Keras' cache may hold the extracted official folder of `name`: Keras 3's layout, the older one."""
    fname, inner, _ = _KERAS_DOWNLOADS[name]
    return [keras_cache_dir() / fname / inner, keras_cache_dir() / inner]


def _load_keras(name: str) -> Dataset:
    """Keras' cache folder in either layout, else Keras' download; always read with our safe reader,
    so the class names come from the archive's meta file."""
    folder = next((path for path in keras_layouts(name) if path.is_dir()), None) or _keras_download(name)
    return _load_path(name, folder, 32)


def _keras_download(name: str) -> Path:
    """Download and extract through keras.utils.get_file (hash-checked); the extracted folder."""
    from keras.utils import get_file  # noqa: PLC0415 - Keras: seconds to import, only a download needs it

    fname, inner, file_hash = _KERAS_DOWNLOADS[name]
    try:
        # cache_dir: Keras reads $KERAS_HOME once, at import; it still falls back to /tmp/.keras where
        # that folder is read-only, so the returned path is the one to read.
        folder = (
            Path(
                get_file(
                    fname=fname,
                    origin=OFFICIAL_URLS[name],
                    extract=True,
                    file_hash=file_hash,
                    cache_dir=str(keras_home()),
                )
            )
            / inner
        )
        reason = None if folder.is_dir() else f"{folder} is missing after the download"
    except Exception as exc:  # URLError, HTTP errors, a partial download: all mean "not available here"
        reason = f"{type(exc).__name__}: {exc}"
    if reason:
        archive = OFFICIAL_URLS[name].rsplit("/", 1)[1]
        raise UserError(
            f"{name} is not on this machine and could not be downloaded ({reason}). Fetch {OFFICIAL_URLS[name]} "
            f"and either pass its path as --data {archive} or extract it into {keras_cache_dir()} (giving "
            f"{keras_layouts(name)[-1]})"
        )
    return folder


def _dataset(name: str, raw: sources.RawData, synthetic: bool = False) -> Dataset:
    return Dataset(
        name,
        raw.x_train,
        raw.y_train,
        raw.x_test,
        raw.y_test,
        list(raw.class_names),
        raw.description,
        synthetic,
        tuple(raw.train_files),
        tuple(raw.test_files),
    )


# --- the decode cache: decoded uint8 arrays in an uncompressed .npz, so a second load is a memory copy ---


def _cache_file(key: str) -> Path:
    return decode_cache() / f"decoded-{hashlib.sha256(key.encode()).hexdigest()[:20]}.npz"


def _read_cache(key: str) -> sources.RawData | None:
    path = _cache_file(key)
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as f:
            return sources.RawData(
                f["x_train"],
                f["y_train"],
                f["x_test"],
                f["y_test"],
                [str(c) for c in f["class_names"]],
                str(f["description"]),
                str(f["fmt"]),
                tuple(str(n) for n in f["train_files"]),
                tuple(str(n) for n in f["test_files"]),
            )
    except Exception:  # a cache file cut short by a crash: decode again and overwrite it
        return None


def _write_cache(key: str, raw: sources.RawData) -> None:
    path = _cache_file(key)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
        np.savez(
            tmp,
            x_train=raw.x_train,
            y_train=raw.y_train,
            x_test=raw.x_test,
            y_test=raw.y_test,
            class_names=np.array(raw.class_names),
            description=np.array(raw.description),
            fmt=np.array(raw.fmt),
            train_files=np.array(raw.train_files, dtype=str),
            test_files=np.array(raw.test_files, dtype=str),
        )
        os.replace(tmp, path)  # atomic: readers see the old file or the whole new one
    except OSError:
        pass  # an unwritable cache only costs time on the next load
