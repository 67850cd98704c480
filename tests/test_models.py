"""The model zoo: every registered model builds, trains a step, serializes; counts match the papers."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from models import count_params, create_model, list_families, list_models, model_info, paper_match
from models.registry import register_family
from models.resnet import resnet
from models.vgg import vgg
from workbench.errors import UserError

REQUIRED = [
    "lenet",
    "nin",
    "vgg19_bn",
    "resnet20",
    "resnet32",
    "resnet44",
    "resnet56",
    "resnet110",
    "wrn_16_8",
    "wrn_28_10",
    "wrn_40_4",
    "resnext29_4x64d",
    "resnext29_8x64d",
    "resnext29_16x64d",
    "se_resnext29_4x64d",
    "se_resnet56",
    "densenet_bc_100_12",
    "densenet_bc_160_24",
    "densenet_bc_190_40",
    "densenet_bc_250_24",
]
# The figures the papers print (10 classes), in parameters.
PAPER_PARAMS = {
    "resnet20": 0.27e6,
    "resnet110": 1.7e6,
    "wrn_16_8": 11.0e6,
    "wrn_28_10": 36.5e6,
    "resnext29_8x64d": 34.4e6,
    "resnext29_16x64d": 68.1e6,
    "densenet_bc_100_12": 0.8e6,
    "densenet_bc_190_40": 25.6e6,
    "densenet_bc_250_24": 15.3e6,
}
# Exact counts of the reference implementations (option-A ResNet-20, WRN-28-10, DenseNet-BC-100-12).
REFERENCE_COUNTS = {"resnet20": 269_722, "wrn_28_10": 36_479_194, "densenet_bc_100_12": 769_162}
NUM_CLASSES = 5
# Full-size builds of over a minute on 2 loaded cores: their counts are checked with `-m slow`; every
# family keeps at least one full-size count in the default suite.
SLOW_COUNTS = {"resnet110", "resnext29_16x64d", "densenet_bc_190_40", "densenet_bc_250_24"}


def distinct_tiny_models() -> list:
    """One name per distinct tiny model: a family's variants differ in options their tiny configuration
    overrides (resnet20 and resnet110 are both depth 8 there), so each other variant would build the very
    same model again. Every name still has its registry entry checked by test_model_info."""
    first = {}
    for name in list_models():
        info = model_info(name)
        first.setdefault((info["family"], json.dumps({**info["defaults"], **info["tiny"]}, sort_keys=True)), name)
    return sorted(first.values())


@pytest.fixture(autouse=True)
def _fresh_session():
    yield
    keras.backend.clear_session(free_memory=False)  # fresh layer-name counters; gc only where big


def tiny(name, **kwargs):
    """Build `name` in its tiny configuration with a small input."""
    info = model_info(name)
    size = max(16, info["min_input_size"])
    return create_model(name, num_classes=NUM_CLASSES, input_shape=(size, size, 3), **{**info["tiny"], **kwargs})


def batch(model, n=2, seed=0):
    return np.random.default_rng(seed).normal(size=(n, *model.input_shape[1:])).astype("float32")


def kernels(model):
    return [layer for layer in model.layers if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense))]


# ------------------------------------------------------------------------------------------------- registry


def test_registry_lists_required_models_sorted():
    names = list_models()
    assert names == sorted(names)
    assert not set(REQUIRED) - set(names)
    assert set(list_families()) == {
        "lenet",
        "nin",
        "vgg",
        "resnet",
        "wide_resnet",
        "resnext",
        "densenet_bc",
        "airbench",
    }


@pytest.mark.parametrize("name", list_models())
def test_model_info(name):
    info = model_info(name)
    for key in ("family", "defaults", "options", "paper_params", "paper", "tiny"):
        assert key in info
    assert set(info["defaults"]) <= set(info["options"])
    assert set(info["tiny"]) <= set(info["options"])
    assert "weight_decay" in info["options"] and info["options"]["weight_decay"] == 0.0
    assert not {"num_classes", "input_shape", "name"} & set(info["options"])
    assert info["paper"]
    info["defaults"]["depth"] = -1  # a copy: changing it does not change the registry
    assert model_info(name)["defaults"].get("depth") != -1


def test_variants_are_configurations_of_one_builder():
    assert model_info("resnet56")["defaults"] == {"depth": 56}
    assert model_info("se_resnet56")["defaults"] == {"depth": 56, "se": True}
    assert model_info("wrn_28_10")["defaults"] == {"depth": 28, "widen_factor": 10}
    assert model_info("resnext29_16x64d")["options"]["depth"] == 29
    assert model_info("densenet_bc_190_40")["paper_params"] == 25.6e6


# ------------------------------------------------------------------------- every model, tiny configuration


@pytest.mark.parametrize("name", distinct_tiny_models())
def test_tiny_model_trains_and_serializes(name, tmp_path):
    model = tiny(name)
    x = batch(model)
    logits = model(x, training=False)
    assert tuple(logits.shape) == (2, NUM_CLASSES)
    assert logits.dtype == tf.float32
    assert np.all(np.isfinite(logits))

    with tf.GradientTape() as tape:
        out = model(x, training=True)
        loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(np.array([0, 1]), out, from_logits=True))
    grads = tape.gradient(loss, model.trainable_weights)
    assert grads and all(g is not None for g in grads)
    assert all(np.all(np.isfinite(g)) for g in grads)

    expected = model(x, training=False).numpy()
    clone = keras.Model.from_config(model.get_config())
    clone.set_weights(model.get_weights())
    np.testing.assert_allclose(clone(x, training=False).numpy(), expected, rtol=1e-5, atol=1e-5)

    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(loaded(x, training=False).numpy(), expected, rtol=1e-5, atol=1e-5)
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]


@pytest.mark.parametrize("name", distinct_tiny_models())
def test_outputs_are_logits_from_a_float32_layer(name):
    last = tiny(name).layers[-1]
    assert last.dtype_policy.compute_dtype == "float32"
    if isinstance(last, keras.layers.Dense):
        assert last.activation is keras.activations.linear
    elif isinstance(last, keras.layers.Rescaling):  # airbench: the linear head's output scaled (1/9)
        assert isinstance(tiny(name).get_layer("head"), keras.layers.Dense)
    else:  # NIN: the class maps of a linear 1x1 conv, globally averaged
        assert isinstance(last, keras.layers.GlobalAveragePooling2D)


@pytest.mark.parametrize("name", ["resnet20", "resnext29_4x64d", "nin"])
def test_mixed_precision_logits_are_float32(name):
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = tiny(name)
        assert model.get_layer(index=3).compute_dtype == "bfloat16"
        assert model(batch(model), training=False).dtype == tf.float32
    finally:
        keras.mixed_precision.set_global_policy("float32")


# ------------------------------------------------------------------------------------------- weight decay


@pytest.mark.parametrize(
    "name",
    ["lenet", "nin", "vgg19_bn", "resnet20", "se_resnet56", "wrn_16_8", "se_resnext29_4x64d", "densenet_bc_100_12"],
)
def test_weight_decay_on_conv_and_dense_kernels_only(name):
    model = tiny(name, weight_decay=5e-4)
    assert len(model.losses) == len(kernels(model)) > 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            assert layer.beta_regularizer is None and layer.gamma_regularizer is None
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)):
            assert layer.bias_regularizer is None
    # L2(wd / 2): the penalty is wd/2 * sum(w^2), whose gradient is wd * w as in the papers' SGD.
    expected = sum(2.5e-4 * float(np.sum(layer.kernel.numpy() ** 2)) for layer in kernels(model))
    assert float(sum(model.losses)) == pytest.approx(expected, rel=1e-4)
    keras.backend.clear_session()
    assert len(tiny(name).losses) == 0


# -------------------------------------------------------------------------------- papers' parameter counts


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW_COUNTS else n for n in sorted(PAPER_PARAMS)]
)
def test_parameter_counts_match_papers(name):
    assert model_info(name)["paper_params"] == PAPER_PARAMS[name]
    params = count_params(create_model(name))
    keras.backend.clear_session()  # frees the full-size weights (gc)
    if name in REFERENCE_COUNTS:
        assert params == REFERENCE_COUNTS[name]
    pct, ok = paper_match(params, PAPER_PARAMS[name])
    if name == "densenet_bc_100_12":  # 769,162 is printed as "0.8M" (-3.9%): within the paper's rounding
        assert ok and abs(pct) < 5
    else:
        assert abs(pct) <= 2, f"{name}: {params:,} vs paper {PAPER_PARAMS[name]:,.0f} ({pct:+.1f}%)"


def test_option_knobs_change_the_model():
    base = count_params(tiny("resnet20"))
    assert count_params(tiny("resnet20", shortcut="projection")) > base
    assert count_params(tiny("resnet20", se=True)) > base
    assert count_params(tiny("resnext29_8x64d", cardinality=4)) != count_params(tiny("resnext29_8x64d"))
    assert count_params(tiny("densenet_bc_100_12", compression=1.0)) > count_params(tiny("densenet_bc_100_12"))
    assert count_params(tiny("densenet_bc_100_12", depth=7, bottleneck=False)) > 0
    assert any(isinstance(layer, keras.layers.Dropout) for layer in tiny("wrn_28_10", dropout=0.3).layers)
    assert create_model("resnet20").name == "resnet20"
    assert count_params(tiny("resnet20", depth=np.int64(8), base_width=np.int64(4))) == base  # numpy ints pass


# ----------------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "name, kwargs, expected",
    [
        ("resnet21", {}, ["unknown model 'resnet21'", "resnet20", "wrn_28_10"]),
        ("resnet20", {"widen_factor": 2}, ["widen_factor", "resnet20", "depth", "base_width", "se"]),
        ("resnet20", {"depth": 0}, ["6n+2", "20, 32", "got 0"]),
        ("resnet20", {"depth": -8}, ["6n+2", "got -8"]),
        ("resnet20", {"depth": 21}, ["6n+2", "got 21"]),
        ("resnet20", {"depth": 20.0}, ["6n+2"]),
        ("resnet20", {"base_width": 0}, ["base_width must be a positive integer"]),
        ("resnet20", {"shortcut": "conv"}, ["unknown shortcut 'conv'", "identity, projection"]),
        ("wrn_28_10", {"depth": 27}, ["6n+4", "28", "got 27"]),
        ("wrn_28_10", {"widen_factor": 0}, ["widen_factor must be a positive number"]),
        ("wrn_28_10", {"dropout": 1.0}, ["dropout must be a number in [0, 1)"]),
        ("resnext29_8x64d", {"depth": 30}, ["9n+2", "29", "got 30"]),
        ("resnext29_8x64d", {"cardinality": 0}, ["cardinality must be a positive integer"]),
        ("resnext29_8x64d", {"base_width": -4}, ["base_width must be a positive integer"]),
        ("densenet_bc_100_12", {"depth": 101}, ["(depth - 4) divisible by 6", "100, 160", "got 101"]),
        ("densenet_bc_100_12", {"depth": -2}, ["depth must be a positive integer"]),
        ("densenet_bc_100_12", {"growth_rate": 0}, ["growth_rate must be a positive integer"]),
        ("densenet_bc_100_12", {"compression": 0}, ["compression must be a number in (0, 1]"]),
        ("vgg19_bn", {"depth": 17}, ["11, 13, 16, 19", "got 17"]),
        ("vgg19_bn", {"input_shape": (16, 16, 3)}, ["height and width >= 32"]),
        ("lenet", {"width": 0}, ["width must be a positive number"]),
        ("lenet", {"input_shape": (12, 12, 3)}, ["height and width >= 16"]),
        ("nin", {"batch_norm": "yes"}, ["batch_norm must be true or false"]),
        ("resnet20", {"weight_decay": -1e-4}, ["weight_decay must be a number >= 0"]),
        ("resnet20", {"num_classes": 1}, ["num_classes must be an integer >= 2", "got 1"]),
        ("resnet20", {"num_classes": 2.5}, ["num_classes must be an integer >= 2"]),
        ("resnet20", {"input_shape": (32, 32)}, ["(height, width, channels)", "height and width >= 8"]),
        ("resnet20", {"input_shape": (4, 4, 3)}, ["height and width >= 8", "(4, 4, 3)"]),
        ("resnet20", {"input_shape": (32, 32, 0)}, ["channels >= 1"]),
        ("resnet20", {"input_shape": "32x32"}, ["(height, width, channels)"]),
        ("lenet", {"activation": "sigmoid"}, ["unknown activation 'sigmoid'", "relu, tanh"]),
        ("vgg19_bn", {"dropout": 1.0}, ["dropout must be a number in [0, 1)"]),
        ("vgg19_bn", {"width": 2.5}, ["width must be a positive integer"]),
        ("resnext29_8x64d", {"se": 1}, ["se must be true or false"]),
        ("se_resnext29_4x64d", {"se_reduction": 0}, ["se_reduction must be a positive integer"]),
        ("densenet_bc_100_12", {"bottleneck": False, "depth": 101}, ["bottleneck=False", "divisible by 3"]),
    ],
)
def test_bad_input_raises_user_error(name, kwargs, expected):
    with pytest.raises(UserError) as excinfo:
        create_model(name, **kwargs)
    for text in expected:
        assert text in str(excinfo.value), f"{text!r} not in {str(excinfo.value)!r}"


def test_builders_check_their_arguments_when_called_directly():
    with pytest.raises(UserError, match=r"ResNet depth must be 6n\+2"):
        resnet(depth=21)
    with pytest.raises(UserError, match="height and width >= 32"):  # the family's min_input_size
        vgg(input_shape=(16, 16, 3))


def test_every_builder_argument_has_one_checker():
    def builder(num_classes=10, input_shape=(32, 32, 3), *, knob=1, dropout=0.0, weight_decay=0.0, name="x"):
        raise AssertionError("never built")

    with pytest.raises(RuntimeError, match=r"no checker for \['knob'\]"):
        register_family("unchecked", paper="-", tiny={})(builder)
    with pytest.raises(RuntimeError, match=r"own checkers of shared options: \['dropout'\]"):
        register_family("twice_checked", paper="-", tiny={}, checks={"knob": int, "dropout": float})(builder)
    assert not {"unchecked", "twice_checked"} & set(list_families())


def test_unknown_model_name_in_model_info():
    with pytest.raises(UserError, match=r"choose one of: .*densenet_bc_100_12"):
        model_info("resnet-20")
