"""The rest of cifar10-airbench's recipe in Keras (issue 25): the Dirac initializer, the BatchNorm-bias learning
rate by reparameterisation, the whitening bias and its freeze, lookahead, progressive resolution, and their
settings; the CPU's bfloat16 warning and the job's cores. Tiny models and a few images: accuracy belongs to
bench/fast_recipe.py."""

import threading

import keras
import numpy as np
import pytest

from models.airbench import WHITEN_BIAS
from models.airbench_layers import Dirac, ScaledBias
from workbench.data.pipeline import BatchOptions, make_dataset
from workbench.errors import UserError
from workbench.specs.hardware import cpu_flags, job_cores, precision_warning, run_warning
from workbench.specs.presets import load_preset
from workbench.specs.run import RunSpec
from workbench.training.recipe import FreezeAfter, Lookahead, lookahead_decay, recipe_callbacks
from workbench.training.runners import build_model

TINY = {"widths": [8, 12, 12]}
RECIPE = dict(dirac_init=True, bn_bias_lr=64.0, whiten_bias_epochs=1, lookahead_every=5)


def _weights(model) -> list:
    return [np.array(keras.ops.convert_to_numpy(v)) for v in model.weights if "float" in str(v.dtype)]


def test_dirac_conv_is_the_identity_on_its_first_channels_before_training():
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(1).normal(size=(2, 7, 7, 5)).astype(np.float32)
    conv = keras.layers.Conv2D(9, 3, padding="same", use_bias=False, kernel_initializer=Dirac())
    y = keras.ops.convert_to_numpy(conv(x))
    assert np.array_equal(y[..., :5], x)  # exactly: one 1 per filter, zeros elsewhere
    kernel = keras.ops.convert_to_numpy(conv.kernel)
    assert np.std(kernel[..., 5:]) > 0.05  # the other filters keep he_normal
    # In the airbench model every 3x3 conv starts so: block 1's first conv passes the whitened channels on.
    model = build_model(RunSpec(model="airbench_cpu", model_kwargs=TINY, dirac_init=True), 10, (32, 32, 3))
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D) and layer.kernel.shape[0] == 3:
            k = keras.ops.convert_to_numpy(layer.kernel)
            n = min(k.shape[2:])
            assert np.array_equal(k[1, 1, np.arange(n), np.arange(n)], np.ones(n)), layer.name
    with pytest.raises(ValueError, match="4-D"):
        Dirac()((3, 3))


def test_scaled_bias_gives_sgd_a_c_squared_step_and_the_papers_weight_decay():
    """b = c * b'. Loss = sum(g * y) with y = x + b, so dL/db = g and dL/db' = c * g; L2(wd / 2) on b' adds
    wd * b'. One plain SGD step of rate lr on b' moves b by c * lr * (c * g + wd * b') = lr * (c^2 g + wd * b):
    the bias learns c^2 faster, its decay is a plain weight's (airbench: the rate, not the decay, is scaled)."""
    c, lr, wd = 8.0, 0.01, 0.1
    g = np.array([[0.5, -2.0, 1.0]], np.float32)
    inputs = keras.Input((3,))
    layer = ScaledBias(c, regularizer=keras.regularizers.L2(wd / 2))
    model = keras.Model(inputs, layer(inputs))
    b_prime = np.array([0.3, -0.1, 0.05], np.float32)
    layer.bias.assign(b_prime)
    b0 = c * b_prime
    model.compile(keras.optimizers.SGD(lr), loss=lambda y_true, y_pred: keras.ops.sum(y_true * y_pred))
    model.train_on_batch(np.zeros((1, 3), np.float32), g)
    by_hand = b0 - lr * (c**2 * g[0] + wd * b0)
    assert np.allclose(layer.effective_bias(), by_hand, atol=1e-6)
    assert np.allclose(b0 - by_hand, lr * (64 * g[0] + wd * b0))  # 64x the plain step on the gradient


