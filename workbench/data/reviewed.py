"""Reviews of given labels applied to data (issue 24), and the dataset options that ask for it.

    identity = dataset_identity("cifar10", store.labels_hash(dataset.y_test))   # what reviews are keyed by
    labels, keep = reviewed_labels(y_test, store.reviews(identity, "test"))     # the reviewed test set

A review says of one image of a dataset's part (train or test) `label error`, `correct`, `unsure` or `relabel`
(with the new class). Training with the dataset option `reviews=exclude` drops the training images marked label
error or relabel; `reviews=relabel` trains the relabelled ones with their new class and drops those marked label
error only. The reviewed test set drops label errors and relabels the relabelled images. `correct` and `unsure`
change nothing.

Dataset options that are not the loader's (they say how a run uses the data, for every dataset): `reviews`
(exclude | relabel), and the cross-validation fold `cv_folds` / `cv_fold` (`workbench.data.split`).
"""

from collections.abc import Iterable

import numpy as np

from workbench.constants import REVIEW_USES, ReviewUse, Verdict
from workbench.errors import UserError, choose

DATA_OPTIONS = ("reviews", "cv_folds", "cv_fold")


def dataset_identity(name: str, test_labels_hash: str) -> str:
    """A dataset's identity for reviews: its name and its test labels' hash (stored with every run's test
    logits, so a run's reviews are found without loading its data). Equal for the same CIFAR copy however
    it is read (official archive, JPEG tree, Keras' cache)."""
    return f"{name}/{test_labels_hash[:12]}"


def loader_options(options: dict) -> dict:
    """The dataset options the loader takes (the synthetic generator's), without the data options."""
    return {k: v for k, v in (options or {}).items() if k not in DATA_OPTIONS}


def check_data_options(options: dict) -> None:
    """The data options' values (instant: no data loaded); UserError naming what is allowed."""
    options = options or {}
    if "reviews" in options:
        choose("reviews (dataset option)", str(options["reviews"]), REVIEW_USES)
    if "cv_folds" in options or "cv_fold" in options:
        try:
            folds, fold = int(options.get("cv_folds", 0)), int(options.get("cv_fold", -1))
        except (TypeError, ValueError):
            raise UserError("cv_folds and cv_fold must be whole numbers (e.g. cv_folds=5,cv_fold=0)") from None
        if folds < 2 or not 0 <= fold < folds:
            raise UserError(f"cross-validation needs cv_folds >= 2 and cv_fold in 0..cv_folds-1 (got {folds}, {fold})")


def cv_fold_of(options: dict) -> tuple[int, int]:
    """(folds, fold) of a cross-validation run's options; (0, 0) for an ordinary run."""
    options = options or {}
    return (int(options["cv_folds"]), int(options["cv_fold"])) if "cv_folds" in options else (0, 0)


def training_changes(rows: Iterable[dict], mode: str) -> tuple[np.ndarray, dict]:
    """(official training indices to drop, {index: new label}) for `reviews=mode` from the train part's reviews."""
    mode = choose("reviews", mode, REVIEW_USES)
    drop, relabel = [], {}
    for row in rows:
        if row["verdict"] == Verdict.LABEL_ERROR or (row["verdict"] == Verdict.RELABEL and mode == ReviewUse.EXCLUDE):
            drop.append(int(row["idx"]))
        elif row["verdict"] == Verdict.RELABEL:
            relabel[int(row["idx"])] = int(row["label"])
    return np.array(sorted(drop), np.int64), relabel


def reviewed_labels(labels: np.ndarray, rows: Iterable[dict]) -> tuple[np.ndarray, np.ndarray]:
    """(labels with relabelled images changed, mask of images kept: those not marked label error)."""
    labels = np.array(labels, np.int64, copy=True)
    keep = np.ones(len(labels), bool)
    for row in rows:
        idx = int(row["idx"])
        if not 0 <= idx < len(labels):
            continue  # refused when stored; only a changed dataset gets here, and its reviews do not apply
        if row["verdict"] == Verdict.LABEL_ERROR:
            keep[idx] = False
        elif row["verdict"] == Verdict.RELABEL:
            labels[idx] = int(row["label"])
    return labels, keep
