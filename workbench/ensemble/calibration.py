"""Probabilities from stored logits, temperature scaling and calibration metrics (NumPy/SciPy only).

Everything here works on arrays that were saved after training: no model is re-run.

  softmax(logits, T), log_softmax(logits, T)   numerically stable (max subtracted), computed in float64;
                                               the result is float32 for float16/float32 input, float64
                                               otherwise (float64 and integer input)
  fit_temperature(val_logits, y_val)           the T > 0 minimising validation NLL of softmax(logits / T)
                                               (Guo et al. 2017), found by `scipy.optimize.minimize_scalar`
                                               on log T, bounded to T in [0.05, 20]
  expected_calibration_error(probs, y, bins)   equal-width confidence bins, sum_b (n_b / N) |acc_b - conf_b|
  reliability_curve(probs, y, bins)            per-bin centres, accuracy, confidence and counts (a diagram)
  nll(probs, y), accuracy(probs_or_labels, y)

Fit temperatures on the validation split only; apply them to test predictions and *report* test numbers.

Errors a user can cause (wrong shapes, labels out of range, logits passed where probabilities are
expected, a non-positive temperature) raise `workbench.errors.UserError` saying what is allowed.
"""

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.special
from numpy.typing import ArrayLike, DTypeLike
from scipy.optimize import minimize_scalar

from workbench.errors import UserError

EPS = 1e-12  # probabilities are clipped to [EPS, 1] before taking logs in `nll`
T_BOUNDS = (0.05, 20.0)  # search interval of `fit_temperature`
PROB_TOLERANCE = 1e-3  # how far a row of probabilities may sum from 1 (float32 softmax, rounding)


# --- input checks (shared with workbench.ensemble.combine) ------------------------------------------------


def _out_dtype(dtype: DTypeLike) -> np.dtype:
    """float32 for float16/float32 input, float64 for everything else."""
    return np.dtype(np.float32) if dtype in (np.float16, np.float32) else np.dtype(np.float64)


def _numeric(array: ArrayLike, name: str) -> np.ndarray:
    try:
        array = np.asarray(array)
    except Exception as exc:  # ragged lists and the like
        raise UserError(f"{name} must be a numeric array: {exc}") from None
    if array.dtype == object or not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise UserError(f"{name} must be a numeric array; got dtype {array.dtype}")
    if array.dtype.kind == "c":
        raise UserError(f"{name} must be real numbers; got complex dtype {array.dtype}")
    return array


def check_logits(logits: ArrayLike, name: str = "logits") -> np.ndarray:
    """Logits as an array [N, K] (K >= 2) with finite values."""
    logits = _numeric(logits, name)
    if logits.ndim != 2 or logits.shape[0] < 1 or logits.shape[1] < 2:
        raise UserError(
            f"{name} must have shape [images, classes] with at least 1 image and 2 classes; got shape {logits.shape}"
        )
    if not np.all(np.isfinite(logits)):
        raise UserError(f"{name} contain NaN or infinite values; only finite logits are allowed")
    return logits


def check_probs(probs: ArrayLike, name: str = "probs", ndim: int = 2) -> np.ndarray:
    """Probabilities as float64 of shape [N, K] (ndim=2) or [M, N, K] (ndim=3); rows must sum to 1."""
    probs = _numeric(probs, name)
    shape_words = "[images, classes]" if ndim == 2 else "[members, images, classes]"
    if probs.ndim != ndim:
        hint = ""
        if ndim == 3 and probs.ndim == 2:
            hint = " (one member's predictions? stack members with ensemble.member_probs or np.stack)"
        elif ndim == 2 and probs.ndim == 3:
            hint = " (several members? combine them first, e.g. ensemble.weighted_mean)"
        raise UserError(f"{name} must have shape {shape_words}; got shape {probs.shape}{hint}")
    if min(probs.shape) < 1 or probs.shape[-1] < 2:
        raise UserError(f"{name} must have at least 1 member/image and 2 classes; got shape {probs.shape}")
    probs = np.asarray(probs, dtype=np.float64)
    k = probs.shape[-1]
    sums = np.dot(probs.reshape(-1, k), np.ones(k))  # row sums: ~7x faster than sum(axis=-1) over 10
    # columns, and np.dot ~25% faster than @ for this matrix-vector product
    # values >= 0 and rows summing to 1 also bound every value by 1 (+ the tolerances); NaN fails both
    if not (probs.min() >= -1e-6 and sums.min() >= 1 - PROB_TOLERANCE and sums.max() <= 1 + PROB_TOLERANCE):
        if not np.all(np.isfinite(probs)):
            raise UserError(f"{name} contain NaN or infinite values; only finite probabilities are allowed")
        sums = probs.sum(axis=-1)
        raise UserError(
            f"{name} are not probabilities (each row must be >= 0 and sum to 1, found values in "
            f"[{probs.min():.3g}, {probs.max():.3g}] and row sums in [{sums.min():.4g}, "
            f"{sums.max():.4g}]); if these are logits, convert them with calibration.softmax "
            f"or ensemble.member_probs"
        )
    return probs


