"""Out-of-fold predictions for the training split (issue 24): the K runs of a cross-validation request,
stitched into one matrix.

    groups = cv_groups(store)                      # {name: [runs tagged cv:NAME]}
    oof = stitch(store, "resnet-cv")               # logits [n_train, K], labels, positions, the runs

A cross-validation request (`workbench crossval --folds K`, or `[[crossval]]` in a preset) queues K runs of one
recipe tagged `cv:NAME`, run k with the dataset options `cv_folds=K,cv_fold=k`: it trains without fold k of the
training split (`workbench.data.split.fold_positions`) and stores its logits for that fold as split `oof`. The
fold partition depends only on the training split's size and the split seed, so the parts go back in place
without loading the data.
"""

from dataclasses import dataclass

import numpy as np

from workbench.constants import RunStatus
from workbench.data.reviewed import cv_fold_of
from workbench.data.split import OOF, fold_positions
from workbench.errors import UserError

TAG = "cv:"


@dataclass
class OutOfFold:
    name: str
    logits: np.ndarray  # float32 [n, K]: row i is predicted by the run that did not train on position i
    labels: np.ndarray  # int64 [n]: the given labels of the training split
    runs: list  # the K runs, by fold
    flipped: np.ndarray | None = None  # the mirrored view's logits, when every run stored them


def cv_name(run: dict) -> str | None:
    """The cross-validation request a run belongs to (its `cv:NAME` tag), or None."""
    return next((t[len(TAG) :] for t in run.get("tags") or [] if str(t).startswith(TAG)), None)


def cv_groups(store) -> dict:
    """{request name: its runs (by fold)} of every cross-validation request in the store."""
    groups: dict[str, list] = {}
    for run in store.list_runs():
        name = cv_name(run)
        if name is not None and cv_fold_of(run["spec"].get("dataset_options") or {})[0]:
            groups.setdefault(name, []).append(run)
    return {
        name: sorted(runs, key=lambda r: cv_fold_of(r["spec"]["dataset_options"])[1]) for name, runs in groups.items()
    }


def complete_groups(store) -> list:
    """The names of requests whose K runs all completed (usable as a source)."""
    return [
        name
        for name, runs in cv_groups(store).items()
        if len(runs) == cv_fold_of(runs[0]["spec"]["dataset_options"])[0]
        and all(r["status"] == RunStatus.COMPLETED for r in runs)
    ]


def stitch(store, name: str) -> OutOfFold:
    """The request's out-of-fold logits for the whole training split; UserError naming what is missing."""
    groups = cv_groups(store)
    if name not in groups:
        raise UserError(
            f"no cross-validation request {name!r}; requests: {', '.join(sorted(groups)) or 'none yet'} "
            "(queue one with `workbench crossval --folds 5 ...`)"
        )
    runs = groups[name]
    folds = cv_fold_of(runs[0]["spec"]["dataset_options"])[0]
    by_fold = {cv_fold_of(r["spec"]["dataset_options"])[1]: r for r in runs}
    missing = [k for k in range(folds) if k not in by_fold or by_fold[k]["status"] != RunStatus.COMPLETED]
    if missing or len(runs) != folds:
        states = ", ".join(f"fold {k}: {by_fold[k]['status'] if k in by_fold else 'no run'}" for k in range(folds))
        raise UserError(
            f"cross-validation {name!r} is not complete ({states}); its out-of-fold matrix needs all {folds} folds"
        )
    ordered = [by_fold[k] for k in range(folds)]
    parts = [store.load_logits(r["id"], OOF) for r in ordered]
    n = sum(len(p) for p in parts)
    positions = fold_positions(n, folds, int(ordered[0]["spec"].get("split_seed") or 0))
    logits = np.zeros((n, parts[0].shape[1]), np.float32)
    labels = np.zeros(n, np.int64)
    for fold, (run, part) in enumerate(zip(ordered, parts)):
        if len(part) != len(positions[fold]):
            raise UserError(
                f"run {run['id']} (fold {fold} of {name!r}) stored {len(part)} held-out rows, not "
                f"{len(positions[fold])}: its runs were not trained on one training split"
            )
        logits[positions[fold]] = part
        labels[positions[fold]] = store.load_labels(run["id"], OOF)
    flipped = None
    if all(f"{OOF}_flip" in store.prediction_splits(r["id"]) for r in ordered):
        flipped = np.zeros_like(logits)
        for fold, run in enumerate(ordered):
            flipped[positions[fold]] = store.load_logits(run["id"], f"{OOF}_flip")
    return OutOfFold(name, logits, labels, ordered, flipped)
