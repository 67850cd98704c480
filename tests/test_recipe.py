"""Losses and learning-rate schedules: Keras' own underneath, checked against their formulas."""

import keras
import numpy as np
import pytest

from workbench.errors import UserError
from workbench.training.losses import LOSSES, build_loss
from workbench.training.schedules import SCHEDULES, build_schedule, learning_rates

LABELS = np.eye(4, dtype=np.float32)[[0, 1, 2, 3, 0]]
LOGITS = np.array([[3, 0, 0, 0], [0, 1, 0, 0], [0, 0, -1, 2], [1, 1, 1, 1], [5, 0, 0, 0]], np.float32)


def _cross_entropy(logits, labels):
    log_probs = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    return -(labels * log_probs).sum(1).mean()


def test_cross_entropy_and_label_smoothing_match_the_formula():
    assert float(build_loss("cross_entropy")(LABELS, LOGITS)) == pytest.approx(_cross_entropy(LOGITS, LABELS), rel=1e-5)
    smooth = LABELS * 0.9 + 0.1 / 4
    assert float(build_loss("label_smoothing")(LABELS, LOGITS)) == pytest.approx(
        _cross_entropy(LOGITS, smooth), rel=1e-5
    )


def test_focal_loss_down_weights_easy_examples():
    focal = build_loss("focal", {"gamma": 2.0, "alpha": 1.0})
    probs = np.exp(LOGITS) / np.exp(LOGITS).sum(1, keepdims=True)
    p_true = (probs * LABELS).sum(1)
    expected = (-((1 - p_true) ** 2) * np.log(p_true)).mean()
    assert float(focal(LABELS, LOGITS)) == pytest.approx(expected, rel=1e-4)
    # gamma 0 and alpha 1 is plain cross-entropy.
    assert float(build_loss("focal", {"gamma": 0.0, "alpha": 1.0})(LABELS, LOGITS)) == pytest.approx(
        _cross_entropy(LOGITS, LABELS), rel=1e-5
    )


@pytest.mark.parametrize("name", LOSSES)
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_losses_are_finite_in_float32_under_mixed_precision(name, dtype):
    big = keras.ops.cast(LOGITS * 20, dtype)  # confident logits overflow exp() in float16
    value = build_loss(name)(LABELS, big)
    assert value.dtype == "float32" and np.isfinite(float(value))


@pytest.mark.parametrize(
    "name, params, message",
    [
        ("hinge", None, "unknown loss 'hinge'; choose one of: cross_entropy, focal, label_smoothing"),
        ("focal", {"beta": 1}, "has no parameter beta; it takes: gamma, alpha, label_smoothing"),
        ("focal", {"gamma": -1}, "gamma must be >= 0"),
        ("focal", {"alpha": 0}, "alpha must be in"),
        ("cross_entropy", {"label_smoothing": 1.5}, "label_smoothing must be in"),
        ("label_smoothing", {"label_smoothing": 0}, "needs label_smoothing > 0"),
    ],
)
def test_bad_loss_input(name, params, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(")):
        build_loss(name, params)


def test_step_schedule_is_the_classic_recipe_scaled():
    schedule = build_schedule("step", base_lr=0.1, epochs=200, steps_per_epoch=10)
    lrs = learning_rates(schedule, [0, 599, 600, 1199, 1200, 1599, 1600, 1999])
    np.testing.assert_allclose(lrs, [0.1, 0.1, 0.02, 0.02, 0.004, 0.004, 0.0008, 0.0008], rtol=1e-5)
    short = build_schedule("step", base_lr=0.1, epochs=10, steps_per_epoch=10)
    np.testing.assert_allclose(learning_rates(short, [29, 30, 60, 80]), [0.1, 0.02, 0.004, 0.0008], rtol=1e-5)


def test_cosine_htd_and_warmup():
    cosine = build_schedule("cosine", base_lr=0.1, epochs=10, steps_per_epoch=10)
    np.testing.assert_allclose(learning_rates(cosine, [0, 50, 100]), [0.1, 0.05, 0.0], atol=1e-6)
    htd = build_schedule("htd", base_lr=0.1, epochs=10, steps_per_epoch=10)
    expected = [0.05 * (1 - np.tanh(-6 + 9 * t / 100)) for t in (0, 50, 100)]
    np.testing.assert_allclose(learning_rates(htd, [0, 50, 100]), expected, rtol=1e-5)
    assert np.all(np.diff(learning_rates(htd, range(0, 100, 5))) <= 0)
    warm = build_schedule("step", base_lr=0.1, epochs=10, steps_per_epoch=10, warmup_epochs=1)
    np.testing.assert_allclose(learning_rates(warm, [0, 4, 9, 10]), [0.01, 0.05, 0.1, 0.1], rtol=1e-5)
    warm_cos = build_schedule("cosine", base_lr=0.1, epochs=10, steps_per_epoch=10, warmup_epochs=2)
    lrs = learning_rates(warm_cos, [0, 10, 20, 100])
    assert lrs[0] < lrs[1] < lrs[2] == pytest.approx(0.1) and lrs[3] == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("name", SCHEDULES)
def test_schedules_survive_a_saved_optimizer(name, tmp_path):
    schedule = build_schedule(name, base_lr=0.1, epochs=4, steps_per_epoch=5, warmup_epochs=1)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer=keras.optimizers.SGD(schedule, momentum=0.9, nesterov=True), loss="mse")
    model.fit(np.ones((10, 3)), np.ones((10, 2)), epochs=1, batch_size=5, verbose=0)
    model.save(tmp_path / "m.keras")
    restored = keras.models.load_model(tmp_path / "m.keras")
    steps = [0, 3, 7, 12, 19]
    restored_schedule = keras.optimizers.schedules.deserialize(restored.optimizer.get_config()["learning_rate"])
    assert type(restored_schedule) is type(schedule)
    np.testing.assert_allclose(learning_rates(restored_schedule, steps), learning_rates(schedule, steps), rtol=1e-6)


@pytest.mark.parametrize(
    "name, kwargs, message",
    [
        ("exponential", {}, "unknown schedule 'exponential'; choose one of: step, cosine, htd, constant"),
        ("step", {"params": {"milestones": (0.8, 0.3)}}, "increasing fractions"),
        ("step", {"params": {"gamma": 2}}, "gamma is the factor"),
        ("htd", {"params": {"lower": 3, "upper": -6}}, "lower < upper"),
        ("cosine", {"params": {"decay": 1}}, "has no parameter decay"),
        ("cosine", {"base_lr": 0}, "learning rate must be > 0"),
        ("cosine", {"warmup_epochs": 10}, "warm-up epochs must be in"),
    ],
)
def test_bad_schedule_input(name, kwargs, message):
    args = {"base_lr": 0.1, "epochs": 10, "steps_per_epoch": 5, **kwargs}
    with pytest.raises(UserError, match=message):
        build_schedule(name, **args)
