"""Ensembles of stored predictions: voting, weighted averages, weight search (NumPy/SciPy only).

No model is ever re-run: members are arrays saved after training. Their predictions are stacked as
`probs` [M, N, K] (M members, N images, K classes), built from logits with `member_probs`.

  member_probs(logits_list, temperatures)   softmax of each member's logits [N, K] (optionally / T_m)
  fit_member_temperatures(val_logits_list, y_val)   one temperature per member (calibration.fit_temperature)
  vote(probs, tie_break), vote_distribution(probs)   hard majority vote / fraction of votes per class
  weighted_mean(probs, weights, space)      soft voting: weighted mean of probabilities ("prob") or of
                                            log-probabilities renormalised by softmax ("logit", a
                                            weighted geometric mean)
  grid_search(val_probs, y_val, ...)        every weight combination on {0, step, ..., max_weight}^M,
                                            scored by validation accuracy, vectorised
  grid_heatmap(result, i, j)                best accuracy over two members' weights (a heatmap)
  classic_nested_loops(val_probs, y_val, ...)   the same search the way classic scripts write it (one
                                            Python iteration per combination): reference and baseline
  greedy_selection(val_probs, y_val, ...)   Caruana et al. 2004 forward selection with replacement
  optimize_weights(val_probs, y_val, space) simplex weights minimising validation NLL (SLSQP)
  agreement_matrix(probs), evaluate(probs, y)

Fitting discipline: nothing here knows which split it is given. Every function that *chooses* something
(grid_search, greedy_selection, optimize_weights, fit_member_temperatures) must be called by the UI on
the validation split; the chosen weights/temperatures are then applied to test predictions with
`member_probs` / `weighted_mean` and the test numbers are only *reported* (never used to choose).

Errors a user can cause raise `workbench.errors.UserError` saying what is allowed.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, DTypeLike
from scipy.optimize import minimize

from workbench.ensemble.calibration import (
    EPS,
    check_labels,
    check_logits,
    check_probs,
    check_temperature,
    expected_calibration_error,
    fit_temperature,
    softmax,
)
from workbench.ensemble.grid import (  # noqa: F401 (API)
    GRID_TIE_BREAKS,
    MAX_COMBINATIONS,
    GridSearchResult,
    classic_nested_loops,
    grid_heatmap,
    grid_search,
    grid_weights,
)
from workbench.ensemble.inputs import (  # noqa: F401
    LOG_FLOOR,
    SPACES,
    member_scores,
    normalized_weights,
    probs_and_labels,
    stacked_probs,
)
from workbench.errors import UserError, choose

VOTE_TIE_BREAKS = ("lowest", "confidence")
METRICS = ("nll", "accuracy")


# --- inputs -----------------------------------------------------------------------------------------


def member_probs(
    logits_list: Sequence[ArrayLike] | np.ndarray, temperatures: ArrayLike | None = None, dtype: DTypeLike = np.float64
) -> np.ndarray:
    """Stack members' softmax(logits_m / T_m) into probs [M, N, K] (float64 by default).

    `logits_list`: a list of [N, K] arrays (or one [M, N, K] array), all for the same images and
    classes in the same order. `temperatures`: None (all 1) or one positive number per member.
    """
    if isinstance(logits_list, np.ndarray) and logits_list.ndim == 3:
        logits_list = list(logits_list)
    if isinstance(logits_list, np.ndarray) or not isinstance(logits_list, (list, tuple)) or not logits_list:
        raise UserError("logits_list must be a non-empty list of [images, classes] arrays, one per member")
    members = [check_logits(z, f"logits of member {i}") for i, z in enumerate(logits_list)]
    for i, z in enumerate(members[1:], 1):
        if z.shape != members[0].shape:
            raise UserError(
                f"member {i} has logits of shape {z.shape} but member 0 has {members[0].shape}; "
                f"all members must be predictions on the same images and classes"
            )
    if temperatures is None:
        temperatures = [1.0] * len(members)
    temperatures = list(np.atleast_1d(np.asarray(temperatures, dtype=object)))
    if len(temperatures) != len(members):
        raise UserError(
            f"got {len(temperatures)} temperatures for {len(members)} members; "
            f"pass one positive temperature per member (or None for all 1)"
        )
    temperatures = [check_temperature(t, f"temperature of member {i}") for i, t in enumerate(temperatures)]
    return np.stack([softmax(np.asarray(z, np.float64), t) for z, t in zip(members, temperatures)]).astype(
        dtype, copy=False
    )


def fit_member_temperatures(val_logits_list: Sequence[ArrayLike], y_val: ArrayLike) -> list[float]:
    """One temperature per member, each fitted on validation logits (calibration.fit_temperature)."""
    if not isinstance(val_logits_list, (list, tuple)) or not val_logits_list:
        raise UserError("val_logits_list must be a non-empty list of [images, classes] arrays, one per member")
    return [fit_temperature(z, y_val) for z in val_logits_list]


# --- voting and averaging ---------------------------------------------------------------------------


def _vote_counts(probs: np.ndarray) -> np.ndarray:
    """Votes per class [N, K] (int64): each member votes for its arg-max (lowest class on ties)."""
    _m, n, k = probs.shape
    cells = np.arange(n) * k + probs.argmax(axis=2)  # [M, N] flat (image, class) index
    return np.bincount(cells.ravel(), minlength=n * k).reshape(n, k)


def vote_distribution(probs: ArrayLike) -> np.ndarray:
    """Fraction of members whose arg-max is each class, [N, K] float64 (rows sum to 1).

    Useful as pseudo-probabilities of a hard vote for NLL/ECE (unvoted classes get 0, so NLL is
    dominated by the clipping floor wherever the vote is wrong).
    """
    probs = stacked_probs(probs)
    return _vote_counts(probs) / probs.shape[0]


def vote(probs: ArrayLike, tie_break: str = "lowest") -> np.ndarray:
    """Hard majority vote over members' arg-max, predicted labels [N] (int64).

    tie_break="lowest": the lowest class among those with the most votes, which is exactly
    `scipy.stats.mode(labels, axis=0)`. tie_break="confidence": among the tied classes, the one with
    the largest probability summed over *all* members (sum_m probs[m, n, k]); still tied -> lowest.
    """
    tie_break = choose("vote tie-break", tie_break, VOTE_TIE_BREAKS)
    probs = stacked_probs(probs)
    counts = _vote_counts(probs)
    if tie_break == "lowest":
        return counts.argmax(axis=1)
    tied = counts == counts.max(axis=1, keepdims=True)
    return np.where(tied, probs.sum(axis=0), -np.inf).argmax(axis=1)


def weighted_mean(
    probs: ArrayLike, weights: ArrayLike | None = None, space: str = "prob", *, checked: bool = False
) -> np.ndarray:
    """Soft vote: combined probabilities [N, K] (float64). Weights (default uniform) are normalised to
    sum 1; all-zero, negative or a wrong count is refused. `checked=True`: `probs` is a float64 [M, N, K]
    array that `member_probs` made (rows known to sum to 1), so the scan that checks them is skipped: it
    was half of an Ensemble slider move, which recombines the same cached members every time.

    space="prob": sum_m w_m p_m (arithmetic mean of probabilities).
    space="logit": softmax(sum_m w_m log p_m), a weighted geometric mean renormalised per image; the
    same as averaging the members' logits with these weights (log p differs from logits only by a
    per-image constant, which softmax removes). Zero probabilities are clipped to the smallest float64.
    """
    space = choose("space", space, SPACES)
    probs = np.asarray(probs) if checked else stacked_probs(probs)  # asarray: the same array, typed
    w = normalized_weights(np.ones(probs.shape[0]) if weights is None else weights, probs.shape[0])
    # A matrix-vector product over the flattened images: np.tensordot copied the [M, N, K] stack first.
    scores = member_scores(probs, space)
    combined = (w @ scores.reshape(len(w), -1)).reshape(scores.shape[1:])
    return combined if space == "prob" else softmax(combined)


# --- greedy selection (Caruana et al. 2004) --------------------------------------------------------------


@dataclass
class GreedyResult:
    """`weights` = selection counts / size; `selected` = member index chosen at each step;
    `trajectory` = {"accuracy": [size], "nll": [size]} of the running average after each step;
    `best_step` = number of selections (1-based) at which the chosen metric was best (earliest), with
    `best_weights` its counts normalised: Caruana et al.'s 'best prefix' of the selection."""

    weights: np.ndarray
    selected: list
    trajectory: dict
    counts: np.ndarray
    metric: str
    best_step: int
    best_weights: np.ndarray = field(repr=False)

    def to_dict(self) -> dict:
        return {
            "weights": self.weights.tolist(),
            "selected": self.selected,
            "metric": self.metric,
            "trajectory": {k: v.tolist() for k, v in self.trajectory.items()},
            "best_step": self.best_step,
            "best_weights": self.best_weights.tolist(),
        }


