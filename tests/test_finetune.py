"""Fine-tuning: FinetuneSpec validation messages, the layer table, the in-model preprocessing, and real
short two-phase runs (a tiny hub SavedModel made here, and MobileNetV2 with weights=None) into a real store."""

import argparse
import re
import threading
import urllib.error
import urllib.request

import keras
import numpy as np
import pytest

from store import Store
from workbench.errors import UserError
from workbench.specs import FinetuneSpec
from workbench.specs.finetune import BACKBONES
from workbench.specs.flags import add_spec_arguments, spec_from_args
from workbench.training import backbones as finetune
from workbench.training.backbones import build_model, layer_table
from workbench.training.fit import fit

SYNTHETIC = dict(dataset="synthetic", dataset_options={"n_train": 300, "n_test": 60})


@pytest.fixture(scope="module")
def hub_backbone(tmp_path_factory) -> str:
    """A tiny backbone exported as a TF2 SavedModel: serving signature on [None, 32, 32, 3] -> 8x8x16 maps."""
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(inputs)
    x = keras.layers.Conv2D(16, 3, strides=2, padding="same", activation="relu")(x)
    path = tmp_path_factory.mktemp("hub") / "tiny_backbone"
    keras.Model(inputs, x).export(str(path), verbose=False)
    return str(path)


def hub_spec(path, **changes) -> FinetuneSpec:
    return FinetuneSpec.from_dict(
        {
            "backbone": f"hub:{path}",
            "image_size": 32,
            "head_epochs": 1,
            "finetune_epochs": 1,
            "batch_size": 32,
            "dense_units": 32,
            **SYNTHETIC,
            **changes,
        }
    )


def message(spec: FinetuneSpec, tmp_path) -> str:
    """What the job says when it fails on a check that needs the data or the backbone (they run in the
    job's process, not when the spec is queued): the training loop raises it, the runner stores it."""
    with Store(tmp_path / "checks.db") as store:
        spec = spec.validate()
        run_id = store.create_run(spec.display_name(), spec.to_dict(), kind=spec.kind)
        with pytest.raises(UserError) as info:
            fit(spec, store, run_id, devices=[], stop=threading.Event())
        assert store.epochs(run_id) == []
    return str(info.value)


# --- the spec --------------------------------------------------------------------------------


def test_spec_round_trips_through_dict_and_cli():
    spec = FinetuneSpec(
        backbone="inception_v3",
        image_size=96,
        head_epochs=5,
        finetune_epochs=20,
        unfreeze_from=249,
        weights="none",
        train_subset=500,
    )
    data = spec.to_dict()
    assert data["epochs"] == 25 and data["augment"] == ["flip_crop"]
    assert FinetuneSpec.from_dict(data) == spec  # the derived "epochs" key is tolerated
    with pytest.raises(UserError, match=r"unknown fine-tune setting.*learning_rate"):
        FinetuneSpec.from_dict({**data, "learning_rate": 0.1})
    parser = argparse.ArgumentParser()
    add_spec_arguments(parser, FinetuneSpec)
    args = parser.parse_args(
        [
            "--backbone",
            "inception_v3",
            "--size",
            "96",
            "--head-epochs",
            "5",
            "--finetune-epochs",
            "20",
            "--unfreeze-from",
            "249",
            "--weights",
            "none",
            "--train-subset",
            "500",
        ]
    )
    assert spec_from_args(args, FinetuneSpec) == spec
    assert spec.to_cli() == ("python -m workbench finetune --weights none --unfreeze-from 249 --train-subset 500")
    assert FinetuneSpec(head_epochs="3", dropout="0.5").normalized().head_epochs == 3
    assert spec.display_name() == "inception_v3-scratch-96px-5+20ep"


def test_cheap_validation_messages():
    with pytest.raises(UserError, match="image size 64 is below inception_v3's minimum of 75"):
        FinetuneSpec(backbone="inception_v3", image_size=64).validate()
    with pytest.raises(UserError, match="unknown backbone 'resnet18'; choose one of: vgg19, inception_v3"):
        FinetuneSpec(backbone="resnet18").validate()
    with pytest.raises(UserError, match="both 0: nothing to train"):
        FinetuneSpec(head_epochs=0, finetune_epochs=0).validate()
    with pytest.raises(UserError, match="must be >= 0"):
        FinetuneSpec(head_epochs=-1).validate()
    with pytest.raises(UserError, match=re.escape("weights file /nowhere/w.h5 does not exist")):
        FinetuneSpec(weights="/nowhere/w.h5").validate()
    with pytest.raises(UserError, match="hub backbone brings its own weights"):
        FinetuneSpec(backbone="hub:/x", weights="none").validate()
    with pytest.raises(UserError, match="asks for 2 GPU"):
        FinetuneSpec(gpus=2).validate(available_gpus=0)
    assert FinetuneSpec(backbone="VGG19", weights="ImageNet").validate().backbone == "vgg19"


