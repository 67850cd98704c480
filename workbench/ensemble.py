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
import itertools
import math
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import minimize

from workbench.calibration import (EPS, _check_temperature, check_labels, check_logits, check_probs,
                                   expected_calibration_error, fit_temperature, softmax)
from workbench.errors import UserError, choose

SPACES = ("prob", "logit")
VOTE_TIE_BREAKS = ("lowest", "confidence")
GRID_TIE_BREAKS = ("earliest", "uniform")
METRICS = ("nll", "accuracy")
MAX_COMBINATIONS = 2_000_000   # grid_search refuses larger grids
LOG_FLOOR = np.finfo(np.float64).tiny  # probabilities are clipped here before log in "logit" space
_CHUNK_ELEMENTS = 1 << 18      # grid_search: combinations x margins per block (2 MB of float64)


# --- inputs -----------------------------------------------------------------------------------------

def member_probs(logits_list, temperatures=None, dtype=np.float64) -> np.ndarray:
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
            raise UserError(f"member {i} has logits of shape {z.shape} but member 0 has {members[0].shape}; "
                            f"all members must be predictions on the same images and classes")
    if temperatures is None:
        temperatures = [1.0] * len(members)
    temperatures = list(np.atleast_1d(np.asarray(temperatures, dtype=object)))
    if len(temperatures) != len(members):
        raise UserError(f"got {len(temperatures)} temperatures for {len(members)} members; "
                        f"pass one positive temperature per member (or None for all 1)")
    temperatures = [_check_temperature(t, f"temperature of member {i}") for i, t in enumerate(temperatures)]
    return np.stack([softmax(np.asarray(z, np.float64), t) for z, t in zip(members, temperatures)]).astype(
        dtype, copy=False)


def fit_member_temperatures(val_logits_list, y_val) -> list:
    """One temperature per member, each fitted on validation logits (calibration.fit_temperature)."""
    if not isinstance(val_logits_list, (list, tuple)) or not val_logits_list:
        raise UserError("val_logits_list must be a non-empty list of [images, classes] arrays, one per member")
    return [fit_temperature(z, y_val) for z in val_logits_list]


def _probs3(probs, name="probs") -> np.ndarray:
    return check_probs(probs, name, ndim=3)


def _probs_labels(probs, y, name="val_probs", y_name="y_val"):
    probs = _probs3(probs, name)
    return probs, check_labels(y, probs.shape[1], probs.shape[2], y_name)


def _weights(weights, m: int) -> np.ndarray:
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


def _scores(probs: np.ndarray, space: str) -> np.ndarray:
    """What is averaged: probabilities, or log-probabilities (clipped at the smallest float64)."""
    return probs if space == "prob" else np.log(np.maximum(probs, LOG_FLOOR))


# --- voting and averaging ---------------------------------------------------------------------------

def _vote_counts(probs: np.ndarray) -> np.ndarray:
    """Votes per class [N, K] (int64): each member votes for its arg-max (lowest class on ties)."""
    m, n, k = probs.shape
    cells = np.arange(n) * k + probs.argmax(axis=2)                 # [M, N] flat (image, class) index
    return np.bincount(cells.ravel(), minlength=n * k).reshape(n, k)


def vote_distribution(probs) -> np.ndarray:
    """Fraction of members whose arg-max is each class, [N, K] float64 (rows sum to 1).

    Useful as pseudo-probabilities of a hard vote for NLL/ECE (unvoted classes get 0, so NLL is
    dominated by the clipping floor wherever the vote is wrong).
    """
    probs = _probs3(probs)
    return _vote_counts(probs) / probs.shape[0]