def greedy_selection(val_probs: ArrayLike, y_val: ArrayLike, size: int = 50, metric: str = "nll") -> GreedyResult:
    """Forward selection with replacement (Caruana et al. 2004) on the mean of probabilities.

    Start empty; at each of `size` steps add the member (possibly again) whose addition gives the
    running average the best metric (lowest NLL, or highest accuracy), ties to the lowest member index.
    Step 1 therefore picks the best single member. Because a member must be added at every step, the
    metric can get slightly worse late in the run; `best_step`/`best_weights` give the best prefix.
    """
    metric = choose("metric", metric, METRICS)
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or not 1 <= size <= 100_000:
        raise UserError(f"size must be a whole number from 1 to 100000; got {size!r}")
    probs, y = probs_and_labels(val_probs, y_val)
    m, n, _ = probs.shape
    idx = np.arange(n)
    p_true = probs[:, idx, y]  # [M, N]
    total = np.zeros(probs.shape[1:])  # running sum of selected members' probs [N, K]
    total_true = np.zeros(n)
    counts = np.zeros(m, dtype=np.int64)
    selected: list[int] = []
    accs: list[float] = []
    nlls: list[float] = []
    for t in range(1, size + 1):
        if metric == "nll":
            cand = -np.mean(np.log(np.clip((total_true + p_true) / t, EPS, 1.0)), axis=1)
            choice = int(np.argmin(cand))
        else:
            cand = np.mean((total[None] + probs).argmax(axis=2) == y, axis=1)
            choice = int(np.argmax(cand))
        total += probs[choice]
        total_true += p_true[choice]
        counts[choice] += 1
        selected.append(choice)
        accs.append(float(np.mean(total.argmax(axis=1) == y)))
        nlls.append(float(-np.mean(np.log(np.clip(total_true / t, EPS, 1.0)))))
    acc_curve, nll_curve = np.asarray(accs), np.asarray(nlls)
    best = int(np.argmin(nll_curve) if metric == "nll" else np.argmax(acc_curve)) + 1
    best_counts = np.bincount(selected[:best], minlength=m)
    return GreedyResult(
        weights=counts / size,
        selected=selected,
        trajectory={"accuracy": acc_curve, "nll": nll_curve},
        counts=counts,
        metric=metric,
        best_step=best,
        best_weights=best_counts / best,
    )