def test_bn_bias_lr_puts_a_scaled_bias_after_each_batchnorm():
    plain = build_model(RunSpec(model="airbench_cpu", model_kwargs=TINY), 10, (32, 32, 3))
    scaled = build_model(
        RunSpec(model="airbench_cpu", model_kwargs=TINY, bn_bias_lr=64, weight_decay=1e-3), 10, (32, 32, 3)
    )
    biases = [layer for layer in scaled.layers if isinstance(layer, ScaledBias)]
    assert len(biases) == 6 and all(b.scale == 8.0 and b.regularizer is not None for b in biases)
    assert not any(isinstance(layer, ScaledBias) for layer in plain.layers)
    assert plain.count_params() == scaled.count_params()  # the same parameters, moved to their own layer


def test_lookahead_slow_weights_move_by_the_rule():
    every, total = 5, 20
    assert lookahead_decay(0, total, every) == 0.0
    assert lookahead_decay(total, total, every) == pytest.approx(0.95**5)
    assert lookahead_decay(10, total, every) == pytest.approx(0.95**5 * 0.125)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), keras.layers.BatchNormalization()])
    model.compile(keras.optimizers.SGD(0.1), "mse")
    model.optimizer.iterations.assign(5)  # as a resumed run: global step 5 of 20
    callback = Lookahead(every, total)
    callback.set_model(model)
    callback.on_train_begin()
    slow0 = _weights(model)
    rng = np.random.default_rng(0)
    for step in range(6, 11):  # steps 6..10 "train": the fast weights wander
        for v in model.weights:
            v.assign(keras.ops.convert_to_numpy(v) + rng.normal(size=v.shape).astype(np.float32))
        fast = _weights(model)
        callback.on_train_batch_end(step - 1)
        if step < 10:
            assert all(np.array_equal(a, b) for a, b in zip(_weights(model), fast))  # untouched between syncs
    decay = 0.95**5 * (10 / 20) ** 3
    expected = [s + (1 - decay) * (f - s) for s, f in zip(slow0, fast)]
    assert all(np.allclose(a, b, atol=1e-6) for a, b in zip(_weights(model), expected))  # fast = new slow
    assert all(np.allclose(a, b, atol=1e-6) for a, b in zip(map(np.asarray, callback.slow), expected))
    # The last step, not a multiple of `every`: the model ends on the slow weights.
    callback = Lookahead(every, 12)
    callback.set_model(model)
    model.optimizer.iterations.assign(11)
    callback.on_train_begin()
    before = _weights(model)
    for v in model.weights:
        v.assign(keras.ops.convert_to_numpy(v) + 1.0)
    callback.on_train_batch_end(0)
    assert all(np.allclose(a, b) for a, b in zip(_weights(model), before))


@pytest.mark.slow  # ~20 s of training: the default suite stays under its 10 minutes
def test_whitening_bias_trains_then_freezes_and_the_model_loads_with_safe_mode(tmp_path):
    # lookahead off here: over 4 steps (fewer than its 5) it would hand the model its first weights back
    spec = RunSpec(model="airbench_cpu", model_kwargs=TINY, epochs=2, batch_size=16, **RECIPE | {"lookahead_every": 0})
    keras.utils.set_random_seed(0)
    model = build_model(spec, 10, (16, 16, 3))
    model.compile(keras.optimizers.SGD(0.05, momentum=0.85, nesterov=True), "categorical_crossentropy")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 16, 16, 3)).astype(np.float32)
    y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, 32)]
    seen = []

    class Record(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append(model.get_layer(WHITEN_BIAS).effective_bias().copy())

    assert [type(c) for c in recipe_callbacks(spec.replace(lookahead_every=5), 2)] == [Lookahead, FreezeAfter]
    callbacks = recipe_callbacks(spec, steps_per_epoch=2)
    model.fit(x, y, batch_size=16, epochs=2, callbacks=[*callbacks, Record()], verbose=0, shuffle=False)
    assert np.abs(seen[0]).max() > 0  # trained in epoch 1 (from zeros)
    assert np.array_equal(seen[1], seen[0])  # frozen in epoch 2
    assert not model.get_layer(WHITEN_BIAS).trainable
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras", safe_mode=True)
    assert np.allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-5)
    assert any(isinstance(layer, ScaledBias) for layer in loaded.layers)