def vote(probs, tie_break: str = "lowest") -> np.ndarray:
    """Hard majority vote over members' arg-max, predicted labels [N] (int64).

    tie_break="lowest": the lowest class among those with the most votes, which is exactly
    `scipy.stats.mode(labels, axis=0)`. tie_break="confidence": among the tied classes, the one with
    the largest probability summed over *all* members (sum_m probs[m, n, k]); still tied -> lowest.
    """
    tie_break = choose("vote tie-break", tie_break, VOTE_TIE_BREAKS)
    probs = _probs3(probs)
    counts = _vote_counts(probs)
    if tie_break == "lowest":
        return counts.argmax(axis=1)
    tied = counts == counts.max(axis=1, keepdims=True)
    return np.where(tied, probs.sum(axis=0), -np.inf).argmax(axis=1)


def weighted_mean(probs, weights=None, space: str = "prob") -> np.ndarray:
    """Soft vote: combined probabilities [N, K] (float64). Weights (default uniform) are normalised to
    sum 1; all-zero, negative or a wrong count is refused.

    space="prob": sum_m w_m p_m (arithmetic mean of probabilities).
    space="logit": softmax(sum_m w_m log p_m), a weighted geometric mean renormalised per image; the
    same as averaging the members' logits with these weights (log p differs from logits only by a
    per-image constant, which softmax removes). Zero probabilities are clipped to the smallest float64.
    """
    space = choose("space", space, SPACES)
    probs = _probs3(probs)
    w = _weights(np.ones(probs.shape[0]) if weights is None else weights, probs.shape[0])
    combined = np.tensordot(w, _scores(probs, space), axes=1)
    return combined if space == "prob" else softmax(combined)


# --- grid search -------------------------------------------------------------------------------------

@dataclass
class GridSearchResult:
    """`weights`: the best combination as found on the grid (raw values, e.g. [0.3, 1.0, 0.7]; use
    `normalized_weights` or pass them to weighted_mean, which normalises). `val_accuracy`: its accuracy
    on the split it was given. `grid`: {"weights": [C, M] every evaluated combination in enumeration
    order, "accuracy": [C]}. `top`: up to `top` best rows as dicts (weights, normalized_weights,
    accuracy, correct), best first, proportional duplicates (e.g. [1,1,1] and [.5,.5,.5]) listed once.
    `to_dict()` leaves out `grid` (C rows) for storing as JSON."""
    weights: np.ndarray
    normalized_weights: np.ndarray
    val_accuracy: float
    grid: dict
    top: list
    combinations: int
    skipped: int = 0          # fixed variant: combinations where the fixed member's weight was negative
    tie_break: str = "earliest"
    space: str = "prob"

    def to_dict(self) -> dict:
        return {"weights": self.weights.tolist(), "normalized_weights": self.normalized_weights.tolist(),
                "val_accuracy": self.val_accuracy, "combinations": self.combinations,
                "skipped": self.skipped, "tie_break": self.tie_break, "space": self.space, "top": self.top}


def _grid_steps(step, max_weight) -> int:
    """Number of steps n with n * step == max_weight; refuses a step that does not divide it."""
    try:
        step, max_weight = float(step), float(max_weight)
    except (TypeError, ValueError):
        raise UserError(f"step and max_weight must be numbers; got {step!r}, {max_weight!r}") from None
    if not (math.isfinite(step) and step > 0 and math.isfinite(max_weight) and max_weight > 0):
        raise UserError(f"step and max_weight must be positive numbers; got step={step}, max_weight={max_weight}")
    ratio = max_weight / step
    n = round(ratio)
    if n < 1 or abs(ratio - n) > 1e-9 * max(1.0, ratio):
        raise UserError(f"step {step:g} does not divide max_weight {max_weight:g} into whole steps; choose "
                        f"a step with max_weight / step a whole number (for max_weight 1: 0.5, 0.25, 0.2, "
                        f"0.1, 0.05, ...)")
    return n