# --- NLL-optimal weights ------------------------------------------------------------------------------


@dataclass
class WeightOptimum:
    """`weights` on the simplex; `val_nll`/`val_accuracy` of weighted_mean(val_probs, weights, space);
    `uniform_nll` the NLL of equal weights for comparison; SciPy's `success`, `message`, `iterations`."""

    weights: np.ndarray
    val_nll: float
    val_accuracy: float
    uniform_nll: float
    space: str
    success: bool
    message: str
    iterations: int
    method: str = "SLSQP"

    def to_dict(self) -> dict:
        return {
            "weights": self.weights.tolist(),
            "val_nll": self.val_nll,
            "val_accuracy": self.val_accuracy,
            "uniform_nll": self.uniform_nll,
            "space": self.space,
            "success": self.success,
            "message": self.message,
            "iterations": self.iterations,
            "method": self.method,
        }


def _nll_and_grad(space: str, scores: np.ndarray, y: np.ndarray) -> Callable[[np.ndarray], tuple[float, np.ndarray]]:
    """f(w) = validation NLL of the ensemble with weights w (treated as already on the simplex), and df/dw."""
    _m, n, _ = scores.shape
    idx = np.arange(n)
    s_true = scores[:, idx, y]  # [M, N]
    if space == "prob":

        def f_prob(w: np.ndarray) -> tuple[float, np.ndarray]:
            q = w @ s_true
            qc = np.maximum(q, EPS)
            return float(-np.mean(np.log(qc))), -(s_true * ((q >= EPS) / qc)).mean(axis=1)

        return f_prob

    def f(w: np.ndarray) -> tuple[float, np.ndarray]:  # scores are log-probabilities here
        z = np.tensordot(w, scores, axes=1)  # [N, K]
        zmax = z.max(axis=1, keepdims=True)
        e = np.exp(z - zmax)
        se = e.sum(axis=1, keepdims=True)
        lse = (zmax + np.log(se))[:, 0]
        q = e / se
        value = float(np.mean(lse - z[idx, y]))
        grad = np.einsum("nk,mnk->m", q, scores) / n - s_true.mean(axis=1)
        return value, grad

    return f


