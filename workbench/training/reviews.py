"""The label reviews a run trains with (dataset option `reviews=exclude|relabel`, issue 24).

The reviews of the training images are read from the store when the job starts (so a run uses those made
until then) and the run records what it used (`runs.reviews_used`: mode, dataset identity, how many reviews,
how many images dropped and relabelled, and the reviews' fingerprint: runs with equal fingerprints trained on
the same reviewed labels).
"""

from typing import Any

import numpy as np

from store.blobs import labels_hash
from store.reviews import reviews_fingerprint
from workbench.data.datasets import Dataset
from workbench.data.reviewed import dataset_identity, training_changes
from workbench.errors import UserError


def training_reviews(store: Any, spec: Any, dataset: Dataset) -> tuple[np.ndarray, dict, dict]:
    """(official training indices to drop, {index: new label}, the record for `runs.reviews_used`)."""
    mode = str(spec.dataset_options["reviews"])
    if not hasattr(store, "reviews"):
        raise UserError(
            "reviews= reads the label reviews from the store, which a job on a Ray cluster cannot open; "
            "train this run without --ray"
        )
    identity = dataset_identity(spec.dataset, labels_hash(dataset.y_test))
    rows = store.reviews(identity, "train")
    if rows and store.review_part(identity, "train")["labels_hash"] != labels_hash(dataset.y_train):
        raise UserError(
            f"the training labels of {identity} differ from those its reviews were made on; "
            "the dataset changed: restore it, or train without reviews="
        )
    drop, relabel = training_changes(rows, mode)
    used = {
        "mode": mode,
        "dataset": identity,
        "reviews": len(rows),
        "dropped": len(drop),
        "relabelled": len(relabel),
        "fingerprint": reviews_fingerprint(rows),
    }
    return drop, relabel, used