def _fixed(fixed, m: int):
    """(member index, total) of the `fixed={"member": i, "total": t}` option, or None."""
    if fixed is None:
        return None
    if not isinstance(fixed, dict) or set(fixed) - {"member", "total"} or "member" not in fixed:
        raise UserError(f"fixed must be a dict like {{'member': 2, 'total': 2.0}} (member i's weight = total "
                        f"minus the sum of the others); got {fixed!r}")
    member = fixed["member"]
    if isinstance(member, bool) or not isinstance(member, (int, np.integer)) or not 0 <= member < m:
        raise UserError(f"fixed member must be a member index from 0 to {m - 1}; got {member!r}")
    if m < 2:
        raise UserError("fixed needs at least 2 members (one is computed from the others)")
    try:
        total = float(fixed.get("total", 1.0))
    except (TypeError, ValueError):
        raise UserError(f"fixed total must be a positive number; got {fixed.get('total')!r}") from None
    if not (math.isfinite(total) and total > 0):
        raise UserError(f"fixed total must be a positive number; got {fixed.get('total')!r}")
    return int(member), total


def _combination_count(m: int, n: int, fixed) -> int:
    count = (n + 1) ** (m - (fixed is not None))
    if count > MAX_COMBINATIONS:
        free = m - (fixed is not None)
        raise UserError(f"the grid has {count:,} weight combinations ({n + 1} values for each of {free} free "
                        f"weights); at most {MAX_COMBINATIONS:,} are allowed: use a larger step or fewer "
                        f"members, or use optimize_weights or greedy_selection instead, which scale to any "
                        f"number of members")
    return count


def grid_weights(m: int, step: float = 0.1, max_weight: float = 1.0, fixed=None):
    """The [C, M] weight matrix grid_search evaluates and the number of skipped rows.

    Rows come in `itertools.product(values, repeat=free)` order (first member slowest), values
    i * step for i = 0..n; the all-zero row is left out. With `fixed`, member i's weight is
    total - sum(others), and rows where that is negative (below -1e-9) are left out and counted.
    """
    n = _grid_steps(step, max_weight)
    fixed = _fixed(fixed, m)
    _combination_count(m, n, fixed)
    free = m - (fixed is not None)
    units = np.indices((n + 1,) * free, dtype=np.int64).reshape(free, -1).T   # product order
    values = units * float(step)
    skipped = 0
    if fixed is not None:
        member, total = fixed
        t_units = total / float(step)
        if abs(t_units - round(t_units)) <= 1e-9 * max(1.0, t_units):   # exact in units of step
            last = (round(t_units) - units.sum(axis=1)) * float(step)
        else:
            last = total - values.sum(axis=1)
        keep = last >= -1e-9
        skipped = int(np.count_nonzero(~keep))
        values = np.insert(values[keep], member, np.maximum(last[keep], 0.0), axis=1)
    keep = values.any(axis=1)
    return np.ascontiguousarray(values[keep]), skipped


