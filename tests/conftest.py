"""Shared fixtures: quiet TensorFlow, the real CIFAR-10 copy when this checkout has one."""
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_CIFAR10 = ROOT.parent / "shared" / "data" / "cifar10-jpeg.tar.gz"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="session")
def shared_cifar10() -> Path:
    """Path of the bundled CIFAR-10 JPEG archive; skips the test where the checkout has none."""
    if not SHARED_CIFAR10.exists():
        pytest.skip(f"real CIFAR-10 copy not present at {SHARED_CIFAR10} (only CI and dev machines have it)")
    return SHARED_CIFAR10


@pytest.fixture
def cache_dir(tmp_path, monkeypatch) -> Path:
    """A private decode cache so tests never touch the user's ~/.cache."""
    path = tmp_path / "cache"
    monkeypatch.setenv("WORKBENCH_CACHE", str(path))
    return path
