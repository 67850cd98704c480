"""Where files live outside the store, each folder named once (the environment variables override)."""

import os
from pathlib import Path


def keras_home() -> Path:
    """Keras' own folder ($KERAS_HOME or ~/.keras): `datasets/` holds its CIFAR downloads, `models/`
    the ImageNet weights keras.applications fetch."""
    return Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras")


def decode_cache() -> Path:
    """The workbench's cache of decoded datasets ($WORKBENCH_CACHE or ~/.cache/cifar-workbench)."""
    return Path(os.environ.get("WORKBENCH_CACHE") or Path.home() / ".cache" / "cifar-workbench")