# --- checks in the job, which build the backbone --------------------------------------------------------------


def test_unfreeze_index_out_of_range_and_batch_too_large(tmp_path):
    spec = FinetuneSpec(backbone="mobilenet_v2", weights="none", image_size=32, unfreeze_from=500, **SYNTHETIC)
    assert "unfreeze-from 500 is out of range: mobilenet_v2 at 32px has layers 0..153" in message(spec, tmp_path)
    assert "batch size 400 is larger than the training split" in message(spec.replace(batch_size=400), tmp_path)


def test_bad_weights_files_name_the_file_and_the_backbone(tmp_path):
    garbage = tmp_path / "garbage.weights.h5"
    garbage.write_bytes(b"not an hdf5 file" * 10)
    spec = FinetuneSpec(backbone="mobilenet_v2", weights=str(garbage), image_size=32, **SYNTHETIC)
    assert f"weights file {garbage} does not fit backbone mobilenet_v2" in message(spec, tmp_path)
    other = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    mismatched = tmp_path / "other.weights.h5"
    other.save_weights(mismatched)
    assert f"weights file {mismatched} does not fit backbone mobilenet_v2 at 32x32" in message(
        spec.replace(weights=str(mismatched)), tmp_path
    )


def test_imagenet_weights_offline_say_which_file_to_fetch(tmp_path, monkeypatch):
    from keras.src.utils import file_utils

    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))  # an empty cache
    monkeypatch.setattr(file_utils, "urlretrieve", offline)
    text = message(FinetuneSpec(backbone="mobilenet_v2", image_size=96, **SYNTHETIC), tmp_path)
    fname = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_96_no_top.h5"
    assert "ImageNet weights of mobilenet_v2 are not in Keras' cache" in text
    assert f"{tmp_path / 'keras' / 'models' / fname}" in text and f"~/.keras/models/{fname}" in text
    assert "--weights PATH" in text


def test_unresolvable_hub_handles(tmp_path, monkeypatch):
    assert "cannot resolve the hub backbone" in message(hub_spec(tmp_path / "missing"), tmp_path)

    def offline(*args, **kwargs):
        raise urllib.error.URLError("offline")

    monkeypatch.setenv("TFHUB_CACHE_DIR", str(tmp_path / "hub-cache"))
    monkeypatch.setattr(urllib.request, "urlopen", offline)
    text = message(hub_spec("https://tfhub.dev/google/imagenet/mobilenet_v2_100_96/feature_vector/5"), tmp_path)
    assert "cannot resolve the hub backbone" in text and "hub:/path/to/folder" in text


def test_layer_table_and_defaults():
    rows = layer_table("vgg19", 32)
    default = finetune.unfreeze_index(
        FinetuneSpec(backbone="vgg19"),
        finetune.build_backbone(FinetuneSpec(backbone="vgg19", weights="none", image_size=32)),
    )
    assert rows[default][:3] == (default, "block5_conv1", "Conv2D") and rows[default][3] == 3 * 3 * 512 * 512 + 512
    assert [r[0] for r in rows] == list(range(len(rows)))
    assert BACKBONES["inception_v3"].default_unfreeze == 249 and BACKBONES["inception_v3"].min_size == 75


def test_preprocessing_layers_match_preprocess_input():
    x = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype(np.float32)
    model, _ = build_model(FinetuneSpec(backbone="vgg19", weights="none", image_size=32), 10)
    caffe = keras.Model(model.inputs, model.get_layer("preprocess_caffe").output)
    np.testing.assert_allclose(caffe.predict(x, verbose=0), BACKBONES["vgg19"].preprocess_input(x.copy()), atol=1e-4)
    tf_mode = finetune.preprocessing_layer(FinetuneSpec(backbone="inception_v3"))
    np.testing.assert_allclose(tf_mode(x), BACKBONES["inception_v3"].preprocess_input(x.copy()), atol=1e-5)


# --- real runs ---------------------------------------------------------------------------------


