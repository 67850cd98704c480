"""Dataset sources, the safe unpickler, the decode cache, the split and normalisation."""

import os
import pickle
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import FIXTURES
from PIL import Image

from workbench.constants import CIFAR10_CLASSES
from workbench.data.datasets import load_dataset
from workbench.data.split import channel_stats, make_split
from workbench.errors import UserError

MINI = FIXTURES / "cifar10-mini.tar.gz"


def _batch(rng, n, label_key="labels", num_classes=10):
    return {
        b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
        label_key.encode(): list(rng.integers(0, num_classes, n).tolist()),
        b"batch_label": b"testing",
    }


def write_official_cifar10(folder, n=20, seed=0):
    """A miniature cifar-10-batches-py folder in the official pickled format."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    batches = {f"data_batch_{i}": _batch(rng, n) for i in range(1, 6)}
    batches["test_batch"] = _batch(rng, n)
    batches["batches.meta"] = {b"label_names": [c.encode() for c in CIFAR10_CLASSES]}
    for name, batch in batches.items():
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    return batches


def test_official_folder_and_tar_give_the_same_arrays(tmp_path, cache_dir):
    batches = write_official_cifar10(tmp_path / "cifar-10-batches-py")
    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    from_folder = load_dataset("cifar10", tmp_path / "cifar-10-batches-py")
    from_tar = load_dataset("cifar10", archive)
    assert from_folder.x_train.shape == (100, 32, 32, 3) and from_folder.x_train.dtype == np.uint8
    np.testing.assert_array_equal(from_folder.x_train, from_tar.x_train)
    np.testing.assert_array_equal(from_folder.y_test, from_tar.y_test)
    # Channels-first planes become channels-last pixels: pixel (0,0) of image 0 is bytes 0, 1024, 2048.
    raw = batches["data_batch_1"][b"data"][0]
    np.testing.assert_array_equal(from_folder.x_train[0, 0, 0], [raw[0], raw[1024], raw[2048]])
    assert from_folder.y_train.tolist()[:20] == batches["data_batch_1"][b"labels"]
    assert from_folder.class_names[0] == "airplane" and from_folder.num_classes == 10


def test_cifar100_official_format(tmp_path, cache_dir):
    rng = np.random.default_rng(1)
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    for name, n in (("train", 50), ("test", 10)):
        batch = _batch(rng, n, "fine_labels", 100)
        batch[b"fine_labels"][0] = 99
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    (folder / "meta").write_bytes(pickle.dumps({b"fine_label_names": [f"c{i}".encode() for i in range(100)]}))
    data = load_dataset("cifar100", folder)
    assert data.num_classes == 100 and len(data.x_train) == 50 and data.y_train[0] == 99
    with pytest.raises(UserError, match="holds cifar100, not cifar10"):
        load_dataset("cifar10", folder)


def test_crafted_pickle_cannot_run_code(tmp_path, cache_dir):
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    folder = tmp_path / "cifar-10-batches-py"
    write_official_cifar10(folder)
    (folder / "data_batch_3").write_bytes(pickle.dumps({b"data": Exploit(), b"labels": []}, protocol=2))
    with pytest.raises(UserError, match="not a valid CIFAR batch"):
        load_dataset("cifar10", folder)
    assert not marker.exists()


def test_truncated_archive_and_garbage_are_clear_errors(tmp_path, cache_dir):
    truncated = tmp_path / "cut.tar.gz"
    truncated.write_bytes(MINI.read_bytes()[: MINI.stat().st_size // 2])
    with pytest.raises(UserError, match="corrupt or truncated"):
        load_dataset("cifar10", truncated)
    garbage = tmp_path / "notes.txt"
    garbage.write_text("hello")
    with pytest.raises(UserError, match="neither a folder nor a tar/zip"):
        load_dataset("cifar10", garbage)
    with pytest.raises(UserError, match="does not exist"):
        load_dataset("cifar10", tmp_path / "missing.tar.gz")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UserError, match="holds no CIFAR data"):
        load_dataset("cifar10", empty)
    folder = tmp_path / "cifar-10-batches-py"
    write_official_cifar10(folder)
    (folder / "test_batch").write_bytes(pickle.dumps({b"data": b"x"}, protocol=2)[:-3])
    with pytest.raises(UserError, match="test_batch"):
        load_dataset("cifar10", folder)


def test_real_image_folder_archive(cache_dir):
    data = load_dataset("cifar10", MINI)
    assert data.x_train.shape == (400, 32, 32, 3) and data.x_test.shape == (200, 32, 32, 3)
    assert data.class_names == [
        "airplane",
        "automobile",
        "bird",
        "cat",
        "deer",
        "dog",
        "frog",
        "horse",
        "ship",
        "truck",
    ]
    assert np.bincount(data.y_train).tolist() == [40] * 10
    assert not data.synthetic and "cifar10-mini" in data.source
    # Real photos, not noise: neighbouring pixels are strongly correlated.
    x = data.x_train.astype(np.float32)
    assert np.corrcoef(x[:, :, :-1].ravel(), x[:, :, 1:].ravel())[0, 1] > 0.8


def _image_tree(root, size=(40, 30), extra=True):
    for split, count in (("train", 6), ("test", 2)):
        for cls in ("cats", "dogs"):
            folder = root / split / cls
            folder.mkdir(parents=True)
            for i in range(count):
                Image.new("RGB", size, (i * 20, 100, 200 if cls == "dogs" else 0)).save(folder / f"{i}.png")
    if extra:
        (root / "train" / "cats" / ".DS_Store").write_bytes(b"\0\1")
        (root / "README.txt").write_text("my dataset")


def test_any_image_folder_is_resized_or_kept(tmp_path, cache_dir):
    _image_tree(tmp_path / "pets")
    data = load_dataset("folder", tmp_path / "pets")
    assert data.image_shape == (32, 32, 3) and data.class_names == ["cats", "dogs"]
    assert "2 non-image files ignored" in data.source
    kept = load_dataset("folder", tmp_path / "pets", image_size=None)
    assert kept.image_shape == (30, 40, 3)
    with pytest.raises(UserError, match="has 2 classes, cifar10 has 10"):
        load_dataset("cifar10", tmp_path / "pets")


def test_image_folder_errors(tmp_path, cache_dir):
    _image_tree(tmp_path / "bad", extra=False)
    (tmp_path / "bad" / "train" / "dogs" / "broken.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(UserError, match=r"cannot decode image .*broken.jpg"):
        load_dataset("folder", tmp_path / "bad")
    _image_tree(tmp_path / "mixed", extra=False)
    Image.new("RGB", (10, 10)).save(tmp_path / "mixed" / "train" / "cats" / "small.png")
    with pytest.raises(UserError, match="different sizes"):
        load_dataset("folder", tmp_path / "mixed", image_size=None)
    with pytest.raises(UserError, match="needs a data path"):
        load_dataset("folder")
    with pytest.raises(UserError, match="unknown dataset 'imagenet'; choose one of: cifar10"):
        load_dataset("imagenet")


def test_decode_cache_makes_the_second_load_fast(tmp_path, cache_dir):
    started = time.perf_counter()
    first = load_dataset("cifar10", MINI)
    first_seconds = time.perf_counter() - started
    assert len(list(cache_dir.glob("*.npz"))) == 1
    started = time.perf_counter()
    second = load_dataset("cifar10", MINI)
    second_seconds = time.perf_counter() - started
    np.testing.assert_array_equal(first.x_test, second.x_test)
    assert second_seconds < first_seconds
    # A cache file cut short by a crash is ignored and rewritten, not trusted.
    cache_file = next(cache_dir.glob("*.npz"))
    cache_file.write_bytes(cache_file.read_bytes()[:1000])
    np.testing.assert_array_equal(load_dataset("cifar10", MINI).x_train, first.x_train)


def _fake_network(monkeypatch, deliver):
    """Keras' download (the network, not our code) replaced by `deliver(fname, cache_dir)`, which returns
    the folder Keras' get_file would have extracted; no test downloads 170 MB."""
    import keras

    calls = []

    def get_file(fname, origin, cache_dir=None, **kwargs):
        calls.append(fname)
        return str(deliver(fname, Path(cache_dir)))

    monkeypatch.setattr(keras.utils, "get_file", get_file)
    return calls


