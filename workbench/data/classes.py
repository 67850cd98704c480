"""The names of the classes a run predicts (label i is names[i]): one answer for the Runs, Errors and
Predict tabs.

    names = class_names(store, run, num_classes=logits.shape[1])

In this order: the names stored with the run (its `preprocessing.json`, written when it started training,
from its dataset as loaded then: an image folder's class folders, the archive's names), the names of its
dataset as the caller has loaded it (`found`), the official CIFAR-10 or CIFAR-100 names, else "class 0",
"class 1", ... Names of another count than `num_classes` (the width of the run's logits) are passed over.
Light on purpose (no TensorFlow, no dataset loading): a table of runs may ask for every one.
"""

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

from workbench.constants import CIFAR10_CLASSES, CIFAR100_CLASSES, PREPROCESSING
from workbench.errors import UserError

if TYPE_CHECKING:  # the store imports sqlite_utils and pandas: seconds, for a type
    from store import Store

OFFICIAL = {"cifar10": CIFAR10_CLASSES, "cifar100": CIFAR100_CLASSES}  # dataset -> its names, label order


def stored_class_names(store: "Store", run: dict) -> list | None:
    """The class names saved in the run's folder when it started training; None when there are none
    (a run from before they were saved, one that never started, an unreadable file)."""
    try:
        info = json.loads((store.run_dir(run["id"]) / PREPROCESSING).read_text())
        names = info.get("class_names")
    except (OSError, ValueError, AttributeError, UserError):
        return None
    return [str(n) for n in names] if isinstance(names, list) and names else None


def _dataset_of(run: dict) -> str:
    spec = run.get("spec")
    return str((spec.get("dataset") if isinstance(spec, dict) else None) or run.get("dataset") or "")


def class_names(
    store: "Store", run: dict, num_classes: int | None = None, found: Sequence[str] | None = None
) -> list[str]:
    """The run's class names (see the module's docstring); without `num_classes`, the first names known."""
    for names in (stored_class_names(store, run), found, OFFICIAL.get(_dataset_of(run))):
        if names is not None and len(names) and (num_classes is None or len(names) == num_classes):
            return [str(n) for n in names]
    return [f"class {i}" for i in range(num_classes or 0)]