def test_hub_backbone_fine_tunes_through_both_phases(store, hub_backbone):
    spec = hub_spec(hub_backbone).validate()
    run_id = store.create_run(spec.display_name(), spec.to_dict(), kind="finetune", dataset=spec.dataset)
    assert fit(spec, store, run_id, devices=[], stop=threading.Event()) == "completed"
    run = store.get_run(run_id)
    assert run["status"] == "completed" and run["kind"] == "finetune" and run["spec"]["epochs"] == 2
    epochs = store.epochs(run_id)
    assert [e["epoch"] for e in epochs] == [1, 2]
    assert [e["lr"] for e in epochs] == pytest.approx([1e-3, 1e-4])  # RMSprop head, then SGD fine-tune
    assert sorted(store.prediction_splits(run_id)) == ["test", "test_flip", "val", "val_flip"]
    assert store.load_logits(run_id, "test").shape == (60, 10) and store.load_logits(run_id, "val").shape == (30, 10)
    assert run["steps_per_epoch"] == 270 // 32 and run["split_id"].startswith("seed0-") and run["params"] > 0
    # A TFSMLayer model's .keras file does not load in safe mode (it loads an external SavedModel) ...
    with pytest.raises(ValueError, match="TFSMLayer"):
        keras.models.load_model(run["checkpoint_path"], safe_mode=True)
    # ... so resume rebuilds the model from the spec and loads the checkpoint's weights: same logits.
    test_logits = store.load_logits(run_id, "test")
    store.set_status(run_id, "interrupted")
    assert fit(spec, store, run_id, devices=[], stop=threading.Event(), resume=True) == "completed"
    np.testing.assert_allclose(store.load_logits(run_id, "test"), test_logits, atol=1e-4)
    assert [e["epoch"] for e in store.epochs(run_id)] == [1, 2]


def test_cancel_between_phases(store, hub_backbone):
    spec = hub_spec(hub_backbone, head_epochs=1, finetune_epochs=3).validate()
    run_id = store.create_run(spec.display_name(), spec.to_dict(), kind="finetune")
    stop = threading.Event()
    log_epoch = store.log_epoch

    def log_and_cancel(*args, **kwargs):
        log_epoch(*args, **kwargs)
        stop.set()

    store.log_epoch = log_and_cancel
    assert fit(spec, store, run_id, devices=[], stop=stop) == "cancelled"
    assert [e["epoch"] for e in store.epochs(run_id)] == [1]
    assert store.get_run(run_id)["status"] == "cancelled" and store.prediction_splits(run_id) == []
    # Resume from the checkpoint at the phase boundary: straight into phase 2, numbering continues.
    store.log_epoch = log_epoch
    assert fit(spec, store, run_id, devices=[], stop=threading.Event(), resume=True) == "completed"
    assert [(e["epoch"], e["lr"]) for e in store.epochs(run_id)] == [
        (1, pytest.approx(1e-3)),
        (2, pytest.approx(1e-4)),
        (3, pytest.approx(1e-4)),
        (4, pytest.approx(1e-4)),
    ]


@pytest.mark.slow  # ~35 s (a real MobileNetV2); both phases run by default in test_hub_backbone_fine_tunes_...
def test_mobilenet_v2_phase_two_trains_exactly_the_layers_from_the_unfreeze_index(store):
    spec = FinetuneSpec(
        backbone="mobilenet_v2",
        weights="none",
        image_size=32,
        head_epochs=1,
        finetune_epochs=1,
        train_subset=100,
        batch_size=50,
        dense_units=32,
        **SYNTHETIC,
    ).validate()
    run_id = store.create_run(spec.display_name(), spec.to_dict(), kind="finetune")
    assert fit(spec, store, run_id, devices=[], stop=threading.Event()) == "completed"
    run = store.get_run(run_id)
    assert [e["epoch"] for e in store.epochs(run_id)] == [1, 2]
    assert sorted(store.prediction_splits(run_id)) == ["test", "test_flip", "val", "val_flip"]
    model = keras.models.load_model(run["checkpoint_path"], safe_mode=True)  # phase 2's trainability is saved
    backbone = next(layer for layer in model.layers if isinstance(layer, keras.Model))
    start = backbone.layers.index(backbone.get_layer("block_16_expand"))
    expected = [
        layer.name
        for layer in backbone.layers[start:]
        if layer.weights and not isinstance(layer, keras.layers.BatchNormalization)
    ]
    assert expected == ["block_16_expand", "block_16_depthwise", "block_16_project", "Conv_1"]
    assert [layer.name for layer in backbone.layers if layer.trainable and layer.weights] == expected
    head = ["head_dense", "logits"]
    assert {v.path.split("/")[0] for v in model.trainable_variables} == set(expected + head)