def check_labels(y: ArrayLike, n: int, k: int, name: str = "y") -> np.ndarray:
    """Integer class labels [N] in [0, K) as int64."""
    y = _numeric(y, name)
    if y.ndim == 2 and y.shape == (n, k):
        raise UserError(
            f"{name} must be integer class indices of shape [{n}]; got shape {y.shape} "
            f"(one-hot labels? pass y.argmax(1))"
        )
    if y.ndim != 1:
        raise UserError(f"{name} must be integer class indices of shape [images]; got shape {y.shape}")
    if len(y) != n:
        raise UserError(
            f"{name} has {len(y)} labels but the predictions cover {n} images; "
            f"labels and predictions must be for the same images, in the same order"
        )
    if y.dtype.kind == "f" and (not np.all(np.isfinite(y)) or not np.all(y == np.round(y))):
        raise UserError(f"{name} must be integer class indices; got non-integer values")
    y = y.astype(np.int64, copy=False)
    if n and (y.min() < 0 or y.max() >= k):
        raise UserError(
            f"{name} must be class indices in [0, {k - 1}] for {k} classes; got values in [{y.min()}, {y.max()}]"
        )
    return y


def check_temperature(temperature: Any, name: str = "temperature") -> float:
    try:
        t = float(temperature)
    except (TypeError, ValueError):
        raise UserError(f"{name} must be a positive number; got {temperature!r}") from None
    if not (math.isfinite(t) and t > 0):
        raise UserError(f"{name} must be a positive finite number; got {temperature!r}")
    return t


# --- softmax (scipy.special's, stable: the max is subtracted; our part is the checks and the dtype) --


def log_softmax(logits: ArrayLike, temperature: float = 1.0) -> np.ndarray:
    """log softmax(logits / temperature) over the last axis, stable, float64 inside (dtype: module doc)."""
    return _scaled(scipy.special.log_softmax, logits, temperature)


def softmax(logits: ArrayLike, temperature: float = 1.0) -> np.ndarray:
    """softmax(logits / temperature) over the last axis, stable, float64 inside (dtype: module doc)."""
    return _scaled(scipy.special.softmax, logits, temperature)


def _scaled(function: Callable[..., np.ndarray], logits: ArrayLike, temperature: float) -> np.ndarray:
    logits = _numeric(logits, "logits")
    z = function(np.asarray(logits, dtype=np.float64) / check_temperature(temperature), axis=-1)
    return z.astype(_out_dtype(logits.dtype), copy=False)


# --- metrics ----------------------------------------------------------------------------------------


def nll(probs: ArrayLike, y: ArrayLike) -> float:
    """Mean negative log-likelihood of the true classes, probabilities clipped to [1e-12, 1]."""
    probs = check_probs(probs)
    y = check_labels(y, *probs.shape)
    p = probs[np.arange(len(y)), y]
    return float(-np.mean(np.log(np.clip(p, EPS, 1.0))))