def _prepare_margins(scores: np.ndarray, y: np.ndarray):
    """Reduce the accuracy of sum_m w_m scores_m (w >= 0, not all 0) to sign tests on margins.

    Image n is predicted correctly iff for every class k != y_n the margin sum_m w_m d[m, n, k],
    d = scores[:, n, y_n] - scores[:, n, k], is > 0 (k < y_n: arg-max takes the lowest class on a tie)
    or >= 0 (k > y_n). A class whose d has the required sign for *every* member can never win, and one
    beating y_n for every member always wins, whatever the weights; such pairs need no evaluation, so
    only 'contested' (image, class) pairs remain (on real ensembles most images are unanimous).

    Returns (images always right, D [M, Q], thresholds [Q], widths): the Q contested pairs as columns,
    grouped in slots: slot j holds the j-th contested class of the widths[j] images having more than j
    of them, images in the same order in every slot (most contested first), so slot j's columns line up
    with the first widths[j] columns of slot 0. A pair is satisfied iff w @ D[:, q] > thresholds[q]:
    0 for '> 0', and minus the smallest subnormal for '>= 0' (no float lies between it and 0, and
    -0.0 == 0.0, so the test is exact).
    """
    m, n, k = scores.shape
    idx = np.arange(n)
    d = scores[:, idx, y][:, :, None] - scores                      # [M, N, K]
    classes = np.arange(k)[None, :]
    above = classes > y[:, None]                                    # k > y_n: ties go to y_n
    below = classes < y[:, None]
    pos, nonneg = np.all(d > 0, axis=0), np.all(d >= 0, axis=0)
    neg, nonpos = np.all(d < 0, axis=0), np.all(d <= 0, axis=0)
    harmless = pos | (above & nonneg)
    harmless[idx, y] = True
    winning = neg | (below & nonpos)
    winning[idx, y] = False
    always_wrong = winning.any(axis=1)
    contested = ~harmless & ~always_wrong[:, None]
    n_contested = contested.sum(axis=1)
    always_right = int(np.count_nonzero(~always_wrong & (n_contested == 0)))
    rows = np.flatnonzero(n_contested > 0)
    rows = rows[np.argsort(-n_contested[rows], kind="stable")]      # most contested classes first
    if rows.size == 0:
        return always_right, np.zeros((m, 0)), np.zeros(0), []
    order = np.argsort(~contested[rows], axis=1, kind="stable")     # contested classes first, per row
    counts = n_contested[rows]
    columns, thresholds, widths = [], [], []
    for j in range(int(counts.max())):
        r = rows[counts > j]
        cls = order[: len(r), j]
        columns.append(d[:, r, cls])
        thresholds.append(np.where(cls > y[r], -np.finfo(np.float64).smallest_subnormal, 0.0))
        widths.append(len(r))
    return (always_right, np.ascontiguousarray(np.concatenate(columns, axis=1)), np.concatenate(thresholds),
            widths)