def optimize_weights(val_probs: ArrayLike, y_val: ArrayLike, space: str = "prob") -> WeightOptimum:
    """Weights on the simplex (w >= 0, sum 1) minimising the validation NLL of weighted_mean(.., space).

    Solved with `scipy.optimize.minimize(method="SLSQP")`, bounds [0, 1] per weight and the equality
    constraint sum w = 1, analytic gradients, started from equal weights. SLSQP (rather than a softmax
    parametrisation) so that useless members get exactly 0. In both spaces the NLL is convex in w (prob:
    -log of a linear function; logit: log-sum-exp of a linear function minus a linear term), so the
    optimum is global. The result is clipped to >= 0 and renormalised; if the solver ends worse than
    equal weights (it should not), equal weights are returned with success=False.
    """
    space = choose("space", space, SPACES)
    probs, y = probs_and_labels(val_probs, y_val)
    m = probs.shape[0]
    f = _nll_and_grad(space, member_scores(probs, space), y)
    uniform = np.full(m, 1.0 / m)
    uniform_nll = f(uniform)[0]
    if m == 1:
        w, success, message, iterations = uniform, True, "one member", 0
    else:
        result = minimize(
            f,
            uniform,
            jac=True,
            method="SLSQP",
            bounds=[(0.0, 1.0)] * m,
            constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1.0, "jac": lambda w: np.ones_like(w)}],
            options={"ftol": 1e-12, "maxiter": 1000},
        )
        w = np.clip(np.asarray(result.x, dtype=np.float64), 0.0, None)
        w = w / w.sum() if w.sum() > 0 else uniform
        success, message, iterations = bool(result.success), str(result.message), int(result.nit)
        if f(w)[0] > uniform_nll:
            w, success, message = uniform, False, f"solver ended above equal weights: {message}"
    combined = weighted_mean(probs, w, space)
    return WeightOptimum(
        weights=w,
        val_nll=f(w)[0],
        val_accuracy=float(np.mean(combined.argmax(1) == y)),
        uniform_nll=uniform_nll,
        space=space,
        success=success,
        message=message,
        iterations=iterations,
    )


# --- diagnostics ------------------------------------------------------------------------------------------


def agreement_matrix(probs: ArrayLike) -> np.ndarray:
    """[M, M] fraction of images on which members i and j have the same arg-max (diagonal 1, symmetric)."""
    labels = stacked_probs(probs).argmax(axis=2)  # [M, N]
    return np.stack([np.mean(labels[i] == labels, axis=1) for i in range(len(labels))])


def evaluate(probs: ArrayLike, y: ArrayLike, bins: int = 15) -> dict[str, float]:
    """{"accuracy", "nll", "ece"} of combined probabilities [N, K] (e.g. weighted_mean's output, or
    vote_distribution for a hard vote). Report test numbers with it; never choose with them."""
    probs = check_probs(probs)
    y = check_labels(y, *probs.shape)
    p = probs[np.arange(len(y)), y]
    return {
        "accuracy": float(np.mean(probs.argmax(axis=1) == y)),
        "nll": float(-np.mean(np.log(np.clip(p, EPS, 1.0)))),
        "ece": expected_calibration_error(probs, y, bins),
    }
