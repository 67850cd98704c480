"""Ensemble and calibration mathematics on stored predictions: known answers, hand computations and
brute-force references (scipy.stats.mode, the classic nested-loop grid search)."""

from itertools import pairwise

import numpy as np
import pytest
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from workbench.ensemble import calibration as cal
from workbench.ensemble import combine as ens
from workbench.errors import UserError


def members(m=3, n=600, k=10, seed=0, base=3.0, decay=0.5, scale=1.5):
    """probs [M, N, K], labels: shared per-image noise + own noise; member 0 best, later ones weaker."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    onehot = np.eye(k)[y]
    shared = rng.normal(size=(n, k)) * rng.gamma(2.0, 0.5, (n, 1))
    logits = [scale * ((base - decay * i) * onehot + shared + rng.normal(size=(n, k))) for i in range(m)]
    return ens.member_probs(logits), y, logits


def direct_accuracy(weights, scores, y):
    """Accuracy of argmax(sum_m w_m scores_m) for every row of weights, the plain way."""
    return np.array([np.mean(np.tensordot(w, scores, axes=1).argmax(1) == y) for w in weights])


# --- calibration ------------------------------------------------------------------------------------


def test_softmax_is_stable_and_keeps_dtype():
    z = np.array([[1000.0, 0.0, -1000.0], [1.0, 2.0, 3.0]])
    p = cal.softmax(z)
    assert p.dtype == np.float64 and np.all(np.isfinite(p))
    np.testing.assert_allclose(p[0], [1.0, 0.0, 0.0])
    e = np.exp([1.0, 2.0, 3.0])
    np.testing.assert_allclose(p[1], e / e.sum(), rtol=1e-12)
    np.testing.assert_allclose(cal.softmax(z, 2.0), cal.softmax(z / 2.0), rtol=1e-12)
    np.testing.assert_allclose(cal.log_softmax(z[1:], 0.5), np.log(cal.softmax(z[1:] / 0.5)), rtol=1e-12)
    assert cal.softmax(z.astype(np.float32)).dtype == np.float32
    assert cal.log_softmax(z.astype(np.float32)).dtype == np.float32
    assert cal.softmax(np.array([[1, 2]])).dtype == np.float64
    assert np.all(np.isfinite(cal.log_softmax(z)[0, :2]))  # no log(0) = -inf where it can be avoided
    with pytest.raises(UserError, match="positive"):
        cal.softmax(z, 0.0)


def test_fit_temperature_recovers_known_temperature_and_lowers_ece():
    rng = np.random.default_rng(1)
    n, k, t_true = 20_000, 10, 2.5
    true_logits = rng.normal(size=(n, k)) * 2.0
    y = np.argmax(true_logits + rng.gumbel(size=(n, k)), axis=1)  # labels drawn from softmax(true_logits)
    observed = true_logits * t_true  # an over-confident member
    t = cal.fit_temperature(observed, y)
    assert abs(t - t_true) / t_true < 0.05, t
    ece_before = cal.expected_calibration_error(cal.softmax(observed), y)
    ece_after = cal.expected_calibration_error(cal.softmax(observed, t), y)
    assert ece_before > 0.1 and ece_after < 0.02 and ece_after < ece_before / 5, (ece_before, ece_after)
    assert cal.nll(cal.softmax(observed, t), y) < cal.nll(cal.softmax(observed), y)
    # an under-confident member gets T < 1
    assert abs(cal.fit_temperature(true_logits / 2.0, y) - 0.5) < 0.03
    # per-member temperatures through the ensemble helper
    ts = ens.fit_member_temperatures([observed, true_logits], y)
    assert abs(ts[0] - t) < 1e-9 and abs(ts[1] - 1.0) < 0.05
    np.testing.assert_allclose(ens.member_probs([observed, true_logits], ts)[0], cal.softmax(observed, t))


def test_ece_hand_example_and_reliability_curve():
    # confidences 0.9, 0.9 (one right) and 0.6, 0.6 (both right), 10 bins:
    # |0.5 - 0.9| * 2/4 + |1.0 - 0.6| * 2/4 = 0.4
    probs = np.array([[0.9, 0.1], [0.9, 0.1], [0.4, 0.6], [0.4, 0.6]])
    y = np.array([0, 1, 1, 1])
    assert cal.expected_calibration_error(probs, y, bins=10) == pytest.approx(0.4)
    assert cal.expected_calibration_error(probs, y, bins=1) == pytest.approx(0.0)  # 0.75 vs 0.75
    curve = cal.reliability_curve(probs, y, bins=10)
    assert curve["counts"].tolist() == [0, 0, 0, 0, 0, 2, 0, 0, 2, 0]
    assert curve["accuracy"][8] == 0.5 and curve["confidence"][8] == pytest.approx(0.9)
    assert curve["accuracy"][5] == 1.0 and np.isnan(curve["accuracy"][0])
    np.testing.assert_allclose(curve["centers"], np.arange(10) / 10 + 0.05)
    assert cal.accuracy(probs, y) == 0.75 and cal.accuracy(np.array([0, 0, 1, 1]), y) == 0.75
    assert cal.nll(probs, y) == pytest.approx(-np.mean(np.log([0.9, 0.1, 0.6, 0.6])))


def test_ece_of_calibrated_predictions_is_near_zero():
    rng = np.random.default_rng(2)
    n, k = 100_000, 10
    conf = rng.uniform(0.15, 1.0, n)
    pred = rng.integers(0, k, n)
    probs = np.repeat(((1 - conf) / (k - 1))[:, None], k, axis=1)
    probs[np.arange(n), pred] = conf
    other = (pred + rng.integers(1, k, n)) % k  # a uniformly chosen other class
    y = np.where(rng.uniform(size=n) < conf, pred, other)  # right with probability = confidence
    assert cal.expected_calibration_error(probs, y) < 0.01
    curve = cal.reliability_curve(probs, y)
    filled = curve["counts"] > 1000
    np.testing.assert_allclose(curve["accuracy"][filled], curve["confidence"][filled], atol=0.03)
    # the same predictions, right 20 points less often than they claim: ECE about 0.2
    y_over = np.where(rng.uniform(size=n) < conf - 0.2, pred, other)
    assert 0.17 < cal.expected_calibration_error(probs, y_over) < 0.23


# --- voting and averaging -------------------------------------------------------------------------------


def test_vote_lowest_equals_scipy_mode_with_many_ties():
    rng = np.random.default_rng(3)
    probs = rng.dirichlet(np.ones(3), size=(4, 5000))  # 4 members, 3 classes: ties are common
    labels = probs.argmax(axis=2)
    counts = np.stack([(labels == c).sum(0) for c in range(3)], axis=1)
    tied = np.sum((counts == counts.max(1, keepdims=True)).sum(1) > 1)
    assert tied > 1000  # the case that matters is exercised
    expected = scipy.stats.mode(labels, axis=0).mode
    np.testing.assert_array_equal(ens.vote(probs), expected)
    np.testing.assert_array_equal(ens.vote(probs, "lowest"), expected)
    dist = ens.vote_distribution(probs)
    np.testing.assert_allclose(dist, counts / 4)
    np.testing.assert_allclose(dist.sum(1), 1.0)


def test_vote_confidence_breaks_ties_by_summed_probability():
    probs = np.array(
        [
            # image 0: votes 0, 2 (tie); summed probability 0.7 for class 0, 0.8 for class 2 -> 2
            # image 1: both vote 1 -> 1;  image 2: votes 0, 2 with equal sums 0.9 -> lowest, 0
            [[0.6, 0.3, 0.1], [0.1, 0.8, 0.1], [0.5, 0.1, 0.4]],
            [[0.1, 0.2, 0.7], [0.2, 0.6, 0.2], [0.4, 0.1, 0.5]],
        ]
    )
    assert ens.vote(probs, "lowest").tolist() == [0, 1, 0]
    assert ens.vote(probs, "confidence").tolist() == [2, 1, 0]
    # only tied classes compete: class 1 has the most probability (1.8) but no votes
    four = np.array([[[0.5, 0.45, 0.05]], [[0.5, 0.45, 0.05]], [[0.04, 0.45, 0.51]], [[0.04, 0.45, 0.51]]])
    assert ens.vote(four, "confidence").tolist() == [2]
    assert ens.vote(four, "lowest").tolist() == [0]
    with pytest.raises(UserError, match="lowest, confidence"):
        ens.vote(probs, "random")


def test_weighted_mean_by_hand_in_both_spaces():
    probs = np.array([[[0.8, 0.2], [0.5, 0.5]], [[0.4, 0.6], [0.1, 0.9]]])  # 2 members, 2 images
    np.testing.assert_allclose(ens.weighted_mean(probs, [3, 1]), [[0.7, 0.3], [0.4, 0.6]])
    np.testing.assert_allclose(ens.weighted_mean(probs), [[0.6, 0.4], [0.3, 0.7]])  # default: equal
    a, b = 0.8**0.75 * 0.4**0.25, 0.2**0.75 * 0.6**0.25  # geometric mean
    np.testing.assert_allclose(ens.weighted_mean(probs, [0.3, 0.1], space="logit")[0], [a / (a + b), b / (a + b)])
    # "logit" space is the same as averaging the members' logits with these weights
    rng = np.random.default_rng(4)
    logits = [rng.normal(size=(50, 7)) * 3 for _ in range(3)]
    w = np.array([0.2, 0.5, 0.3])
    np.testing.assert_allclose(
        ens.weighted_mean(ens.member_probs(logits), w * 7, space="logit"),
        cal.softmax(sum(wi * z for wi, z in zip(w, logits))),
        rtol=1e-10,
    )
    # a member with a probability of exactly 0 stays finite in logit space
    hard = np.array([[[1.0, 0.0]], [[0.3, 0.7]]])
    out = ens.weighted_mean(hard, [1, 1], space="logit")
    assert np.all(np.isfinite(out)) and out[0, 0] == pytest.approx(1.0)


def test_agreement_matrix_and_evaluate():
    probs, y, _ = members(m=4, n=500)
    agree = ens.agreement_matrix(probs)
    assert agree.shape == (4, 4)
    np.testing.assert_array_equal(np.diag(agree), 1.0)
    np.testing.assert_array_equal(agree, agree.T)
    labels = probs.argmax(2)
    assert agree[0, 2] == np.mean(labels[0] == labels[2])
    assert 0 < agree[0, 3] < 1
    combined = ens.weighted_mean(probs)
    result = ens.evaluate(combined, y)
    assert result == {
        "accuracy": cal.accuracy(combined, y),
        "nll": cal.nll(combined, y),
        "ece": cal.expected_calibration_error(combined, y),
    }
    assert set(ens.evaluate(ens.vote_distribution(probs), y)) == {"accuracy", "nll", "ece"}


# --- grid search -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("space", ["prob", "logit"])
def test_grid_search_matches_classic_nested_loops(space):
    probs, y, _ = members(m=3, n=600)
    result = ens.grid_search(probs, y, step=0.1, space=space)
    classic = ens.classic_nested_loops(probs, y, step=0.1, space=space)
    assert result.combinations == classic["evaluated"] == 11**3 - 1
    assert result.val_accuracy == classic["val_accuracy"]
    np.testing.assert_array_equal(result.weights, classic["weights"])  # both keep the earliest best
    # the best weights really reach the reported accuracy
    assert cal.accuracy(ens.weighted_mean(probs, result.weights, space=space), y) == result.val_accuracy
    # every grid row against the plain computation
    np.testing.assert_array_equal(
        result.grid["accuracy"], direct_accuracy(result.grid["weights"], ens.member_scores(probs, space), y)
    )
    heat = ens.grid_heatmap(result, 0, 2)  # best over w1 for each (w0, w2)
    w, acc = result.grid["weights"], result.grid["accuracy"]
    assert heat["accuracy"].shape == (11, 11) and np.nanmax(heat["accuracy"]) == result.val_accuracy
    assert heat["accuracy"][3, 7] == acc[np.isclose(w[:, 0], 0.3) & np.isclose(w[:, 2], 0.7)].max()
    single = max(cal.accuracy(p, y) for p in probs)
    assert result.val_accuracy > single  # the ensemble helps on this data
    top = result.top
    assert top[0]["accuracy"] == result.val_accuracy and len(top) == 10
    assert all(a["accuracy"] >= b["accuracy"] for a, b in pairwise(top))
    assert len({tuple(np.round(r["normalized_weights"], 9)) for r in top}) == 10  # no proportional repeats


def test_grid_search_fixed_total_like_classic_scripts():
    probs, y, _ = members(m=3, n=600, seed=5)
    fixed = {"member": 2, "total": 2.0}  # w3 = 2 - w1 - w2
    result = ens.grid_search(probs, y, step=0.1, fixed=fixed)
    classic = ens.classic_nested_loops(probs, y, step=0.1, fixed=fixed)
    assert result.combinations == classic["evaluated"] == 121  # w1 + w2 <= 2 always holds for w <= 1
    assert result.val_accuracy == classic["val_accuracy"]
    np.testing.assert_allclose(result.weights, classic["weights"], atol=1e-12)
    grid = result.grid["weights"]
    np.testing.assert_allclose(grid.sum(1), 2.0)
    heat = ens.grid_heatmap(result, 0, 1)  # two free weights: the grid itself
    np.testing.assert_allclose(heat["rows"], np.arange(11) / 10)
    np.testing.assert_array_equal(heat["accuracy"].ravel(), result.grid["accuracy"])
    assert np.nanmax(heat["accuracy"]) == result.val_accuracy
    np.testing.assert_allclose(grid[:, :2], [[a / 10, b / 10] for a in range(11) for b in range(11)])
    # a total below the largest pair sum: combinations with a negative third weight are skipped
    small = ens.grid_search(probs, y, step=0.1, fixed={"member": 0, "total": 1.0})
    assert small.skipped == 121 - 66 and small.combinations == 66
    assert np.all(small.grid["weights"] >= 0)
    assert (
        small.val_accuracy == ens.classic_nested_loops(probs, y, 0.1, fixed={"member": 0, "total": 1.0})["val_accuracy"]
    )


@pytest.mark.parametrize("kind", ["one-hot", "quarters"])
def test_grid_search_exact_ties_follow_argmax_lowest_class(kind):
    # one-hot members, or members whose probabilities are multiples of 1/4 (ties inside a member too),
    # make exact score ties between classes for many weight combinations
    rng = np.random.default_rng(6)
    labels = rng.integers(0, 4, (3, 400))
    y = np.where(rng.uniform(size=400) < 0.5, labels[0], rng.integers(0, 4, 400))
    if kind == "one-hot":
        probs = np.eye(4)[labels]
    else:
        probs = np.eye(4)[rng.integers(0, 4, (3, 400, 4))].sum(axis=2) / 4
    result = ens.grid_search(probs, y, step=0.25)
    np.testing.assert_array_equal(result.grid["accuracy"], direct_accuracy(result.grid["weights"], probs, y))
    assert result.val_accuracy == ens.classic_nested_loops(probs, y, step=0.25)["val_accuracy"]


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_grid_search_counts_every_combination_exactly(data):
    # Members with probabilities in eighths and weights in quarters: every sum is exact in float64, so
    # the pruned margin tests must give exactly the plain arg-max's accuracy for every row, ties
    # included; rows with the label above one half take the "surely right" shortcut.
    m = data.draw(st.integers(2, 4), label="members")
    n = data.draw(st.integers(1, 30), label="images")
    k = data.draw(st.integers(2, 5), label="classes")
    units = data.draw(hnp.arrays(np.int64, (m, n, 8), elements=st.integers(0, k - 1)), label="units")
    y = data.draw(hnp.arrays(np.int64, n, elements=st.integers(0, k - 1)), label="labels")
    on_label = data.draw(hnp.arrays(np.int64, n, elements=st.integers(0, 8)), label="eighths on the label")
    first = np.arange(8)[None, :] < on_label[:, None]  # at least this many eighths on the label, for
    units[:, first] = np.broadcast_to(y[:, None], (n, 8))[first]  # every member (5 or more: "surely right")
    probs = np.eye(k)[units].sum(axis=2) / 8  # each of the 8 units puts 1/8 on its class
    fixed = data.draw(st.sampled_from([None, {"member": m - 1, "total": 1.0}]), label="fixed")
    result = ens.grid_search(probs, y, step=0.25, fixed=fixed)
    np.testing.assert_array_equal(result.grid["accuracy"], direct_accuracy(result.grid["weights"], probs, y))
    assert result.val_accuracy == ens.classic_nested_loops(probs, y, step=0.25, fixed=fixed)["val_accuracy"]


def test_grid_search_gives_a_useless_member_weight_zero():
    rng = np.random.default_rng(7)
    n, k = 400, 4
    y = rng.integers(0, k, n)
    probs = np.full((3, n, k), 0.24)
    for m in range(2):  # good members: right 80 %, small margins
        guess = np.where(rng.uniform(size=n) < 0.8, y, (y + rng.integers(1, k, n)) % k)
        probs[m, np.arange(n), guess] = 0.28
    probs[2] = np.eye(k)[rng.integers(0, k, n)]  # confident random guesses
    for tie_break in ("earliest", "uniform"):
        result = ens.grid_search(probs, y, step=0.1, tie_break=tie_break)
        assert result.weights[2] == 0 and result.weights[:2].max() > 0, result.weights
        uses_it = result.grid["weights"][:, 2] > 0
        assert result.grid["accuracy"][uses_it].max() < result.val_accuracy - 0.2  # any weight on it hurts
        assert all(row["weights"][2] == 0 for row in result.top)
    opt = ens.optimize_weights(probs, y)
    assert opt.weights[2] < 1e-6 and opt.val_nll < opt.uniform_nll


def test_grid_search_tie_break_earliest_or_uniform():
    probs, y, _ = members(m=3, n=200)
    same = np.repeat(probs[:1], 3, axis=0)  # identical members: every combination ties
    earliest = ens.grid_search(same, y, step=0.5)
    uniform = ens.grid_search(same, y, step=0.5, tie_break="uniform", top=30)
    assert np.all(earliest.grid["accuracy"] == earliest.val_accuracy)
    assert earliest.weights.tolist() == [0.0, 0.0, 0.5]  # first in itertools.product order
    assert uniform.weights.tolist() == [0.5, 0.5, 0.5]
    np.testing.assert_allclose(uniform.normalized_weights, 1 / 3)
    assert len(uniform.top) == 19  # 26 rows, 19 distinct normalised mixtures
    assert uniform.top[0]["weights"] == [0.5, 0.5, 0.5] and earliest.top[0]["weights"] == [0.0, 0.0, 0.5]


# --- greedy selection and NLL-optimal weights ---------------------------------------------------------------


def test_greedy_selection_trajectory():
    probs, y, _ = members(m=4, n=1000)
    singles = [cal.nll(p, y) for p in probs]
    result = ens.greedy_selection(probs, y, size=30)
    nll, acc = result.trajectory["nll"], result.trajectory["accuracy"]
    assert result.selected[0] == int(np.argmin(singles)) and nll[0] == pytest.approx(min(singles))
    # every step adds the member whose addition gives the lowest NLL (brute force)
    total = np.zeros(probs.shape[1:])
    for t, chosen in enumerate(result.selected, 1):
        candidates = [cal.nll((total + p) / t, y) for p in probs]
        assert chosen == int(np.argmin(candidates))
        total += probs[chosen]
        assert nll[t - 1] == pytest.approx(candidates[chosen])
        assert acc[t - 1] == cal.accuracy(total, y)
    # NLL falls while the mixture is far from its best; afterwards it stays within a hair of it
    # (a member must be added at every step, so tiny ups and downs are expected, not a bug)
    assert np.all(np.diff(nll[:3]) < 0)
    assert nll.min() < min(singles) - 0.03 and np.all(nll[5:] < nll.min() + 0.01)
    assert nll[result.best_step - 1] == nll.min()
    np.testing.assert_allclose(result.weights, result.counts / 30)
    np.testing.assert_allclose(result.weights.sum(), 1.0)
    assert cal.nll(ens.weighted_mean(probs, result.weights), y) == pytest.approx(nll[-1])
    by_acc = ens.greedy_selection(probs, y, size=10, metric="accuracy")
    assert by_acc.selected[0] == int(np.argmax([cal.accuracy(p, y) for p in probs]))
    assert by_acc.trajectory["accuracy"].max() >= max(cal.accuracy(p, y) for p in probs)


@pytest.mark.parametrize("space", ["prob", "logit"])
def test_optimize_weights_beats_uniform_and_is_optimal(space):
    probs, y, _ = members(m=3, n=1000, decay=1.0)  # members of clearly different quality
    result = ens.optimize_weights(probs, y, space=space)
    assert result.success, result.message
    assert np.all(result.weights >= 0) and result.weights.sum() == pytest.approx(1.0)
    assert result.val_nll < result.uniform_nll - 0.05
    assert result.weights[0] > result.weights[2]
    combined = ens.weighted_mean(probs, result.weights, space=space)
    assert result.val_nll == pytest.approx(cal.nll(combined, y), rel=1e-9)
    assert result.val_accuracy == cal.accuracy(combined, y)
    # no point of a fine simplex grid does better
    grid = np.array([(a, b, 40 - a - b) for a in range(41) for b in range(41 - a)]) / 40
    best_on_grid = min(cal.nll(ens.weighted_mean(probs, w, space=space), y) for w in grid[::3])
    assert result.val_nll <= best_on_grid + 1e-9


# --- user errors ----------------------------------------------------------------------------------------------


def test_bad_inputs_raise_user_errors_that_say_what_is_allowed():
    probs, y, logits = members(m=3, n=100)
    with pytest.raises(UserError, match="same images and classes"):
        ens.member_probs([logits[0], logits[1][:50]])
    with pytest.raises(UserError, match="one positive temperature per member"):
        ens.member_probs(logits, temperatures=[1.0, 2.0])
    with pytest.raises(UserError, match="temperature of member 1"):
        ens.member_probs(logits, temperatures=[1.0, -2.0, 1.0])
    with pytest.raises(UserError, match="100 images"):
        ens.grid_search(probs, y[:99])
    with pytest.raises(UserError, match=r"\[0, 9\]"):
        ens.evaluate(probs[0], y + 10)
    with pytest.raises(UserError, match="one-hot"):
        ens.evaluate(probs[0], np.eye(10)[y])
    with pytest.raises(UserError, match="shape \\[members, images, classes\\]"):
        ens.vote(probs[0])
    with pytest.raises(UserError, match="logits"):
        ens.weighted_mean(np.stack(logits), [1, 1, 1])  # logits where probabilities belong
    with pytest.raises(UserError, match="got 2 weights for 3 members"):
        ens.weighted_mean(probs, [1, 2])
    with pytest.raises(UserError, match=">= 0"):
        ens.weighted_mean(probs, [1, -1, 1])
    with pytest.raises(UserError, match="all zero"):
        ens.weighted_mean(probs, [0, 0, 0])
    with pytest.raises(UserError, match="prob, logit"):
        ens.weighted_mean(probs, [1, 1, 1], space="log")
    with pytest.raises(UserError, match="does not divide max_weight"):
        ens.grid_search(probs, y, step=0.3)
    with pytest.raises(UserError, match="does not divide max_weight"):
        ens.classic_nested_loops(probs, y, step=0.3)
    seven = np.repeat(probs[:1], 7, axis=0)
    with pytest.raises(UserError, match=r"19,487,171 weight combinations.*optimize_weights or greedy_selection"):
        ens.grid_search(seven, y, step=0.1)  # 11^7: refused before any work
    with pytest.raises(UserError, match="optimize_weights"):
        ens.classic_nested_loops(seven, y, step=0.1)
    assert ens.grid_search(seven, y, step=0.5).combinations == 3**7 - 1  # a coarser grid is fine
    with pytest.raises(UserError, match="member index from 0 to 2"):
        ens.grid_search(probs, y, fixed={"member": 3, "total": 2.0})
    with pytest.raises(UserError, match="fixed must be a dict"):
        ens.grid_search(probs, y, fixed={"index": 2})
    with pytest.raises(UserError, match="top"):
        ens.grid_search(probs, y, top=0)
    with pytest.raises(UserError, match="nll, accuracy"):
        ens.greedy_selection(probs, y, metric="auc")
    with pytest.raises(UserError, match="size"):
        ens.greedy_selection(probs, y, size=0)
    with pytest.raises(UserError, match="bins"):
        cal.expected_calibration_error(probs[0], y, bins=0)
    with pytest.raises(UserError, match="val_logits"):
        cal.fit_temperature(logits[0][:, :1], y)
    with pytest.raises(UserError, match="NaN"):
        cal.fit_temperature(np.full((100, 10), np.nan), y)
