"""Readers that turn a dataset on disk into uint8 arrays: the official CIFAR archives (tar or extracted
folder), image-folder trees or archives (`train/<class>/*`, `test/<class>/*`), and generated data.

Each reader returns `RawData`; `workbench.data.datasets` decides which reader to use, caches the result and
splits it. Everything a user can get wrong here raises `UserError` naming the file and the fix.
"""

import io
import tarfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image, UnidentifiedImageError

from workbench.constants import CIFAR10_CLASSES
from workbench.data.safe_pickle import load_batch
from workbench.errors import UserError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm"}
CIFAR10_BATCHES = [f"data_batch_{i}" for i in range(1, 6)]


@dataclass
class RawData:
    x_train: np.ndarray  # uint8 [N, H, W, 3]
    y_train: np.ndarray  # int64 [N]
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: list
    description: str
    fmt: str = "folder"  # "cifar10"/"cifar100" for the official archives
    train_files: tuple = ()  # an image folder's file names, row for row ("train/cat/0001.jpg"); () otherwise
    test_files: tuple = ()


# --- finding files inside a folder or an archive --------------------------------------------------


class _Files:
    """Uniform read access to the files of a folder, a tar (any compression) or a zip archive."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._read: Callable[[str], bytes]
        if path.is_dir():
            self.names = sorted(p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file())
            self._read = lambda name: (path / name).read_bytes()
        elif zipfile.is_zipfile(path):
            archive = zipfile.ZipFile(path)
            self.names = sorted(n for n in archive.namelist() if not n.endswith("/"))
            self._read = archive.read
        elif _is_tar(path):
            self._load_tar(path)
        else:
            raise UserError(
                f"{path} is neither a folder nor a tar/zip archive; give the official "
                "cifar-10-python.tar.gz, its extracted folder, or an image folder with train/ and test/"
            )

    def _load_tar(self, path: Path) -> None:
        # Read members in archive order: a .tar.gz can only be read sequentially, so random access
        # through extractfile() would decompress from the start for every file.
        contents: dict[str, bytes] = {}
        try:
            with tarfile.open(path) as archive:
                for member in archive:
                    if member.isfile() and (data := archive.extractfile(member)) is not None:
                        contents[member.name.lstrip("./")] = data.read()
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise UserError(f"{path} is a corrupt or truncated archive ({exc}); download it again") from None
        self.names = sorted(contents)
        self._read = contents.__getitem__

    def read(self, name: str) -> bytes:
        return self._read(name)

    def find(self, suffix: str) -> str | None:
        """The one file whose path ends with `suffix` (path components), or None."""
        hits = [n for n in self.names if n == suffix or n.endswith("/" + suffix)]
        return min(hits, key=len) if hits else None

    def need(self, suffix: str) -> str:
        """`find`, for a file the format requires (`detect_format` saw it): UserError if it is missing."""
        name = self.find(suffix)
        if name is None:
            raise UserError(f"{self.path} lacks {suffix}; download the archive again")
        return name


def _is_tar(path: Path) -> bool:
    try:
        return path.is_file() and tarfile.is_tarfile(path)
    except OSError:
        return False


def detect_format(files: _Files) -> str:
    """'cifar10', 'cifar100' (official pickled batches) or 'folder' (image tree)."""
    if files.find("data_batch_1") and files.find("test_batch"):
        return "cifar10"
    if files.find("meta") and files.find("train") and files.find("test"):
        return "cifar100"
    if _image_root(files) is not None:
        return "folder"
    raise UserError(
        f"{files.path} holds no CIFAR data: expected the official batches (data_batch_1..5, test_batch), "
        "the CIFAR-100 files (train, test, meta), or image folders train/<class>/* and test/<class>/*"
    )


def open_source(path: Path) -> tuple[_Files, str]:
    if not path.exists():
        raise UserError(f"data path {path} does not exist; give the path of a CIFAR archive or image folder")
    files = _Files(path)
    return files, detect_format(files)


# --- the official pickled archives ----------------------------------------------------------------


def read_official(files: _Files, fmt: str) -> RawData:
    if fmt == "cifar10":
        train = [load_batch(files.read(files.need(b)), b) for b in CIFAR10_BATCHES if files.find(b)]
        if len(train) != 5:
            raise UserError(f"{files.path} lacks some of data_batch_1..5; download the archive again")
        test = load_batch(files.read(files.need("test_batch")), "test_batch")
        meta_name = files.find("batches.meta")
        names = _names(load_batch(files.read(meta_name), "batches.meta"), "label_names") if meta_name else None
        names = names or list(CIFAR10_CLASSES)  # a copy without batches.meta: the official order
        label_key = "labels"
    else:
        train = [load_batch(files.read(files.need("train")), "train")]
        test = load_batch(files.read(files.need("test")), "test")
        names = _names(load_batch(files.read(files.need("meta")), "meta"), "fine_label_names")
        label_key = "fine_labels"
    x_train = np.concatenate([_images(b, label_key) for b in train])
    y_train = np.concatenate([_labels(b, label_key) for b in train])
    num_classes = int(y_train.max()) + 1
    return RawData(
        x_train,
        y_train,
        _images(test, label_key),
        _labels(test, label_key),
        names or [f"class_{i}" for i in range(num_classes)],
        f"{fmt} (official archive {files.path.name})",
        fmt,
    )


def _images(batch: dict, label_key: str) -> np.ndarray:
    data = np.asarray(batch.get("data"))
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise UserError(f"a CIFAR batch has data of shape {data.shape} {data.dtype}; expected N x 3072 uint8")
    if len(batch.get(label_key, ())) != len(data):
        raise UserError(f"a CIFAR batch has {len(data)} images but a different number of {label_key}")
    # The archives store each image as 3 planes of 32x32 (channels first); the workbench is channels last.
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy()


def _labels(batch: dict, label_key: str) -> np.ndarray:
    return np.asarray(batch[label_key], dtype=np.int64)


def _names(meta: dict, key: str) -> list[str] | None:
    names = meta.get(key)
    return [n.decode() if isinstance(n, bytes) else str(n) for n in names] if names else None


# --- image folders ---------------------------------------------------------------------------------


def _image_root(files: _Files) -> str | None:
    """The prefix under which train/<class>/<image> and test/<class>/<image> live, or None."""
    for name in files.names:
        parts = PurePosixPath(name).parts
        if len(parts) >= 3 and parts[-3] == "train" and PurePosixPath(name).suffix.lower() in IMAGE_SUFFIXES:
            prefix = "/".join(parts[:-3])
            prefix = prefix + "/" if prefix else ""
            if any(n.startswith(prefix + "test/") for n in files.names):
                return prefix
    return None


def read_image_folder(files: _Files, image_size: int | None) -> RawData:
    """Decode every image; resize to image_size x image_size (None keeps the original size)."""
    root = _image_root(files)
    if root is None:
        raise UserError(f"{files.path} holds no train/<class>/* and test/<class>/* image folders")
    by_split: dict[str, dict[str, list[str]]] = {"train": {}, "test": {}}
    skipped = 0
    for name in files.names:
        if not name.startswith(root):
            continue
        parts = PurePosixPath(name[len(root) :]).parts
        if len(parts) != 3 or parts[0] not in by_split or PurePosixPath(name).suffix.lower() not in IMAGE_SUFFIXES:
            skipped += 1  # README files, .DS_Store, thumbnails: not part of the dataset
            continue
        by_split[parts[0]].setdefault(parts[1], []).append(name)
    class_names = sorted(by_split["train"])
    unknown = sorted(set(by_split["test"]) - set(class_names))
    if unknown:
        raise UserError(f"{files.path}: test/ has classes that train/ lacks: {', '.join(unknown)}")
    if len(class_names) < 2:
        raise UserError(f"{files.path}: train/ needs at least two class folders, found {len(class_names)}")
    arrays, file_names = {}, {}
    for split, classes in by_split.items():
        names = [(n, class_names.index(c)) for c in sorted(classes) for n in sorted(classes[c])]
        images = [_decode(files, n, image_size) for n, _ in names]
        shapes = {im.shape for im in images}
        if len(shapes) > 1:
            raise UserError(
                f"{files.path}: images have different sizes {sorted(shapes)[:3]}...; choose an image size "
                "(e.g. 32) so they are resized to one size"
            )
        arrays[split] = (
            np.stack(images) if images else np.zeros((0, 32, 32, 3), np.uint8),
            np.array([label for _, label in names], dtype=np.int64),
        )
        file_names[split] = tuple(n[len(root) :] for n, _ in names)
    if len(arrays["train"][0]) == 0 or len(arrays["test"][0]) == 0:
        raise UserError(f"{files.path}: train/ and test/ must both hold images")
    note = f", {skipped} non-image files ignored" if skipped else ""
    return RawData(
        *arrays["train"],
        *arrays["test"],
        class_names,
        f"image folder {files.path.name}{note}",
        train_files=file_names["train"],
        test_files=file_names["test"],
    )


def _decode(files: _Files, name: str, image_size: int | None) -> np.ndarray:
    image: Image.Image
    try:
        with Image.open(io.BytesIO(files.read(name))) as image:
            image = image.convert("RGB")
            if image_size and image.size != (image_size, image_size):
                image = image.resize((image_size, image_size), Image.Resampling.BICUBIC)
            return np.asarray(image, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise UserError(f"{files.path}: cannot decode image {name} ({exc}); remove or replace that file") from None


# --- generated data ---------------------------------------------------------------------------------


def make_synthetic(
    n_train: int = 2000,
    n_test: int = 500,
    num_classes: int = 10,
    image_size: int = 32,
    seed: int = 0,
    label_noise: float = 0.0,
) -> RawData:
    """Coloured, oriented stripes with noise and random phase: a small CNN learns it in seconds.

    Class k has its own hue and stripe angle; each image gets a random phase, brightness and Gaussian
    noise, so it must be learnt, not memorised. Always labelled synthetic: it is not CIFAR.
    `label_noise`: the fraction of each part's labels changed to another class (planted label errors: the
    images are those of `label_noise=0` with the same seed, so comparing the two names the flipped ones).
    """
    if num_classes < 2 or n_train < num_classes or n_test < 1 or image_size < 8:
        raise UserError("synthetic data needs num_classes >= 2, n_train >= num_classes, n_test >= 1, image_size >= 8")
    if not 0 <= float(label_noise) < 1:
        raise UserError(f"label_noise is a fraction of the labels to flip, from 0 to below 1 (got {label_noise})")
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:image_size, 0:image_size].astype(np.float32) / image_size
    angles = np.linspace(0, np.pi, num_classes, endpoint=False)
    hues = np.stack([np.cos(2 * np.pi * (np.arange(num_classes) / num_classes + s)) for s in (0, 1 / 3, 2 / 3)], 1)

    def generate(n: int) -> tuple[np.ndarray, np.ndarray]:
        labels = np.arange(n) % num_classes
        rng.shuffle(labels)
        theta, phase = angles[labels], rng.uniform(0, 2 * np.pi, n)
        wave = np.sin(
            2 * np.pi * 3 * (xx[None] * np.cos(theta)[:, None, None] + yy[None] * np.sin(theta)[:, None, None])
            + phase[:, None, None]
        )
        colour = 0.5 + 0.35 * hues[labels][:, None, None, :] * (0.6 + 0.4 * wave[..., None])
        images = colour * rng.uniform(0.7, 1.0, (n, 1, 1, 1)) + rng.normal(0, 0.08, (n, image_size, image_size, 3))
        return (np.clip(images, 0, 1) * 255).astype(np.uint8), labels.astype(np.int64)

    x_train, y_train = generate(n_train)
    x_test, y_test = generate(n_test)
    flips = np.random.default_rng([seed, 24])  # its own stream: the images do not depend on label_noise
    for labels in (y_train, y_test):
        chosen = flips.choice(len(labels), round(float(label_noise) * len(labels)), replace=False)
        labels[chosen] = (labels[chosen] + flips.integers(1, num_classes, len(chosen))) % num_classes
    return RawData(
        x_train,
        y_train,
        x_test,
        y_test,
        [f"pattern_{i}" for i in range(num_classes)],
        f"synthetic (generated stripes, not CIFAR; {n_train} train / {n_test} test, seed {seed}"
        + (f", {label_noise:.0%} of labels flipped)" if label_noise else ")"),
    )
