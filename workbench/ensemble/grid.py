"""Grid search over ensemble weights, vectorised, and the classic nested-loop search it replaces.

  grid_search(val_probs, y_val, ...)   every weight combination on {0, step, ..., max_weight}^M (or the
                                       classic `w3 = total - w1 - w2` variant), scored by validation accuracy
  grid_weights(m, step, ...)           the combinations it evaluates, in itertools.product order
  grid_heatmap(result, i, j)           best accuracy over two members' weights (a heatmap)
  classic_nested_loops(...)            the same search as classic scripts write it: reference and baseline

Re-exported by `workbench.ensemble.combine`; see its docstring for the fitting discipline (choose on
validation, report test).
"""

import functools
import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from workbench.ensemble.inputs import SPACES, member_scores, probs_and_labels
from workbench.ensemble.margins import count_correct, surely_right, true_class
from workbench.errors import UserError, choose

GRID_TIE_BREAKS = ("earliest", "uniform")
MAX_COMBINATIONS = 2_000_000  # grid_search refuses larger grids


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
    skipped: int = 0  # fixed variant: combinations where the fixed member's weight was negative
    tie_break: str = "earliest"
    space: str = "prob"

    def to_dict(self) -> dict:
        return {
            "weights": self.weights.tolist(),
            "normalized_weights": self.normalized_weights.tolist(),
            "val_accuracy": self.val_accuracy,
            "combinations": self.combinations,
            "skipped": self.skipped,
            "tie_break": self.tie_break,
            "space": self.space,
            "top": self.top,
        }


def _grid_steps(step: Any, max_weight: Any) -> int:
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
        raise UserError(
            f"step {step:g} does not divide max_weight {max_weight:g} into whole steps; choose "
            f"a step with max_weight / step a whole number (for max_weight 1: 0.5, 0.25, 0.2, "
            f"0.1, 0.05, ...)"
        )
    return n


def _fixed(fixed: Any, m: int) -> tuple[int, float] | None:
    """(member index, total) of the `fixed={"member": i, "total": t}` option, or None."""
    if fixed is None:
        return None
    if not isinstance(fixed, dict) or set(fixed) - {"member", "total"} or "member" not in fixed:
        raise UserError(
            f"fixed must be a dict like {{'member': 2, 'total': 2.0}} (member i's weight = total "
            f"minus the sum of the others); got {fixed!r}"
        )
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


def _combination_count(m: int, n: int, fixed: tuple[int, float] | None) -> int:
    count = (n + 1) ** (m - (fixed is not None))
    if count > MAX_COMBINATIONS:
        free = m - (fixed is not None)
        raise UserError(
            f"the grid has {count:,} weight combinations ({n + 1} values for each of {free} free "
            f"weights); at most {MAX_COMBINATIONS:,} are allowed: use a larger step or fewer "
            f"members, or use optimize_weights or greedy_selection instead, which scale to any "
            f"number of members"
        )
    return count


def grid_weights(
    m: int, step: float = 0.1, max_weight: float = 1.0, fixed: dict[str, Any] | None = None
) -> tuple[np.ndarray, int]:
    """The [C, M] weight matrix grid_search evaluates and the number of skipped rows.

    Rows come in `itertools.product(values, repeat=free)` order (first member slowest), values
    i * step for i = 0..n; the all-zero row is left out. With `fixed`, member i's weight is
    total - sum(others), and rows where that is negative (below -1e-9) are left out and counted.
    """
    grid = _checked_grid(m, step, max_weight, fixed)
    return grid.weights, grid.skipped


@dataclass(frozen=True)
class _Grid:
    """A grid's rows and what the search derives from them alone, read-only: weights [C, M], each row
    normalised to sum 1, the normalised rows' keys (proportional rows share one), skipped rows."""

    weights: np.ndarray
    normalized: np.ndarray
    keys: list
    skipped: int


def _checked_grid(m: int, step: float, max_weight: float, fixed: dict[str, Any] | None) -> _Grid:
    n = _grid_steps(step, max_weight)
    fixed_at = _fixed(fixed, m)
    _combination_count(m, n, fixed_at)
    return _grid(m, n, float(step), fixed_at)


