"""A completed run's model, exported with its preprocessing, to take away.

    path = export_model(store, 7, "tflite", "run-7.tflite")   # and run-7.json beside it

Formats: `keras` (a `.keras` file), `savedmodel` (a folder, Keras 3's export: endpoints `serve` for float32
and `serve_uint8` for uint8 images), `tflite` (converted from a SavedModel: the TFLite converter's route
for Keras 3 models) and `onnx` (through tf2onnx's
`from_function`, when tf2onnx is installed). Every format holds the same model: RGB images of the
dataset's size (32x32 for CIFAR) as 0..255 float32 (uint8 pixels cast to float: Keras does it itself,
the other runtimes need `.astype("float32")`) in, logits out. Inside it, before the trained model, is
what the training pipeline did to the pixels: the training split's per-channel normalisation (a
1x1 depthwise convolution) for a scratch run, the bilinear resize to the run's size for a fine-tune (whose
model already preprocesses 0..255 itself). `metadata_path(path)` is a JSON file with the class names,
that preprocessing, the input and output, the run's test accuracy and its whole spec.
A model a format cannot hold is refused with the converter's reason; the other formats still work.
"""

import json
import shutil
import tempfile
import zipfile
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from workbench.constants import RunKind
from workbench.errors import UserError
from workbench.predict.models import ModelCache, completed_run

FORMATS = ("keras", "savedmodel", "tflite", "onnx")
SUFFIXES = {"keras": ".keras", "savedmodel": "-savedmodel", "tflite": ".tflite", "onnx": ".onnx"}
INPUT_NAME = "images"


def default_output(run_id: int, fmt: str) -> Path:
    return Path(f"run-{int(run_id)}{SUFFIXES[fmt]}")


def metadata_path(path) -> Path:
    """The JSON beside an exported model: run-7.keras -> run-7.json, run-7-savedmodel/ -> run-7-savedmodel.json."""
    path = Path(path)
    return path.with_name((path.stem if path.suffix in SUFFIXES.values() else path.name) + ".json")


def wrapped_model(loaded):
    """The run's model behind its preprocessing: 0..255 float32 [N, H, W, 3] in, float32 logits out."""
    pre = loaded.preprocessing
    inputs = keras.Input(shape=tuple(pre.image_shape), dtype="float32", name=INPUT_NAME)
    x = inputs
    if pre.mean is not None:
        # (x - mean) / std per channel as a 1x1 depthwise convolution (weights 1/std, bias -mean/std): its
        # constants are variables, which every converter freezes. Keras' Normalization layer holds them as
        # captured tensors, which tf2onnx leaves as model inputs ("Required inputs ... are missing").
        normalise = keras.layers.DepthwiseConv2D(1, use_bias=True, trainable=False, name="normalise")
        x = normalise(x)
        std = np.asarray(pre.std, np.float32)
        normalise.set_weights([(1 / std).reshape(1, 1, -1, 1), -np.asarray(pre.mean, np.float32) / std])
    if pre.resize_to:
        x = keras.layers.Resizing(pre.resize_to, pre.resize_to, interpolation="bilinear", name="resize")(x)
    logits = loaded.model(x)
    logits = keras.layers.Activation("linear", dtype="float32", name="logits")(logits)  # float32 under mixed precision
    return keras.Model(inputs, logits, name=f"run{loaded.run['id']}_{loaded.model.name}")


def metadata(loaded) -> dict:
    pre, run = loaded.preprocessing, loaded.run
    return {
        "run": run["id"],
        "name": run["name"],
        "kind": run.get("kind") or RunKind.SCRATCH.value,
        "input": {
            "name": INPUT_NAME,
            "shape": [None, *pre.image_shape],
            "dtype": "float32",
            "values": (
                "RGB pixels 0..255 (uint8 images cast to float32; the SavedModel also has serve_uint8); "
                "no normalisation needed"
            ),
        },
        "output": {"shape": [None, len(pre.class_names)], "values": "logits; softmax gives probabilities"},
        "class_names": list(pre.class_names),
        "preprocessing_inside": pre.to_dict(),
        "test_accuracy": run.get("test_accuracy"),
        "spec": run["spec"],
        # a distillation run's teacher: the name given and the runs (with weights) it resolved to
        **(
            {"teacher": {"name": run["spec"].get("teacher"), "members": run["spec"].get("teacher_members")}}
            if run.get("kind") == RunKind.DISTILL
            else {}
        ),
    }