def test_offline_without_local_copy_names_the_file_to_fetch(tmp_path, monkeypatch, cache_dir):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))

    def offline(fname, cache_dir):
        raise OSError("Name or service not known")

    _fake_network(monkeypatch, offline)
    with pytest.raises(UserError) as error:
        load_dataset("cifar10")
    message = str(error.value)
    assert "cifar-10-python.tar.gz" in message and "--data" in message and str(tmp_path / "keras") in message
    assert "Name or service not known" in message


@pytest.mark.parametrize("layout", ["cifar-10-batches-py-target/cifar-10-batches-py", "cifar-10-batches-py"])
def test_keras_cache_folder_is_used_without_download(tmp_path, monkeypatch, cache_dir, layout):
    """Keras 3 extracts into cifar-10-batches-py-target/, older Keras (and people) at the top: both are
    read by our reader, with the real class names from batches.meta."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    write_official_cifar10(tmp_path / "keras" / "datasets" / layout, n=10)
    downloads = _fake_network(monkeypatch, lambda *_: pytest.fail("downloaded although the cache has it"))
    data = load_dataset("cifar10")
    assert len(data.x_train) == 50 and "official archive" in data.source and not downloads
    assert data.class_names == list(CIFAR10_CLASSES)


@pytest.mark.parametrize("read_only_home", [False, True])
def test_keras_download_is_read_with_real_class_names(tmp_path, monkeypatch, cache_dir, read_only_home):
    """Where Keras 3's get_file extracts (datasets/<fname>/cifar-10-batches-py under $KERAS_HOME, or
    under /tmp/.keras when that is read-only) is where the workbench reads, with batches.meta's names."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))

    def deliver(fname, cache_dir):
        assert cache_dir == tmp_path / "keras"
        folder = (tmp_path / "tmp-keras" if read_only_home else cache_dir) / "datasets" / fname
        if not folder.exists():  # Keras downloads once, then finds its archive in its cache
            write_official_cifar10(folder / "cifar-10-batches-py", n=10)
        return folder

    calls = _fake_network(monkeypatch, deliver)
    data = load_dataset("cifar10")
    assert calls == ["cifar-10-batches-py-target"]
    assert data.class_names == list(CIFAR10_CLASSES) and "official archive" in data.source
    assert load_dataset("cifar10").class_names == list(CIFAR10_CLASSES)
    assert len(calls) == 1 + read_only_home  # in $KERAS_HOME the workbench finds it without asking Keras


