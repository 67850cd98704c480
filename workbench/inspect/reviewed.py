"""Test accuracy on the reviewed test set (issue 24), beside the original figure, never replacing it.

    runs = with_reviewed(store, store.seen_runs())      # each run gains reviewed_test_accuracy (None: no reviews)
    ensembles = ensembles_with_reviewed(store, store.list_ensembles())   # the same for saved ensembles

The reviewed test set drops the images marked label error and gives relabelled ones their new class
(`workbench.data.reviewed.reviewed_labels`); `correct` and `unsure` change nothing. A run's reviews are found by
its dataset's identity (its name and the hash of the test labels stored with its logits), so nothing is loaded
but its stored test logits, and those once per (run, reviews) in this process. A saved ensemble's figure is its
members' stored test logits combined as saved (weights, TTA, `workbench.ensemble.lab.ensemble_probs`), the
combination its test accuracy comes from, once per (ensemble, members' logits, reviews).
"""

import numpy as np

from store.reviews import reviews_fingerprint
from workbench.data.reviewed import dataset_identity, reviewed_labels
from workbench.ensemble import lab as ensemble_lab
from workbench.errors import UserError

_KEPT: dict[tuple, tuple] = {}  # (run id, logits' time, reviews' fingerprint) -> (accuracy, images)
_KEEP_AT_MOST = 2000


def reviewed_accuracy(store, run: dict, rows_by_dataset: dict | None = None) -> tuple | None:
    """(accuracy on the reviewed test set, images in it) of a completed run, or None when its test set has no
    reviews (or it has no test logits)."""
    if run.get("test_accuracy") is None:
        return None
    try:
        info, rows = _test_reviews(
            store, run["id"], run.get("spec") or {}, {} if rows_by_dataset is None else rows_by_dataset
        )
    except UserError:
        return None
    if not rows:
        return None
    return _kept(
        (run["id"], info["created_at"], reviews_fingerprint(rows)),
        lambda: _scored(store.load_logits(run["id"], "test"), store.load_labels(run["id"], "test"), rows),
    )


def _kept(key: tuple, compute):
    """`compute()`'s (accuracy, images), kept per `key` in this process (a None answer is not kept)."""
    if key not in _KEPT:
        found = compute()
        if found is None:
            return None
        if len(_KEPT) > _KEEP_AT_MOST:
            _KEPT.clear()
        _KEPT[key] = found
    return _KEPT[key]


def _scored(scores, given, rows) -> tuple:
    """(accuracy, images) of the arg-max of `scores` on the reviewed labels of the test set labelled `given`."""
    labels, keep = reviewed_labels(given, rows)
    predicted = np.asarray(scores).argmax(axis=1)
    return float(np.mean(predicted[keep] == labels[keep])), int(keep.sum())


def _with_reviewed(store, rows: list[dict], accuracy_of) -> list[dict]:
    """Copies of `rows` (runs or saved ensembles), each with `reviewed_test_accuracy` and `reviewed_test_images`
    from `accuracy_of(store, row, rows_by_dataset)` (None without reviews); the reviews read once a dataset."""
    rows_by_dataset: dict = {}
    out = []
    for row in rows:
        found = accuracy_of(store, row, rows_by_dataset)
        out.append(
            {
                **row,
                "reviewed_test_accuracy": found[0] if found else None,
                "reviewed_test_images": found[1] if found else None,
            }
        )
    return out


def with_reviewed(store, runs: list[dict]) -> list[dict]:
    """Copies of `runs`, each with `reviewed_test_accuracy` and `reviewed_test_images` (None without reviews)."""
    return _with_reviewed(store, runs, reviewed_accuracy)


def _test_reviews(store, run_id: int, spec: dict, rows_by_dataset: dict) -> tuple:
    """(the test logits' info, the reviews of run `run_id`'s test set) for the dataset in `spec`."""
    info = store.prediction_info(run_id, "test")
    identity = dataset_identity(spec.get("dataset", "cifar10"), info["labels_hash"])
    if identity not in rows_by_dataset:
        rows_by_dataset[identity] = store.reviews(identity, "test")
    return info, rows_by_dataset[identity]


def ensemble_reviewed_accuracy(store, ensemble: dict, rows_by_dataset: dict | None = None) -> tuple | None:
    """(accuracy on the reviewed test set, images in it) of a saved ensemble, or None when its test set has no
    reviews, or it has no test accuracy, or a member was deleted."""
    members = [int(m) for m in ensemble.get("members") or []]
    if ensemble.get("test_accuracy") is None or not members:
        return None
    rows_by_dataset = {} if rows_by_dataset is None else rows_by_dataset
    try:
        infos = [store.prediction_info(m, "test")["created_at"] for m in members]
        first = store.get_run(members[0])
        _, rows = _test_reviews(store, members[0], first.get("spec") or {}, rows_by_dataset)
    except UserError:
        return None
    if not rows:
        return None

    def compute():
        try:
            probs, given = ensemble_lab.ensemble_probs(ensemble_lab.Lab(store), ensemble, "test")
        except UserError:
            return None
        return _scored(probs, given, rows)

    return _kept(("ensemble", ensemble["id"], tuple(members), tuple(infos), reviews_fingerprint(rows)), compute)


def ensembles_with_reviewed(store, ensembles: list[dict]) -> list[dict]:
    """Copies of saved `ensembles`, each with `reviewed_test_accuracy` and `reviewed_test_images` (None without
    reviews)."""
    return _with_reviewed(store, ensembles, ensemble_reviewed_accuracy)
