"""Near-duplicates between splits: each test image's nearest training image by cosine similarity of their
penultimate-layer features, and a run's accuracy on the test images that have none (as ciFAIR reports it:
Barz & Denzler 2020, "Do we train on test data?").

    match = nearest(test_features, train_features)          # Match: .index [N], .similarity [N]
    pairs = duplicate_pairs(match, threshold=0.95)          # test indices, most similar first
    clean = duplicate_free_accuracy(predicted, labels, match.similarity >= 0.95)

Exact search: the features are L2-normalised and the [N, M] similarity matrix is computed in row chunks of
the query (one float32 matrix product each, BLAS's), keeping only each row's maximum, so memory stays at
`chunk x M` floats whatever N is. 10,000 x 50,000 is 5e8 dot products of a few hundred numbers: seconds on
a CPU (bench/data_quality_features.py measures it), which an approximate index would not beat by enough to
be worth a dependency and a recall below 1 (faiss' exact IndexFlatIP runs the same product).
"""

from dataclasses import dataclass

import numpy as np

from workbench.errors import UserError

CHUNK = 1024  # query rows per matrix product: 1,024 x 50,000 float32 = 200 MB at most
DEFAULT_THRESHOLD = 0.95  # cosine similarity; the README says how it was chosen on CIFAR-10


@dataclass(frozen=True)
class Match:
    index: np.ndarray  # int64 [N]: the nearest base (training) row of each query (test) row
    similarity: np.ndarray  # float32 [N]: its cosine similarity, in [-1, 1]


def normalise(features) -> np.ndarray:
    """float32 rows scaled to unit length (an all-zero row stays zero: similarity 0 to everything)."""
    x = np.asarray(features, np.float32)
    if x.ndim != 2:
        raise UserError(f"features must be a matrix [images, dimensions]; got shape {list(x.shape)}")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)


def nearest(query, base, *, chunk: int = CHUNK) -> Match:
    """Each query row's most cosine-similar base row (the lowest index among ties), exactly."""
    q, b = normalise(query), normalise(base)
    if q.shape[1] != b.shape[1]:
        raise UserError(f"query features have {q.shape[1]} dimensions, base features {b.shape[1]}: use one model")
    if not len(b):
        raise UserError("no base (training) images to compare with")
    index = np.empty(len(q), np.int64)
    similarity = np.empty(len(q), np.float32)
    bt = np.ascontiguousarray(b.T)
    for start in range(0, len(q), max(1, int(chunk))):
        scores = q[start : start + chunk] @ bt
        best = scores.argmax(axis=1)
        index[start : start + len(best)] = best
        similarity[start : start + len(best)] = scores[np.arange(len(best)), best]
    return Match(index, np.clip(similarity, -1.0, 1.0))


def check_threshold(threshold) -> float:
    try:
        value = float(threshold)
    except (TypeError, ValueError):
        raise UserError(f"threshold {threshold!r} is not a number; give a cosine similarity such as 0.95") from None
    if not -1.0 <= value <= 1.0:
        raise UserError(f"threshold {value} is outside [-1, 1]; a cosine similarity such as 0.95 is expected")
    return value


def duplicate_pairs(match: Match, threshold: float) -> np.ndarray:
    """int64 indices of the query images whose nearest base image is at least `threshold` similar, most
    similar first (ties by index)."""
    threshold = check_threshold(threshold)
    found = np.flatnonzero(match.similarity >= threshold)
    return found[np.lexsort((found, -match.similarity[found]))].astype(np.int64)


def duplicate_free_accuracy(predicted, labels, duplicate) -> dict:
    """Accuracy on all images and on those not marked `duplicate` (bool [N]): `full`, `clean` (None when
    every image is a duplicate), `images`, `clean_images`, `duplicates`, `duplicates_right` (how many of the
    duplicates the model gets right: the images that lift the full figure)."""
    predicted, labels = np.asarray(predicted).reshape(-1), np.asarray(labels).reshape(-1)
    duplicate = np.asarray(duplicate, bool).reshape(-1)
    if not len(predicted) == len(labels) == len(duplicate):
        raise UserError(
            f"{len(predicted)} predictions, {len(labels)} labels and {len(duplicate)} duplicate flags: "
            "they must describe the same images"
        )
    right = predicted == labels
    clean = ~duplicate
    return {
        "full": float(right.mean()) if len(right) else None,
        "clean": float(right[clean].mean()) if clean.any() else None,
        "images": len(right),
        "clean_images": int(clean.sum()),
        "duplicates": int(duplicate.sum()),
        "duplicates_right": int(right[duplicate].sum()),
    }


def similarity_histogram(match: Match, bins: int = 50) -> tuple:
    """(counts, edges) of the nearest-neighbour similarities: where a threshold falls among them."""
    return np.histogram(match.similarity, bins=bins, range=(float(min(0.0, match.similarity.min())), 1.0))
