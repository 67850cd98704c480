"""Error analysis on stored predictions (NumPy only): which images a source gets wrong, and how.

Pure functions of probabilities [N, K] and integer labels [N]; no store, no images, no UI.

  confusion_matrix(y_true, y_pred, K)       [K, K] counts, rows = true class, columns = predicted class
  per_class(y_true, probs)                  one dict per class: count, correct, errors, precision, recall, ...
  top_k_accuracy(probs, y, k)               share of images whose true class is among the k most probable
  misclassified(probs, y, ...)              indices of wrong images, filtered to a confusion row/column/cell,
                                            sorted confidently-wrong first, lowest-true-probability first or
                                            in a seeded random order
  compare(probs_a, probs_b, y)              where two sources disagree about being right
  all_wrong([probs, ...], y)                images every source gets wrong
  top5(probs_row, class_names)              the five most probable classes of one image

The predicted class is `argmax` (the first of tied maxima, as NumPy breaks ties), everywhere, so that
`top_k_accuracy(probs, y, 1)` equals the plain accuracy even for vote distributions with ties.
Bad input a user can cause (shapes, labels out of range, an unknown sort) raises `UserError`.
"""

from typing import Any

import numpy as np

from workbench.ensemble.calibration import check_labels, check_probs
from workbench.errors import UserError, choose

SORTS = ("confident", "true_low", "random")


def _inputs(probs, y, name: str = "probs"):
    probs = check_probs(probs, name)
    return probs, check_labels(y, probs.shape[0], probs.shape[1])


def predictions(probs) -> np.ndarray:
    """The predicted class of each image (arg-max; the lowest class index among ties), int64 [N]."""
    return np.asarray(probs).argmax(axis=1).astype(np.int64, copy=False)


def confusion_matrix(y_true, y_pred, num_classes: int) -> np.ndarray:
    """[K, K] int64 counts: entry [t, p] is how many images of true class t were predicted as p."""
    k = int(num_classes)
    if k < 1:
        raise UserError(f"num_classes must be at least 1; got {num_classes}")
    y_true = check_labels(y_true, len(np.asarray(y_true).reshape(-1)), k, "y_true")
    y_pred = check_labels(y_pred, len(y_true), k, "y_pred")
    return np.bincount(y_true * k + y_pred, minlength=k * k).reshape(k, k).astype(np.int64, copy=False)


def class_accuracy(y_true, y_pred, num_classes: int) -> np.ndarray:
    """float64 [K]: the share of each true class's images predicted right (NaN for a class with none).
    The one per-class accuracy: the Runs tab's bars and `per_class`'s accuracy column are this figure."""
    matrix = confusion_matrix(y_true, y_pred, num_classes)
    counts = matrix.sum(axis=1)
    return np.where(counts > 0, np.diag(matrix) / np.maximum(counts, 1), np.nan)


def per_class(y_true, probs, class_names=None) -> list:
    """One row per class c, in class order:

    `class` (index), `name` (when `class_names` is given), `count` (images whose true class is c),
    `correct`, `errors` (= count - correct), `predicted` (images predicted as c), `precision`
    (correct / predicted), `recall` (correct / count) and `accuracy` (the class's accuracy, the share of
    its images classified correctly: the same figure as recall, named as the table shows it).
    A ratio with a zero denominator is None (no image of that class, or none predicted as it).
    """
    probs, y_true = _inputs(probs, y_true)
    k = probs.shape[1]
    if class_names is not None and len(class_names) != k:
        raise UserError(f"{len(class_names)} class names for predictions over {k} classes")
    matrix = confusion_matrix(y_true, predictions(probs), k)
    counts, predicted, correct = matrix.sum(axis=1), matrix.sum(axis=0), np.diag(matrix)
    rows = []
    for c in range(k):
        recall = float(correct[c] / counts[c]) if counts[c] else None
        row: dict[str, Any] = {"class": c}
        if class_names is not None:
            row["name"] = str(class_names[c])
        row.update(
            count=int(counts[c]),
            correct=int(correct[c]),
            errors=int(counts[c] - correct[c]),
            predicted=int(predicted[c]),
            precision=float(correct[c] / predicted[c]) if predicted[c] else None,
            recall=recall,
            accuracy=recall,
        )
        rows.append(row)
    return rows


def _true_rank(probs: np.ndarray, y: np.ndarray) -> np.ndarray:
    """0-based rank of the true class when classes are ordered by probability, ties by class index
    (the order `argmax` uses), so rank 0 means "predicted"."""
    true_p = probs[np.arange(len(y)), y][:, None]
    classes = np.arange(probs.shape[1])[None, :]
    ahead = (probs > true_p) | ((probs == true_p) & (classes < y[:, None]))
    return ahead.sum(axis=1)


def top_k_accuracy(probs, y, k: int) -> float:
    """Share of images whose true class is among the `k` most probable (k >= K gives 1.0)."""
    probs, y = _inputs(probs, y)
    if int(k) != k or k < 1:
        raise UserError(f"k must be a whole number >= 1; got {k!r}")
    return float(np.mean(_true_rank(probs, y) < int(k)))


