"""Exact accuracy of many weightings of an ensemble at once, by sign tests on margins.

  true_class(scores, y)            each member's score of the label, [M, N]
  surely_right(truth_probs)        images no non-negative weighting can get wrong (a cheap first cut)
  count_correct(weights, ...)      correct predictions of every row of a weight matrix, vectorised

The engine of `ensemble_grid.grid_search`: the arg-max of sum_m w_m scores_m is right on an image iff
every margin against another class has the right sign, and most (image, class) pairs have that sign
(or the wrong one) whatever the weights, so only the 'contested' pairs are evaluated, as one matrix
product per block of weight rows. Written by hand because no library scores arg-max accuracy over a
grid of weightings; every step is a NumPy array operation.
"""

import functools
import itertools

import numpy as np

from workbench.ensemble.calibration import PROB_TOLERANCE

_CHUNK_ELEMENTS = 1 << 18  # count_correct: combinations x margins per block (2 MB of float64)


def surely_right(truth_probs: np.ndarray) -> np.ndarray:
    """Images [N] (bool) on which every member gives the label more than half of its probability
    (`truth_probs` [M, N]: each member's probability of the label, see `true_class`).

    Each such member's arg-max is the label, so every non-negative combination's is too (any
    monotone score space): a cheap first cut that skips most images of a real ensemble before the exact
    margin tests. The bound allows for rows summing to 1 + PROB_TOLERANCE.
    """
    sure = truth_probs[0] > (1 + PROB_TOLERANCE) / 2
    for member in truth_probs[1:]:
        sure &= member > (1 + PROB_TOLERANCE) / 2
    return sure


def _prepare_margins(
    scores: np.ndarray, y: np.ndarray, truth: np.ndarray, sure: np.ndarray
) -> tuple[int, np.ndarray, np.ndarray, list[int]]:
    """Reduce the accuracy of sum_m w_m scores_m (w >= 0, not all 0) to sign tests on margins.

    Image n is predicted correctly iff for every class k != y_n the margin sum_m w_m d[m, n, k],
    d = scores[:, n, y_n] - scores[:, n, k] (`truth` [M, N] holds scores[:, n, y_n]), is > 0 (k < y_n:
    arg-max takes the lowest class on a tie) or >= 0 (k > y_n). A class whose d has the required sign
    for *every* member can never win, and one beating y_n for every member always wins, whatever the
    weights; such pairs need no evaluation, so only 'contested' (image, class) pairs remain (on real
    ensembles most images are unanimous). `sure` [N] (from `surely_right`) marks images known
    to be right; they are skipped.

    Returns (images always right, D [M, Q], flipped [Q], widths): the Q contested pairs as columns, grouped in
    slots: slot j holds the j-th contested class of the widths[j] images having more than j of them,
    images in the same order in every slot (most contested first), so slot j's columns line up with
    the first widths[j] columns of slot 0. A '> 0' pair's column is d, and it is satisfied iff
    w @ D[:, q] > 0; a '>= 0' pair's column is -d, and it is satisfied iff w @ D[:, q] > 0 is *false*
    (-x > 0 is exactly not x >= 0: negation is exact, and -0.0 > 0 is false). So one comparison with the
    scalar 0 tests every pair, and the '>= 0' columns (the mask `flipped` [Q]) are flipped after it.
    """
    known_right = int(np.count_nonzero(sure))
    rest = np.flatnonzero(~sure)
    y = y[rest]
    scores = np.take(scores, rest, axis=1)  # [M, R, K]
    m, n, k = scores.shape
    # truth repeated over the classes, then one same-shape subtraction: 2x faster than broadcasting
    d = np.repeat(np.take(truth, rest, axis=1), k).reshape(m, n, k) - scores
    low, high = np.minimum(d[0], d[-1]), np.maximum(d[0], d[-1])  # d's range over members; a loop
    for member in d[1:-1]:  # over M is 4x faster than numpy's
        np.minimum(low, member, out=low)  # axis-0 reduction on these shapes
        np.maximum(high, member, out=high)
    # Pair (n, k) is satisfied iff its margin > threshold: 0 where k < y_n (a tie goes to k), minus the
    # smallest subnormal where k > y_n (a tie goes to y_n; no float lies between it and 0, so '> -tiny'
    # is exactly '>= 0'); k == y_n gets -tiny too, so its zero margin counts as satisfied.
    threshold = _thresholds(k).take(y, axis=0)  # [R, K]
    harmless = low > threshold  # satisfied for every member
    winning = high <= threshold  # failed for every member
    # any/sum over the K classes as products with ones: 3x faster than .any/.sum(axis=1) over 10 columns
    ones = np.ones(k)
    always_wrong = (winning.astype(np.float64) @ ones) > 0
    contested = ~harmless  # an always-wrong row's pairs are never looked at
    n_contested = k - (harmless.astype(np.float64) @ ones).astype(np.int64)
    n_contested[always_wrong] = 0
    rows = np.flatnonzero(n_contested)
    always_right = known_right + n - int(np.count_nonzero(always_wrong)) - len(rows)
    if rows.size == 0:
        return always_right, np.zeros((m, 0)), np.zeros(0, dtype=bool), []
    # Rows by decreasing count of contested classes; both sorts are of small whole numbers (< K), which
    # numpy's stable sort does by radix as 8- or 16-bit integers (~3x faster here than as int64).
    small = np.uint8 if k < 256 else np.uint16 if k < 65536 else np.int64
    rows = rows[np.argsort((k - n_contested[rows]).astype(small), kind="stable")]
    counts = n_contested[rows]
    # row-major: classes ascending per row (flatnonzero and divmod: 2x faster than nonzero's two arrays)
    pair_row, pair_class = np.divmod(np.flatnonzero(np.take(contested, rows, axis=0)), k)
    slot = np.arange(len(pair_row)) - (np.cumsum(counts) - counts)[pair_row]  # j-th contested class of its row
    by_slot = np.argsort(slot.astype(small), kind="stable")  # slot by slot, rows in the same order
    flat = rows[pair_row[by_slot]] * k + pair_class[by_slot]  # (image, class) as flat indices: 4x
    sign = threshold.take(flat)  # the '>= 0' pairs' thresholds are < 0
    flipped = sign < 0
    np.copysign(1.0, sign, out=sign)  # -1.0 there (-tiny), else 1.0 (0.0)
    margins = d.reshape(m, n * k).take(flat, axis=1)  # faster than d[:, image, cls]
    margins *= sign  # exact: a sign change
    return always_right, margins, flipped, np.bincount(slot).tolist()