@functools.lru_cache(maxsize=32)
def _grid(m: int, n: int, step: float, fixed: tuple[int, float] | None) -> _Grid:
    """grid_weights' checked arguments -> the grid; cached, since a user searches the same few grids
    again and again (and building one costs as much as a small search)."""
    free = m - (fixed is not None)
    units = np.indices((n + 1,) * free, dtype=np.int64).reshape(free, -1).T  # product order
    values = units * step
    skipped = 0
    if fixed is not None:
        member, total = fixed
        t_units = total / step
        if abs(t_units - round(t_units)) <= 1e-9 * max(1.0, t_units):  # exact in units of step
            last = (round(t_units) - units.sum(axis=1)) * step
        else:
            last = total - values.sum(axis=1)
        keep = last >= -1e-9
        skipped = int(np.count_nonzero(~keep))
        values = np.insert(values[keep], member, np.maximum(last[keep], 0.0), axis=1)
    values = np.ascontiguousarray(values[values.any(axis=1)])
    normalized = values / values.sum(axis=1, keepdims=True)
    keys = [row.tobytes() for row in np.round(normalized, 9)]
    for array in (values, normalized):
        array.flags.writeable = False
    return _Grid(values, normalized, keys, skipped)


def grid_search(
    val_probs: ArrayLike,
    y_val: ArrayLike,
    step: float = 0.1,
    max_weight: float = 1.0,
    fixed: dict[str, Any] | None = None,
    space: str = "prob",
    top: int = 10,
    tie_break: str = "earliest",
) -> GridSearchResult:
    """Accuracy of every weight combination on {0, step, ..., max_weight}^M (all-zero left out).

    Evaluated vectorised (no Python loop per combination, see `ensemble_margins.count_correct`), in blocks to bound
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
    probs, y = probs_and_labels(val_probs, y_val)
    m = probs.shape[0]
    grid = _checked_grid(m, step, max_weight, fixed)
    weights, normalized = grid.weights, grid.normalized
    if len(weights) == 0:
        raise UserError(
            "no weight combination is left on this grid (fixed total below every combination?); "
            "raise fixed['total'] or lower step"
        )
    truth = true_class(probs, y)
    scores = member_scores(probs, space)
    correct = count_correct(weights, scores, y, member_scores(truth, space), surely_right(truth))
    n = len(y)
    if tie_break == "earliest":
        order = np.argsort(-correct, kind="stable")
    else:
        spread = np.round(np.sum((normalized - 1.0 / m) ** 2, axis=1), 12)
        order = np.lexsort((np.arange(len(weights)), spread, -correct))
    best = int(order[0])
    rows, seen = [], set()
    for i in _python_ints(order):
        key = grid.keys[i]  # proportional rows share a key
        if key in seen:
            continue
        seen.add(key)
        count = int(correct[i])
        rows.append(
            {
                "weights": weights[i].tolist(),
                "normalized_weights": normalized[i].tolist(),
                "accuracy": count / n,
                "correct": count,
            }
        )
        if len(rows) == top:
            break
    return GridSearchResult(
        weights=weights[best].copy(),
        normalized_weights=normalized[best].copy(),
        val_accuracy=float(correct[best] / n),
        grid={"weights": weights, "accuracy": correct / n},
        top=rows,
        combinations=len(weights),
        skipped=grid.skipped,
        tie_break=tie_break,
        space=space,
    )


def _python_ints(indices: np.ndarray, chunk: int = 64) -> Iterator[int]:
    """The indices as Python ints, converted a chunk at a time (a loop that stops early never converts
    a 2-million-row order; Python ints index the grid's key list faster than NumPy integers)."""
    for start in range(0, len(indices), chunk):
        yield from indices[start : start + chunk].tolist()


def grid_heatmap(result: GridSearchResult, i: int = 0, j: int = 1) -> dict[str, np.ndarray]:
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


def classic_nested_loops(
    val_probs: ArrayLike,
    y_val: ArrayLike,
    step: float = 0.1,
    max_weight: float = 1.0,
    fixed: dict[str, Any] | None = None,
    space: str = "prob",
) -> dict[str, Any]:
    """The grid search the way classic ensemble scripts write it: one Python iteration per combination,
    `for w1 in ...: for w2 in ...: ...` (itertools.product for M members), combined = sum w_m p_m,
    accuracy of its arg-max, keep it `if acc > best_acc`. With `fixed`, member i's weight is
    `total - sum(others)` and negative ones are skipped. Reference for tests and the benchmark's
    baseline; returns {"weights", "val_accuracy", "evaluated"}.
    """
    space = choose("space", space, SPACES)
    probs, y = probs_and_labels(val_probs, y_val)
    m = probs.shape[0]
    n = _grid_steps(step, max_weight)
    fixed_at = _fixed(fixed, m)
    _combination_count(m, n, fixed_at)
    scores = member_scores(probs, space)
    values = [i * float(step) for i in range(n + 1)]
    best_acc, best_w, evaluated = -1.0, None, 0
    for free in itertools.product(values, repeat=m - (fixed_at is not None)):
        w = list(free)
        if fixed_at is not None:
            member, total = fixed_at
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