def _count_correct(weights: np.ndarray, scores: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Correct predictions [C] of argmax_k sum_m weights[c, m] scores[m, n, k], for all rows at once.

    Vectorised over combinations: per block of rows, one product [c, M] x [M, Q] of all contested
    margins (see `_prepare_margins`), one comparison with the thresholds, an AND of each image's slots
    and a count; Python loops only over blocks and slots. Agrees with the plain arg-max except where
    two classes' scores differ by float rounding only.

    The product is `np.einsum` (NumPy's own single-threaded loop), not `@`: for these thin products
    OpenBLAS' `@` took 0.35 s for the benchmark's 161,050 combinations on 2 idle cores but 1-5 s when
    the cores were shared with other work (its threads wait on each other); einsum took 0.6-0.85 s
    either way. Scoring every combination with a full [c, N, K] sum and arg-max instead (no pruning)
    was slower than the classic Python loop (63 s vs 37 s).
    """
    always_right, margins, thresholds, widths = _prepare_margins(scores, y)
    correct = np.full(len(weights), always_right, dtype=np.int64)
    if not widths:
        return correct
    weights = np.ascontiguousarray(weights, dtype=np.float64)
    starts = np.cumsum([0] + widths)
    block = max(1, _CHUNK_ELEMENTS // margins.shape[1])
    for start in range(0, len(weights), block):
        ok = np.einsum("cm,mq->cq", weights[start:start + block], margins) > thresholds
        first = ok[:, :widths[0]]
        for j in range(1, len(widths)):
            first[:, :widths[j]] &= ok[:, starts[j]:starts[j + 1]]
        correct[start:start + block] += np.count_nonzero(first, axis=1)
    return correct


def grid_search(val_probs, y_val, step: float = 0.1, max_weight: float = 1.0, fixed=None,
                space: str = "prob", top: int = 10, tie_break: str = "earliest") -> GridSearchResult:
    """Accuracy of every weight combination on {0, step, ..., max_weight}^M (all-zero left out).

    Evaluated vectorised (no Python loop per combination, see `_count_correct`), in blocks to bound
    memory. `fixed={"member": i, "total": 2.0}` reproduces classic scripts' `w3 = 2 - w1 - w2`:
    member i's weight is total minus the sum of the others, combinations where it would be negative
    are skipped (counted in `skipped`). space="logit" scores the weighted geometric mean (see
    weighted_mean); scaling all weights does not change any prediction in either space.

    Ties in accuracy: tie_break="earliest" (default) keeps the first best combination in enumeration
    order (itertools.product, first member slowest), exactly what a classic nested loop with
    `if acc > best` keeps; tie_break="uniform" keeps the tied combination whose normalised weights are
    closest (L2) to equal weights, then the earliest. Refuses grids above MAX_COMBINATIONS (2 million).
    Fit on validation predictions; report test accuracy of the chosen weights separately.
    """
    space = choose("space", space, SPACES)
    tie_break = choose("grid tie-break", tie_break, GRID_TIE_BREAKS)
    if isinstance(top, bool) or not isinstance(top, (int, np.integer)) or top < 1:
        raise UserError(f"top must be a whole number >= 1; got {top!r}")
    probs, y = _probs_labels(val_probs, y_val)
    m = probs.shape[0]
    weights, skipped = grid_weights(m, step, max_weight, fixed)
    if len(weights) == 0:
        raise UserError("no weight combination is left on this grid (fixed total below every combination?); "
                        "raise fixed['total'] or lower step")
    correct = _count_correct(weights, _scores(probs, space), y)
    n = len(y)
    normalized = weights / weights.sum(axis=1, keepdims=True)
    if tie_break == "earliest":
        order = np.lexsort((np.arange(len(weights)), -correct))
    else:
        spread = np.round(np.sum((normalized - 1.0 / m) ** 2, axis=1), 12)
        order = np.lexsort((np.arange(len(weights)), spread, -correct))
    best = int(order[0])
    rows, seen = [], set()
    for i in order:
        key = tuple(np.round(normalized[i], 9))
        if key in seen:
            continue
        seen.add(key)
        rows.append({"weights": weights[i].tolist(), "normalized_weights": normalized[i].tolist(),
                     "accuracy": float(correct[i] / n), "correct": int(correct[i])})
        if len(rows) == top:
            break
    return GridSearchResult(weights=weights[best].copy(), normalized_weights=normalized[best].copy(),
                            val_accuracy=float(correct[best] / n),
                            grid={"weights": weights, "accuracy": correct / n}, top=rows,
                            combinations=len(weights), skipped=skipped, tie_break=tie_break, space=space)


def grid_heatmap(result: GridSearchResult, i: int = 0, j: int = 1) -> dict:
    """Accuracy over two members' weights for a heatmap: {"rows": weight values of member i,
    "columns": weight values of member j, "accuracy": [rows, columns]}, each cell the best accuracy over
    all other weights with w_i, w_j at those values (the exact grid value with two free weights, e.g.
    three members with `fixed`); NaN where the grid has no such pair (the all-zero corner, skipped rows).
    """
    weights, acc = result.grid["weights"], result.grid["accuracy"]
    m = weights.shape[1]
    for name, k in (("i", i), ("j", j)):
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 0 <= k < m:
            raise UserError(f"heatmap member {name} must be a member index from 0 to {m - 1}; got {k!r}")
    if i == j:
        raise UserError("heatmap needs two different members")
    rows, ri = np.unique(np.round(weights[:, i], 9), return_inverse=True)
    cols, ci = np.unique(np.round(weights[:, j], 9), return_inverse=True)
    grid = np.full((len(rows), len(cols)), -np.inf)
    np.maximum.at(grid, (ri, ci), acc)
    grid[np.isinf(grid)] = np.nan
    return {"rows": rows, "columns": cols, "accuracy": grid}


def classic_nested_loops(val_probs, y_val, step: float = 0.1, max_weight: float = 1.0, fixed=None,
                         space: str = "prob") -> dict:
    """The grid search the way classic ensemble scripts write it: one Python iteration per combination,
    `for w1 in ...: for w2 in ...: ...` (itertools.product for M members), combined = sum w_m p_m,
    accuracy of its arg-max, keep it `if acc > best_acc`. With `fixed`, member i's weight is
    `total - sum(others)` and negative ones are skipped. Reference for tests and the benchmark's
    baseline; returns {"weights", "val_accuracy", "evaluated"}.
    """
    space = choose("space", space, SPACES)
    probs, y = _probs_labels(val_probs, y_val)
    m = probs.shape[0]
    n = _grid_steps(step, max_weight)
    fixed = _fixed(fixed, m)
    _combination_count(m, n, fixed)
    scores = _scores(probs, space)
    values = [i * float(step) for i in range(n + 1)]
    best_acc, best_w, evaluated = -1.0, None, 0
    for free in itertools.product(values, repeat=m - (fixed is not None)):
        w = list(free)
        if fixed is not None:
            member, total = fixed
            last = total - sum(free)
            if last < -1e-9:
                continue
            w.insert(member, max(last, 0.0))
        if not any(w):
            continue
        combined = w[0] * scores[0]
        for j in range(1, m):
            combined = combined + w[j] * scores[j]
        acc = float(np.mean(np.argmax(combined, axis=1) == y))
        evaluated += 1
        if acc > best_acc:
            best_acc, best_w = acc, w
    return {"weights": np.asarray(best_w), "val_accuracy": best_acc, "evaluated": evaluated}


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
        return {"weights": self.weights.tolist(), "selected": self.selected, "metric": self.metric,
                "trajectory": {k: v.tolist() for k, v in self.trajectory.items()},
                "best_step": self.best_step, "best_weights": self.best_weights.tolist()}


def greedy_selection(val_probs, y_val, size: int = 50, metric: str = "nll") -> GreedyResult:
    """Forward selection with replacement (Caruana et al. 2004) on the mean of probabilities.

    Start empty; at each of `size` steps add the member (possibly again) whose addition gives the
    running average the best metric (lowest NLL, or highest accuracy), ties to the lowest member index.
    Step 1 therefore picks the best single member. Because a member must be added at every step, the
    metric can get slightly worse late in the run; `best_step`/`best_weights` give the best prefix.
    """
    metric = choose("metric", metric, METRICS)
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or not 1 <= size <= 100_000:
        raise UserError(f"size must be a whole number from 1 to 100000; got {size!r}")
    probs, y = _probs_labels(val_probs, y_val)
    m, n, _ = probs.shape
    idx = np.arange(n)
    p_true = probs[:, idx, y]                       # [M, N]
    total = np.zeros(probs.shape[1:])               # running sum of selected members' probs [N, K]
    total_true = np.zeros(n)
    counts = np.zeros(m, dtype=np.int64)
    selected, accs, nlls = [], [], []
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
    accs, nlls = np.asarray(accs), np.asarray(nlls)
    best = int(np.argmin(nlls) if metric == "nll" else np.argmax(accs)) + 1
    best_counts = np.bincount(selected[:best], minlength=m)
    return GreedyResult(weights=counts / size, selected=selected, trajectory={"accuracy": accs, "nll": nlls},
                        counts=counts, metric=metric, best_step=best, best_weights=best_counts / best)


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
        return {"weights": self.weights.tolist(), "val_nll": self.val_nll, "val_accuracy": self.val_accuracy,
                "uniform_nll": self.uniform_nll, "space": self.space, "success": self.success,
                "message": self.message, "iterations": self.iterations, "method": self.method}


def _nll_and_grad(space: str, scores: np.ndarray, y: np.ndarray):
    """f(w) = validation NLL of the ensemble with weights w (treated as already on the simplex), and df/dw."""
    m, n, _ = scores.shape
    idx = np.arange(n)
    s_true = scores[:, idx, y]                          # [M, N]
    if space == "prob":
        def f(w):
            q = w @ s_true
            qc = np.maximum(q, EPS)
            return float(-np.mean(np.log(qc))), -(s_true * ((q >= EPS) / qc)).mean(axis=1)
        return f

    def f(w):                                            # scores are log-probabilities here
        z = np.tensordot(w, scores, axes=1)              # [N, K]
        zmax = z.max(axis=1, keepdims=True)
        e = np.exp(z - zmax)
        se = e.sum(axis=1, keepdims=True)
        lse = (zmax + np.log(se))[:, 0]
        q = e / se
        value = float(np.mean(lse - z[idx, y]))
        grad = np.einsum("nk,mnk->m", q, scores) / n - s_true.mean(axis=1)
        return value, grad
    return f


def optimize_weights(val_probs, y_val, space: str = "prob") -> WeightOptimum:
    """Weights on the simplex (w >= 0, sum 1) minimising the validation NLL of weighted_mean(.., space).

    Solved with `scipy.optimize.minimize(method="SLSQP")`, bounds [0, 1] per weight and the equality
    constraint sum w = 1, analytic gradients, started from equal weights. SLSQP (rather than a softmax
    parametrisation) so that useless members get exactly 0. In both spaces the NLL is convex in w (prob:
    -log of a linear function; logit: log-sum-exp of a linear function minus a linear term), so the
    optimum is global. The result is clipped to >= 0 and renormalised; if the solver ends worse than
    equal weights (it should not), equal weights are returned with success=False.
    """
    space = choose("space", space, SPACES)
    probs, y = _probs_labels(val_probs, y_val)
    m = probs.shape[0]
    f = _nll_and_grad(space, _scores(probs, space), y)
    uniform = np.full(m, 1.0 / m)
    uniform_nll = f(uniform)[0]
    if m == 1:
        w, success, message, iterations = uniform, True, "one member", 0
    else:
        result = minimize(f, uniform, jac=True, method="SLSQP", bounds=[(0.0, 1.0)] * m,
                          constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1.0,
                                        "jac": lambda w: np.ones_like(w)}],
                          options={"ftol": 1e-12, "maxiter": 1000})
        w = np.clip(np.asarray(result.x, dtype=np.float64), 0.0, None)
        w = w / w.sum() if w.sum() > 0 else uniform
        success, message, iterations = bool(result.success), str(result.message), int(result.nit)
        if f(w)[0] > uniform_nll:
            w, success, message = uniform, False, f"solver ended above equal weights: {message}"
    combined = weighted_mean(probs, w, space)
    return WeightOptimum(weights=w, val_nll=f(w)[0], val_accuracy=float(np.mean(combined.argmax(1) == y)),
                         uniform_nll=uniform_nll, space=space, success=success, message=message,
                         iterations=iterations)


# --- diagnostics ------------------------------------------------------------------------------------------

def agreement_matrix(probs) -> np.ndarray:
    """[M, M] fraction of images on which members i and j have the same arg-max (diagonal 1, symmetric)."""
    labels = _probs3(probs).argmax(axis=2)                          # [M, N]
    return np.stack([np.mean(labels[i] == labels, axis=1) for i in range(len(labels))])


def evaluate(probs, y, bins: int = 15) -> dict:
    """{"accuracy", "nll", "ece"} of combined probabilities [N, K] (e.g. weighted_mean's output, or
    vote_distribution for a hard vote). Report test numbers with it; never choose with them."""
    probs = check_probs(probs)
    y = check_labels(y, *probs.shape)
    p = probs[np.arange(len(y)), y]
    return {"accuracy": float(np.mean(probs.argmax(axis=1) == y)),
            "nll": float(-np.mean(np.log(np.clip(p, EPS, 1.0)))),
            "ece": expected_calibration_error(probs, y, bins)}
