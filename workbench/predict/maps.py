"""A run's map of a split (its features in 2-D) and its near-duplicates between test and training images,
both computed from `workbench.predict.features` and cached beside the features in the run's folder.

    data = split_map(store, run_id, "test", models=models, cache=cache)        # MapData: coords, features...
    report = near_duplicates(store, run_id, models=models, cache=cache)        # DuplicateReport: match, ...

Caches: `map-<split>-<method>.npz` (the 2-D coordinates) and `nearest-test-train.npz` (each test image's
nearest training image and its similarity), each keyed by the checkpoint's time like the features.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from workbench.data import classes
from workbench.ensemble.calibration import softmax
from workbench.errors import UserError, choose
from workbench.inspect import duplicates, projection
from workbench.inspect.duplicates import Match
from workbench.inspect.projection import Projection
from workbench.predict import features as wf
from workbench.predict.models import ModelCache


@dataclass(eq=False)
class MapData:
    features: wf.SplitFeatures
    projection: Projection
    cached: bool

    @property
    def probs(self) -> np.ndarray:
        return softmax(self.features.logits).astype(np.float64)


@dataclass(eq=False)
class DuplicateReport:
    run_id: int
    match: Match  # test image i's nearest training image: match.index[i], match.similarity[i]
    test_labels: np.ndarray  # int64 [N test]
    train_labels: np.ndarray  # int64 [N train]
    test_predicted: np.ndarray  # int64 [N test]: the run's stored test predictions (plain logits)
    seconds: dict  # "train features", "test features", "nearest": seconds computing each (0: cached)
    class_names: list

    def label_mismatches(self, threshold: float) -> int:
        """How many pairs at or above `threshold` carry different labels."""
        pairs = self.pairs(threshold)
        return int(np.sum(self.test_labels[pairs] != self.train_labels[self.match.index[pairs]]))

    def pairs(self, threshold: float) -> np.ndarray:
        return duplicates.duplicate_pairs(self.match, threshold)

    def accuracy(self, threshold: float) -> dict:
        flagged = self.match.similarity >= duplicates.check_threshold(threshold)
        return duplicates.duplicate_free_accuracy(self.test_predicted, self.test_labels, flagged)


def _cached(path: Path, key: str, names: tuple) -> dict | None:
    try:
        with np.load(path, allow_pickle=False) as saved:
            return {n: saved[n] for n in names} if str(saved["key"]) == key else None
    except (OSError, ValueError, KeyError):
        return None


def _save(path: Path, key: str, **arrays) -> None:
    partial = path.with_name(path.name + ".partial.npz")
    np.savez(partial, key=np.array(key), **arrays)
    partial.replace(path)


def split_map(
    store,
    run_id: int,
    split: str,
    *,
    models: ModelCache,
    cache: dict,
    method: str = "auto",
    progress: Callable | None = None,
) -> MapData:
    """The run's features of `split` and their 2-D projection (`projection.project`'s `method`)."""
    found = wf.split_features(store, run_id, split, models=models, cache=cache, progress=progress)
    method = choose("map method", method, projection.METHODS)
    path = store.run_dir(run_id) / f"map-{found.split}-{method}.npz"
    key = f"{wf.cache_key(store, run_id)}:{method}:{projection.UMAP_LIMIT}:{projection.VERSION}"
    saved = _cached(path, key, ("coords", "method", "note"))
    if saved is not None:
        return MapData(found, Projection(saved["coords"], str(saved["method"]), str(saved["note"]), 0.0), True)
    projected = projection.project(found.features, method)
    _save(path, key, coords=projected.coords, method=np.array(projected.method), note=np.array(projected.note))
    return MapData(found, projected, False)


def test_predictions(store, run_id: int, fallback: wf.SplitFeatures) -> np.ndarray:
    """The run's predicted test classes from its stored plain test logits (what its test accuracy is
    computed from, without test-time augmentation), else from the features' own pass."""
    if "test" in store.prediction_splits(run_id):
        logits = store.load_logits(run_id, "test")
        if len(logits) == len(fallback.labels):
            return logits.argmax(axis=1).astype(np.int64)
    return fallback.predicted


def near_duplicates(
    store, run_id: int, *, models: ModelCache, cache: dict, progress: Callable | None = None
) -> DuplicateReport:
    """Each test image's nearest training image by the run's features, and what the run predicts."""
    test = wf.split_features(store, run_id, "test", models=models, cache=cache, progress=progress)
    train = wf.split_features(store, run_id, "train", models=models, cache=cache, progress=progress)
    if test.features.shape[1] != train.features.shape[1]:
        raise UserError("the test and training features differ in size; compute them again (the run changed)")
    path = store.run_dir(run_id) / "nearest-test-train.npz"
    key = f"{wf.cache_key(store, run_id)}:{len(test.labels)}x{len(train.labels)}"
    saved = _cached(path, key, ("index", "similarity", "seconds"))
    if saved is not None:
        match, seconds = Match(saved["index"], saved["similarity"]), 0.0
    else:
        started = time.perf_counter()
        match = duplicates.nearest(test.features, train.features)
        seconds = time.perf_counter() - started
        _save(path, key, index=match.index, similarity=match.similarity, seconds=np.array(seconds))
    return DuplicateReport(
        int(run_id),
        match,
        test.labels,
        train.labels,
        test_predictions(store, run_id, test),
        {"train features": train.seconds, "test features": test.seconds, "nearest": seconds},
        classes.class_names(store, store.get_run(int(run_id)), test.logits.shape[1]),
    )


def class_names(store, run_id: int, data: MapData) -> list:
    """The run's class names (`workbench.data.classes`), as many as its logits have columns."""
    return classes.class_names(store, store.get_run(int(run_id)), data.features.logits.shape[1])


def describe(run: dict, data: MapData) -> tuple:
    """(title, note) of the run's map: what it shows, and how it was projected (PCA said, and why)."""
    found, projected = data.features, data.projection
    title = (
        f"Run {run['id']} · {run['name']}: {wf.SPLIT_TEXT[found.split]} images, {len(found.labels):,} points "
        f"({'UMAP' if projected.method == 'umap' else 'PCA'} of the {found.features.shape[1]}-number features "
        f"entering its classifier layer '{found.layer}')"
    )
    note = projected.note or (
        "UMAP (cosine): near points are images the model sees alike; distances between clusters mean little"
        if projected.method == "umap"
        else "PCA: the two directions of largest variance"
    )
    return title, note