def _refuse(loaded, fmt, exc) -> UserError:
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
    return UserError(
        f"run {loaded.run['id']}'s model ({loaded.model.name}) cannot be exported as {fmt}: "
        f"{type(exc).__name__}: {first}; the other formats may still work"
    )


def _savedmodel(model, folder: Path):
    """Keras' export with two endpoints: `serve` (also `serving_default`) takes float32 0..255 images,
    `serve_uint8` takes uint8 ones."""
    shape = [None, *model.inputs[0].shape[1:]]
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        "serve",
        lambda images: model(images, training=False),
        input_signature=[tf.TensorSpec(shape, tf.float32, name=INPUT_NAME)],
    )
    archive.add_endpoint(
        "serve_uint8",
        lambda images: model(tf.cast(images, tf.float32), training=False),
        input_signature=[tf.TensorSpec(shape, tf.uint8, name=INPUT_NAME)],
    )
    archive.write_out(str(folder), verbose=False)


def _tflite(model, path: Path):
    with tempfile.TemporaryDirectory(prefix="workbench-tflite-") as tmp:
        model.export(str(Path(tmp) / "saved"), format="tf_saved_model", verbose=False)  # one signature
        converter = tf.lite.TFLiteConverter.from_saved_model(str(Path(tmp) / "saved"))
        path.write_bytes(converter.convert())


def _onnx(model, path: Path):
    try:
        import tf2onnx  # noqa: PLC0415 - ONNX: optional, and seconds to import; only this format needs it
    except ImportError:
        raise UserError(
            "the onnx format needs tf2onnx (pip install tf2onnx onnx; onnxruntime to run it); it is not installed here"
        ) from None
    spec = tf.TensorSpec([None, *model.inputs[0].shape[1:]], tf.float32, name=INPUT_NAME)
    function = tf.function(lambda images: model(images, training=False))
    tf2onnx.convert.from_function(function, input_signature=[spec], opset=17, output_path=str(path))


WRITERS = {"keras": lambda model, path: model.save(path), "savedmodel": _savedmodel, "tflite": _tflite, "onnx": _onnx}


def _check_output(path: Path, fmt: str) -> None:
    if not path.parent.exists():
        raise UserError(f"folder {path.parent} does not exist; create it or choose another --output")
    if fmt == "keras" and path.suffix != ".keras":
        raise UserError(f"Keras saves only to a file ending in .keras; got {path.name}")
    if fmt == "savedmodel" and path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise UserError(f"{path} exists and is not an empty folder; a SavedModel is written into a new folder")


def export_model(store, run_id: int, fmt: str, output=None, *, models: ModelCache | None = None) -> Path:
    """Write run `run_id`'s model in format `fmt` to `output` (default run-N.keras, run-N-savedmodel,
    run-N.tflite, run-N.onnx) and its JSON to `metadata_path(output)`; returns the model's path."""
    if fmt not in FORMATS:
        raise UserError(f"unknown model format {fmt!r}; choose {', '.join(FORMATS)}")
    run = completed_run(store, run_id)
    path = Path(output) if output else default_output(run["id"], fmt)
    _check_output(path, fmt)
    loaded = (models or ModelCache(store, size=1)).get(run["id"])
    try:
        WRITERS[fmt](wrapped_model(loaded), path)
    except UserError:
        raise
    except Exception as exc:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        raise _refuse(loaded, fmt, exc) from None
    metadata_path(path).write_text(json.dumps(metadata(loaded), indent=2))
    return path


def export_zip(store, run_id: int, fmt: str, folder, *, models: ModelCache | None = None) -> Path:
    """The model and its JSON as one zip in `folder` (the Runs tab's download): run-N-FORMAT.zip."""
    folder = Path(folder)
    work = Path(tempfile.mkdtemp(prefix="export-", dir=folder))
    path = export_model(store, run_id, fmt, work / default_output(run_id, fmt), models=models)
    archive = folder / f"run-{int(run_id)}-{fmt}.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bundle:
        for item in [path, *sorted(path.rglob("*"))] if path.is_dir() else [path]:
            if item.is_file():
                bundle.write(item, item.relative_to(work))
        bundle.write(metadata_path(path), metadata_path(path).relative_to(work))
    shutil.rmtree(work, ignore_errors=True)
    return archive
