"""Checked inputs shared by the ensemble modules: stacked member probabilities, labels, weights, and
the scores that are averaged (probabilities, or log-probabilities for a weighted geometric mean)."""

import numpy as np
from numpy.typing import ArrayLike

from workbench.ensemble.calibration import check_labels, check_probs
from workbench.errors import UserError

SPACES = ("prob", "logit")
LOG_FLOOR = np.finfo(np.float64).tiny  # probabilities are clipped here before log in "logit" space


def stacked_probs(probs: ArrayLike, name: str = "probs") -> np.ndarray:
    """Members' probabilities [M, N, K] as float64, rows summing to 1."""
    return check_probs(probs, name, ndim=3)


def probs_and_labels(
    probs: ArrayLike, y: ArrayLike, name: str = "val_probs", y_name: str = "y_val"
) -> tuple[np.ndarray, np.ndarray]:
    probs = stacked_probs(probs, name)
    return probs, check_labels(y, probs.shape[1], probs.shape[2], y_name)


def normalized_weights(weights: ArrayLike, m: int) -> np.ndarray:
    """Non-negative finite weights, one per member, not all zero, normalised to sum 1."""
    try:
        w = np.asarray(weights, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise UserError(f"weights must be {m} non-negative numbers, one per member; got {weights!r}") from None
    if w.size != m:
        raise UserError(f"got {w.size} weights for {m} members; pass one non-negative weight per member")
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise UserError(f"weights must be finite and >= 0; got {w.tolist()}")
    total = w.sum()
    if total <= 0:
        raise UserError("weights are all zero; give at least one member a positive weight")
    return w / total


def member_scores(probs: np.ndarray, space: str) -> np.ndarray:
    """What is averaged: probabilities, or log-probabilities (clipped at the smallest float64)."""
    return probs if space == "prob" else np.log(np.maximum(probs, LOG_FLOOR))