@functools.lru_cache(maxsize=8)
def _thresholds(k: int) -> np.ndarray:
    """[label, class] -> the margin threshold of that pair (see `_prepare_margins`), read-only."""
    table = np.where(np.arange(k)[None, :] >= np.arange(k)[:, None], -np.finfo(np.float64).smallest_subnormal, 0.0)
    table.flags.writeable = False
    return table


def true_class(scores: np.ndarray, y: np.ndarray) -> np.ndarray:
    """scores[:, n, y_n] as [M, N], through flat indices into the whole array (one 1-D take: 3x faster
    than scores[:, arange(N), y], 2x faster than a take along axis 1)."""
    m, n, k = scores.shape
    return np.take(scores.reshape(-1), (_row_starts(m, n, k) + y).reshape(-1)).reshape(m, n)


@functools.lru_cache(maxsize=8)
def _row_starts(m: int, n: int, k: int) -> np.ndarray:
    """[M, N] flat offsets of each member's row of each image, read-only (a search reuses them)."""
    starts = (np.arange(m)[:, None] * n + np.arange(n)) * k
    starts.flags.writeable = False
    return starts


def count_correct(
    weights: np.ndarray, scores: np.ndarray, y: np.ndarray, truth: np.ndarray, sure: np.ndarray
) -> np.ndarray:
    """Correct predictions [C] of argmax_k sum_m weights[c, m] scores[m, n, k], for all rows at once
    (`truth` [M, N]: `true_class(scores, y)`; `sure` [N]: images known right, from `surely_right`).

    Vectorised over combinations: per block of rows, one product [c, M] x [M, Q] of all contested
    margins (see `_prepare_margins`), one comparison with 0 and a flip of the '>= 0' pairs, an AND of
    each image's slots and a count; Python loops only over blocks and slots. Agrees with the plain
    arg-max except where two classes' scores differ by float rounding only.

    With several blocks the product is `np.einsum` (NumPy's own single-threaded loop), not `@`: for
    these thin products OpenBLAS' `@` took 0.35 s for the benchmark's 161,050 combinations on 2 idle
    cores but 1-5 s when the cores were shared with other work (its threads wait on each other);
    einsum took 0.6-0.85 s either way. A single block (small grids) uses `@`, 3x faster there. Scoring
    every combination with a full [c, N, K] sum and arg-max instead (no pruning) was slower than the
    classic Python loop (63 s vs 37 s). Comparing with the scalar 0 and flipping is 2.5x faster than
    comparing with a row of thresholds; counting with a float32 product 2x faster than counting bits.
    """
    always_right, margins, flipped, widths = _prepare_margins(scores, y, truth, sure)
    correct = np.full(len(weights), always_right, dtype=np.int64)
    if not widths:
        return correct
    weights = np.ascontiguousarray(weights, dtype=np.float64)
    starts = list(itertools.accumulate(widths, initial=0))
    block = max(1, _CHUNK_ELEMENTS // margins.shape[1])
    product = _one_product if len(weights) <= block else _many_products
    ones = np.ones(widths[0], dtype=np.float32)  # a count below 2**24 is exact in float32
    for start in range(0, len(weights), block):
        ok = product(weights[start : start + block], margins) > 0.0
        ok ^= flipped
        first = ok[:, : widths[0]]
        for j in range(1, len(widths)):
            first[:, : widths[j]] &= ok[:, starts[j] : starts[j + 1]]
        correct[start : start + block] += (first.astype(np.float32) @ ones).astype(np.int64)
    return correct


def _one_product(weights: np.ndarray, margins: np.ndarray) -> np.ndarray:
    """A single block: BLAS, 3x faster than einsum here, and one call cannot pile up thread waits."""
    return weights @ margins


def _many_products(weights: np.ndarray, margins: np.ndarray) -> np.ndarray:
    """Block after block: einsum, see `count_correct`."""
    return np.einsum("cm,mq->cq", weights, margins)