def accuracy(probs_or_labels: ArrayLike, y: ArrayLike) -> float:
    """Fraction correct: arg-max of probabilities/scores [N, K] (lowest class on ties), or labels [N]."""
    pred = _numeric(probs_or_labels, "predictions")
    if pred.ndim == 2:
        if pred.shape[1] < 1:
            raise UserError(f"predictions must have at least one class; got shape {pred.shape}")
        pred = pred.argmax(axis=1)
    elif pred.ndim != 1:
        raise UserError(
            f"predictions must be probabilities [images, classes] or labels [images]; got shape {pred.shape}"
        )
    y = _numeric(y, "y")
    if y.shape != pred.shape:
        raise UserError(
            f"y has shape {y.shape} but there are {len(pred)} predictions; pass one integer label per image"
        )
    if len(y) == 0:
        raise UserError("accuracy needs at least one image")
    return float(np.mean(pred == y))


def _bins(bins: Any) -> int:
    if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or not 1 <= bins <= 1000:
        raise UserError(f"bins must be a whole number from 1 to 1000; got {bins!r}")
    return int(bins)


def reliability_curve(probs: ArrayLike, y: ArrayLike, bins: int = 15) -> dict[str, Any]:
    """Per confidence bin: what a reliability diagram plots.

    Confidence = max probability, prediction = its arg-max. Bins are equal-width on [0, 1]; bin b holds
    edges[b] < confidence <= edges[b + 1] (confidence 0 goes to bin 0). Returns numpy arrays `edges`
    [bins + 1], `centers`, `accuracy` and `confidence` (NaN for empty bins), `counts` [bins] (int),
    and the scalar `ece` = sum_b counts_b / N * |accuracy_b - confidence_b| over non-empty bins.
    """
    probs = check_probs(probs)
    y = check_labels(y, *probs.shape)
    bins = _bins(bins)
    conf = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == y).astype(np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.searchsorted(edges[1:-1], conf, side="left")  # number of inner edges < conf
    counts = np.bincount(index, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        acc = np.bincount(index, weights=correct, minlength=bins) / counts
        mean_conf = np.bincount(index, weights=conf, minlength=bins) / counts
    filled = counts > 0
    ece = float(np.sum(counts[filled] / len(y) * np.abs(acc[filled] - mean_conf[filled])))
    return {
        "edges": edges,
        "centers": (edges[:-1] + edges[1:]) / 2,
        "accuracy": acc,
        "confidence": mean_conf,
        "counts": counts,
        "ece": ece,
    }


def expected_calibration_error(probs: ArrayLike, y: ArrayLike, bins: int = 15) -> float:
    """ECE with `bins` equal-width confidence bins (Naeini et al. 2015; Guo et al. 2017): see
    `reliability_curve` for the binning."""
    return reliability_curve(probs, y, bins)["ece"]


# --- temperature scaling ---------------------------------------------------------------------------


def fit_temperature(val_logits: ArrayLike, y_val: ArrayLike, bounds: tuple[float, float] = T_BOUNDS) -> float:
    """The temperature T minimising the validation NLL of softmax(val_logits / T).

    One scalar over all classes (Guo et al. 2017), so arg-max and accuracy do not change. Searched on
    log T with `scipy.optimize.minimize_scalar(method="bounded")` over `bounds` (default [0.05, 20]);
    an optimum at a bound comes back as that bound. T > 1 softens an over-confident model. Fit on the
    validation split, then apply the same T to test logits.
    """
    logits = check_logits(val_logits, "val_logits")
    y = check_labels(y_val, logits.shape[0], logits.shape[1], name="y_val")
    lo, hi = (check_temperature(b, "temperature bound") for b in bounds)
    if not lo < hi:
        raise UserError(f"temperature bounds must be (low, high) with 0 < low < high; got {bounds!r}")
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=1, keepdims=True)  # shift-invariant, keeps exp() in range for T >= lo
    z_true = z[np.arange(len(y)), y]

    def objective(log_t: float) -> float:
        s = z / math.exp(log_t)
        m = s.max(axis=1)
        lse = m + np.log(np.exp(s - m[:, None]).sum(axis=1))
        return float(np.mean(lse - z_true / math.exp(log_t)))

    result = minimize_scalar(objective, bounds=(math.log(lo), math.log(hi)), method="bounded", options={"xatol": 1e-6})
    return float(min(max(math.exp(result.x), lo), hi))