def test_official_folder_without_meta_gets_the_official_names(tmp_path, cache_dir):
    folder = tmp_path / "cifar-10-batches-py"
    write_official_cifar10(folder, n=10)
    (folder / "batches.meta").unlink()
    assert load_dataset("cifar10", folder).class_names == list(CIFAR10_CLASSES)


def test_synthetic_is_labelled_and_deterministic():
    a = load_dataset("synthetic", n_train=200, n_test=50, seed=3)
    b = load_dataset("synthetic", n_train=200, n_test=50, seed=3)
    assert a.synthetic and a.source.startswith("synthetic")
    np.testing.assert_array_equal(a.x_train, b.x_train)
    assert a.x_train.dtype == np.uint8 and np.bincount(a.y_train).tolist() == [20] * 10
    with pytest.raises(UserError, match="synthetic dataset only"):
        load_dataset("cifar10", MINI, n_train=5)


def test_split_is_stratified_seeded_and_identified():
    y = np.repeat(np.arange(10), 5000)
    split = make_split(y, seed=0)
    assert len(split.train_idx) == 45000 and len(split.val_idx) == 5000
    assert np.bincount(y[split.val_idx]).tolist() == [500] * 10
    assert not set(split.train_idx) & set(split.val_idx)
    assert make_split(y, seed=0).identity == split.identity
    other = make_split(y, seed=1)
    assert other.identity != split.identity and other.identity.startswith("seed1-")
    uneven = make_split(np.array([0] * 70 + [1] * 30), val_size=10)
    assert np.bincount(np.array([0] * 70 + [1] * 30)[uneven.val_idx]).tolist() == [7, 3]
    with pytest.raises(UserError, match="validation size"):
        make_split(y, val_size=50000)


def test_channel_stats_match_numpy():
    images = np.random.default_rng(0).integers(0, 256, (50, 8, 8, 3), dtype=np.uint8)
    mean, std = channel_stats(images)
    np.testing.assert_allclose(mean, images.reshape(-1, 3).mean(0), rtol=1e-5)
    np.testing.assert_allclose(std, images.reshape(-1, 3).std(0), rtol=1e-4)


@pytest.mark.slow  # decodes all 60,000 JPEGs (~15 s); tests/fixtures' real images run by default
def test_full_cifar10_copy(shared_cifar10, cache_dir):
    data = load_dataset("cifar10", shared_cifar10)
    assert data.x_train.shape == (50000, 32, 32, 3) and data.x_test.shape == (10000, 32, 32, 3)
    assert np.bincount(data.y_test).tolist() == [1000] * 10
    split = make_split(data.y_train)
    mean, _ = channel_stats(data.x_train[split.train_idx])
    # CIFAR-10's well-known channel means (125.3, 123.0, 113.9), within the JPEG copy's loss.
    np.testing.assert_allclose(mean, [125.3, 123.0, 113.9], atol=1.5)