def test_progressive_resolution_trains_the_first_epochs_at_24_px():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 255, (12, 32, 32, 3), dtype=np.uint8)
    options = BatchOptions(num_classes=10, batch_size=4, mean=np.zeros(3), std=np.ones(3))
    ds = make_dataset(x, np.arange(12) % 10, options, training=True, augment=("alt_flip",), low_res_epochs=1)
    sizes = [[tuple(b.shape[1:3]) for b, _ in ds] for _ in range(2)]
    assert sizes == [[(24, 24)] * 3, [(32, 32)] * 3]
    model = build_model(RunSpec(model="airbench_cpu", model_kwargs=TINY, epochs=2, low_res_epochs=1), 10, (32, 32, 3))
    for size in (24, 32):  # the model takes either
        assert model.predict(np.zeros((2, size, size, 3), np.float32), verbose=0).shape == (2, 10)


def test_recipe_settings_are_checked_and_the_presets_take_the_recipe():
    with pytest.raises(UserError, match="airbench family only"):
        RunSpec(model="resnet20", dirac_init=True).validate()
    with pytest.raises(UserError, match="--dirac-init"):
        RunSpec(model="airbench_cpu", model_kwargs={"dirac": True}).validate()
    with pytest.raises(UserError, match="low-resolution"):
        RunSpec(model="airbench_cpu", epochs=4, low_res_epochs=4).validate()
    with pytest.raises(UserError, match="multiplier"):
        RunSpec(model="airbench_cpu", bn_bias_lr=0).validate()
    RunSpec(model="resnet20", lookahead_every=5).validate()  # lookahead works for any model
    for preset in ("fast", "speedrun"):
        spec = load_preset(preset)[0]
        assert (spec.dirac_init, spec.bn_bias_lr, spec.whiten_bias_epochs, spec.lookahead_every) == (True, 64, 3, 5)
    assert "--dirac-init" in spec.to_cli() and "--bn-bias-lr 64.0" in spec.to_cli()


def test_bf16_warning_on_a_cpu_without_bf16_and_the_jobs_cores(tmp_path):
    warning = precision_warning("mixed_bfloat16", on_cpu=True, has_fast_bf16=False)
    assert "AVX-512 BF16" in warning and "float32" in warning
    assert precision_warning("mixed_bfloat16", on_cpu=True, has_fast_bf16=True) == ""
    assert precision_warning("mixed_bfloat16", on_cpu=False, has_fast_bf16=False) == ""
    assert precision_warning("float32", on_cpu=True, has_fast_bf16=False) == ""
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu avx2 fma avx512_bf16\n")
    assert {"avx2", "avx512_bf16"} <= cpu_flags(info)
    assert cpu_flags(tmp_path / "missing") == set()
    # This machine: the warning follows its own flags (the project's CPU has AVX2 only: it warns).
    spec = RunSpec(precision="mixed_bfloat16", gpus=0)
    here = not ({"avx512_bf16", "amx_bf16"} & cpu_flags())
    assert bool(run_warning(spec, gpu_count=0)) == here
    quota = tmp_path / "cpu.max"
    quota.write_text("150000 100000\n")  # 1.5 CPUs of quota
    assert job_cores(quota) == min(2, job_cores(tmp_path / "none"))
    quota.write_text("max 100000\n")
    assert job_cores(quota) == job_cores(tmp_path / "none") >= 1


@pytest.mark.slow  # several traces (24 and 32 px, the freeze, every stored view): tens of seconds
def test_a_run_with_every_piece_trains_through_fit_and_its_checkpoint_loads_with_safe_mode(store):
    from workbench.training.checkpoint import load_checkpoint
    from workbench.training.fit import fit

    spec = RunSpec(
        model="airbench_cpu",
        model_kwargs={"widths": [4, 4, 4]},
        augment=("alt_flip", "translate"),
        epochs=2,
        batch_size=64,
        gpus=0,
        dataset="synthetic",
        dataset_options={"n_train": 256, "n_test": 64, "num_classes": 4},
        **RECIPE | {"lookahead_every": 2, "low_res_epochs": 1},
    ).validate()
    run_id = store.create_run("recipe", spec.to_dict())
    assert fit(spec, store, run_id, devices=[], stop=threading.Event()) == "completed"
    model = load_checkpoint(store.run_dir(run_id))
    assert not model.get_layer(WHITEN_BIAS).trainable  # frozen after its epoch, and saved so
    assert sum(isinstance(layer, ScaledBias) for layer in model.layers) == 7  # 6 BatchNorm biases + whitening
    assert store.get_run(run_id)["test_accuracy"] is not None