def _class_filter(value, k: int, what: str):
    if value is None:
        return None
    if int(value) != value or not 0 <= int(value) < k:
        raise UserError(f"{what} must be a class index in [0, {k - 1}]; got {value!r}")
    return int(value)


def misclassified(
    probs, y, *, true_class=None, predicted_class=None, sort: str = "confident", seed: int = 0
) -> np.ndarray:
    """Indices (int64) of the images the predictions get wrong.

    Filters: `true_class` keeps a confusion-matrix row, `predicted_class` a column, both one cell
    (a diagonal cell holds no errors: empty result). Sorts:
      "confident"  confidently wrong first: highest probability of the (wrong) predicted class first
      "true_low"   lowest probability of the true class first
      "random"     a shuffle seeded by `seed` (the same seed gives the same order)
    Ties keep image order (stable sorts).
    """
    probs, y = _inputs(probs, y)
    choose("sort", sort, SORTS)
    k = probs.shape[1]
    true_class = _class_filter(true_class, k, "true_class")
    predicted_class = _class_filter(predicted_class, k, "predicted_class")
    pred = predictions(probs)
    keep = pred != y
    if true_class is not None:
        keep &= y == true_class
    if predicted_class is not None:
        keep &= pred == predicted_class
    return _order(np.flatnonzero(keep).astype(np.int64), probs, y, sort, seed)


def ordered(indices, probs, y, *, sort: str = "confident", seed: int = 0) -> np.ndarray:
    """`indices` (int64) in `misclassified`'s `sort` order by the source whose `probs` they are ordered by:
    "confident" highest probability of its predicted class first, "true_low" lowest probability of the true
    class first, "random" a shuffle seeded by `seed`. Ties keep the given order (stable sorts)."""
    probs, y = _inputs(probs, y)
    choose("sort", sort, SORTS)
    idx = np.asarray(indices, dtype=np.int64).reshape(-1)
    if len(idx) and (idx.min() < 0 or idx.max() >= len(y)):
        raise UserError(f"image indices must be in [0, {len(y) - 1}]")
    return _order(idx, probs, y, sort, seed)


def _order(idx: np.ndarray, probs: np.ndarray, y: np.ndarray, sort: str, seed: int) -> np.ndarray:
    if sort == "confident":
        return idx[np.argsort(-probs[idx].max(axis=1), kind="stable")]
    if sort == "true_low":
        return idx[np.argsort(probs[idx, y[idx]], kind="stable")]
    return np.random.default_rng(seed).permutation(idx)


def compare(probs_a, probs_b, y) -> dict:
    """Index arrays (int64, ascending) of `a_right_b_wrong`, `b_right_a_wrong`, `both_wrong` and
    `both_right` for two sources' predictions on the same images."""
    probs_a, y = _inputs(probs_a, y, "probs_a")
    probs_b = check_probs(probs_b, "probs_b")
    if probs_b.shape != probs_a.shape:
        raise UserError(
            f"the two sources' predictions have shapes {probs_a.shape} and {probs_b.shape}; "
            "compare sources on the same split of the same dataset"
        )
    right_a, right_b = predictions(probs_a) == y, predictions(probs_b) == y
    return {
        "a_right_b_wrong": np.flatnonzero(right_a & ~right_b),
        "b_right_a_wrong": np.flatnonzero(right_b & ~right_a),
        "both_wrong": np.flatnonzero(~right_a & ~right_b),
        "both_right": np.flatnonzero(right_a & right_b),
    }


def all_wrong(list_of_probs, y) -> np.ndarray:
    """Indices (int64, ascending) of the images every source in `list_of_probs` gets wrong."""
    list_of_probs = list(list_of_probs)
    if not list_of_probs:
        raise UserError("choose at least one source to find the images every source gets wrong")
    first, y = _inputs(list_of_probs[0], y, "probs[0]")
    wrong = predictions(first) != y
    for i, probs in enumerate(list_of_probs[1:], 1):
        probs = check_probs(probs, f"probs[{i}]")
        if probs.shape != first.shape:
            raise UserError(
                f"source {i} has predictions of shape {probs.shape}, source 0 {first.shape}; "
                "all sources must be on the same split of the same dataset"
            )
        wrong &= predictions(probs) != y
    return np.flatnonzero(wrong)


def top5(probs_row, class_names, k: int = 5) -> list:
    """The `k` (default 5, at most K) most probable classes of one image as (name, probability),
    most probable first, ties by class index."""
    row = np.asarray(probs_row, dtype=np.float64).reshape(-1)
    if len(class_names) != len(row):
        raise UserError(f"{len(class_names)} class names for a prediction over {len(row)} classes")
    order = np.argsort(-row, kind="stable")[: max(0, int(k))]
    return [(str(class_names[c]), float(row[c])) for c in order]
