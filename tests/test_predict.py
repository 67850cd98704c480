"""Predictions on pictures and exported models, from two tiny runs really trained into a real store:
the same logits as the run's own evaluation, ensembles as saved, refused uploads, and every export
format loaded by its own runtime giving the stored top-1."""

import json
import os
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from store import Store
from workbench.cli.main import main
from workbench.ensemble import lab
from workbench.ensemble.calibration import softmax
from workbench.errors import UserError
from workbench.inspect import sources as sv
from workbench.jobs.queue import JobQueue
from workbench.predict import images as pictures_io
from workbench.predict.export import metadata_path
from workbench.predict.models import ModelCache, Preprocessing, preprocessing_of
from workbench.predict.service import Predictor, parse_indices
from workbench.specs.run import RunSpec
from workbench.training.checkpoint import CHECKPOINT, PREPROCESSING

TINY = dict(
    model="lenet",
    model_kwargs={"width": 0.5},
    dataset="synthetic",
    dataset_options={"n_train": 300, "n_test": 40},
    batch_size=50,
    learning_rate=0.05,
    schedule="cosine",
)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(db path, store): runs 1 and 2 completed (one epoch each); ensemble 1 of both, temperatures and flip TTA on."""
    db = tmp_path_factory.mktemp("predict") / "runs" / "workbench.db"
    with Store(db) as store:
        queue = JobQueue(store, devices=[], isolate=False)
        for epochs, seed in ((1, 0), (1, 1)):
            run_id = queue.submit(RunSpec.from_dict({**TINY, "epochs": epochs, "seed": seed, "name": f"tiny-{seed}"}))
            assert queue.wait(run_id, timeout=300)
            assert store.get_run(run_id)["status"] == "completed", store.get_run(run_id)["error"]
        queue.shutdown()
        members = lab.Lab(store).load([1, 2])
        settings = lab.Settings(tta=True, temperature=True)
        lab.save(store, members, lab.score(members, [1, 0.5], settings), settings, "pair")
        yield db, store


def test_a_runs_predictions_are_its_stored_logits_with_a_map_each(trained):
    _, store = trained
    predictor = Predictor(store)
    assert {key for _, key in predictor.choices()} == {"run:1", "run:2", "ensemble:1"}
    checkpoint = store.run_dir(2) / CHECKPOINT  # without it, run 2 and the ensemble it is in cannot predict
    checkpoint.rename(checkpoint.with_suffix(".away"))
    try:
        assert {key for _, key in predictor.choices()} == {"run:1"}
    finally:
        checkpoint.with_suffix(".away").rename(checkpoint)
    pictures, true = predictor.test_images("run:1", range(6))
    results = predictor.predict("run:1", pictures, true)
    stored = softmax(store.load_logits(1, "test")[:6].astype(np.float64))
    for result, expected, label in zip(results, stored, store.load_labels(1, "test")[:6]):
        ((_, probs),) = result.probs
        np.testing.assert_allclose(probs, expected, atol=1e-5)
        assert result.true_class == result.class_names[label] == f"pattern_{label}"
        ((caption, rgb),) = result.overlays
        assert rgb.shape == (224, 224, 3) and rgb.dtype == np.uint8
        assert caption.startswith(f"run 1: tiny-0: {result.class_names[int(np.argmax(expected))]}")
        assert [c for c, _ in result.top5()[0][1]] == [result.class_names[i] for i in np.argsort(-expected)[:5]]
    # cached by run and checkpoint time: the same model until the checkpoint changes
    first = predictor.models.get(1)
    assert predictor.models.get(1) is first
    checkpoint = store.run_dir(1) / CHECKPOINT
    os.utime(checkpoint, ns=(checkpoint.stat().st_atime_ns, checkpoint.stat().st_mtime_ns + 10**9))
    assert predictor.models.get(1) is not first and len(predictor.models) == 1


def test_an_ensemble_predicts_as_saved_with_each_member(trained):
    _, store = trained
    predictor = Predictor(store)
    pictures, true = predictor.test_images("ensemble:1", [0, 5, 9])
    results = predictor.predict("ensemble:1", pictures, true)
    browsed = sv.load_source(store, lab.Lab(store), "ensemble:1", "test")  # what the Errors tab shows
    for result, row in zip(results, (0, 5, 9)):
        assert [label for label, _ in result.probs] == ["ensemble 1: pair", "member 1: tiny-0", "member 2: tiny-1"]
        np.testing.assert_allclose(result.probs[0][1], browsed.probs[row], atol=1e-5)
        np.testing.assert_allclose(result.probs[1][1], browsed.members[1][row], atol=1e-5)
        assert len(result.overlays) == 2


def test_preprocessing_is_rebuilt_for_runs_trained_before_it_was_stored(trained):
    _, store = trained
    path = store.run_dir(2) / PREPROCESSING
    written = preprocessing_of(store, store.get_run(2))
    saved = path.read_text()
    path.unlink()
    try:
        rebuilt = preprocessing_of(store, store.get_run(2))
    finally:
        path.write_text(saved)
    assert rebuilt.class_names == written.class_names and rebuilt.resize_to is None
    np.testing.assert_allclose(rebuilt.mean, written.mean, rtol=1e-6)
    np.testing.assert_allclose(rebuilt.std, written.std, rtol=1e-6)


def _png_header_only(path, width, height):
    """A PNG whose header claims width x height pixels, with one tiny compressed row: an image bomb's shape."""

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")
    )
    return path


def test_uploads_any_size_and_what_is_refused(tmp_path):
    photo = tmp_path / "wide.jpg"
    Image.new("RGB", (300, 120), (200, 30, 30)).save(photo)
    picture = pictures_io.read_upload(photo, 32)
    assert picture.pixels.shape == (32, 32, 3) and picture.display.shape == (224, 224, 3)
    assert abs(int(picture.pixels[16, 16, 0]) - 200) < 8
    text = tmp_path / "notes.png"
    text.write_text("not a picture")
    big = tmp_path / "big.png"
    with big.open("wb") as handle:
        handle.truncate(pictures_io.MAX_FILE_BYTES + 1)
    truncated = tmp_path / "cut.jpg"
    truncated.write_bytes(photo.read_bytes()[:200])
    bomb = _png_header_only(tmp_path / "bomb.png", 8_000, 8_000)  # over our limit, under PIL's
    pil_bomb = _png_header_only(tmp_path / "huge.png", 50_000, 50_000)  # over PIL's own
    good, refusals = pictures_io.read_uploads([photo, text, big, truncated, bomb, pil_bomb], 32)
    assert [p.name for p in good] == ["wide.jpg"]
    assert "notes.png is not an image" in refusals[0]
    assert "big.png is 20.0 MB; pictures up to 20 MB" in refusals[1]
    assert "cut.jpg is a damaged or truncated image" in refusals[2]
    assert "bomb.png is 8,000 x 8,000 pixels; pictures up to 40 megapixels" in refusals[3]
    assert "huge.png decodes to more pixels than PIL allows" in refusals[4]
    with pytest.raises(UserError, match="at most 16"):
        pictures_io.read_uploads([photo] * 17)
    assert parse_indices("3, 17 40-42") == [3, 17, 40, 41, 42]
    with pytest.raises(UserError, match="not a test image index"):
        parse_indices("cat")
    assert not list(tmp_path.glob("*.tmp")) and len(list(tmp_path.iterdir())) == 6  # nothing written


def _runtime_logits(fmt, path, x):
    """Logits of float32 0..255 images from an exported model, loaded by the format's own runtime."""
    if fmt == "keras":
        import keras

        return np.asarray(keras.saving.load_model(path, safe_mode=True)(x))
    if fmt == "savedmodel":
        import tensorflow as tf

        loaded = tf.saved_model.load(str(path))  # kept: its functions' variables live as long as it does
        as_uint8 = loaded.serve_uint8(tf.constant(x.astype(np.uint8))).numpy()
        np.testing.assert_array_equal(as_uint8, loaded.serve(tf.constant(x)).numpy())
        return as_uint8
    if fmt == "tflite":
        import tensorflow as tf

        interpreter = tf.lite.Interpreter(model_path=str(path))
        interpreter.resize_tensor_input(interpreter.get_input_details()[0]["index"], x.shape)
        interpreter.allocate_tensors()
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
        interpreter.invoke()
        return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    onnxruntime = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


@pytest.mark.parametrize("fmt", ["keras", "savedmodel", "tflite", "onnx"])
def test_each_export_format_gives_the_stored_top1_in_its_own_runtime(trained, tmp_path, fmt, capsys):
    if fmt == "onnx":
        pytest.importorskip("tf2onnx", reason="tf2onnx is not installed")
    db, store = trained
    output = tmp_path / {"keras": "m.keras", "savedmodel": "m-savedmodel", "tflite": "m.tflite", "onnx": "m.onnx"}[fmt]
    assert main(["--db", str(db), "export", "1", "--format", fmt, "--output", str(output)]) == 0
    assert f"wrote {output}" in capsys.readouterr().out
    images = sv.split_images(store, 1, "test", {})
    stored = store.load_logits(1, "test")
    logits = _runtime_logits(fmt, output, images.astype(np.float32))  # 0..255, no normalisation
    ordered = np.sort(stored, axis=1)
    clear = ordered[:, -1] - ordered[:, -2] > 1e-3  # leave out near-ties, where float rounding may swap
    assert clear.sum() >= 30
    assert np.array_equal(logits.argmax(1)[clear], stored.argmax(1)[clear])
    np.testing.assert_allclose(logits, stored, atol=1e-3)
    info = json.loads(metadata_path(output).read_text())
    assert info["class_names"] == [f"pattern_{i}" for i in range(10)] and info["spec"]["model"] == "lenet"
    assert info["input"]["shape"] == [None, 32, 32, 3] and len(info["preprocessing_inside"]["mean"]) == 3


def test_export_refusals_are_one_line(trained, tmp_path, capsys):
    db, store = trained
    spec = RunSpec.from_dict({**TINY, "epochs": 1, "name": "never trained"})
    store.create_run(spec.name, spec.to_dict())
    assert main(["--db", str(db), "export", "3", "--format", "keras", "-o", str(tmp_path / "x.keras")]) == 2
    assert "run 3 is queued; only completed runs can predict or be exported" in capsys.readouterr().err
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("mine")
    assert main(["--db", str(db), "export", "1", "--format", "savedmodel", "-o", str(full)]) == 2
    assert "is not an empty folder" in capsys.readouterr().err and (full / "keep.txt").exists()
    assert main(["--db", str(db), "export", "1", "--format", "keras", "-o", str(tmp_path / "x.h5")]) == 2
    store.delete_run(3)


def test_a_fine_tunes_export_resizes_before_its_model():
    """The exported wrapper resizes to the run's size as the pipeline did (no normalisation: the fine-tune
    model preprocesses 0..255 itself)."""
    import keras

    from workbench.predict.export import wrapped_model
    from workbench.predict.models import LoadedModel

    inputs = keras.Input((48, 48, 3))
    inner = keras.Model(
        inputs, keras.layers.Dense(4)(keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(2, 3)(inputs)))
    )
    pre = Preprocessing(None, None, 48, (32, 32, 3), ("a", "b", "c", "d"))
    loaded = LoadedModel({"id": 9, "name": "ft", "spec": {}}, inner, pre)
    x = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(wrapped_model(loaded)(x)), loaded.logits(x), atol=1e-4)
    assert ModelCache(None).size >= 1


def test_grad_cam_of_a_nested_backbone():
    """A fine-tune's last block is a nested model (its backbone), whose `.output` is its own graph's: the
    map is taken from the chain of layers instead, and is the same as a flat model's."""
    import keras

    from workbench.predict.gradcam import GradCam

    keras.utils.set_random_seed(0)
    image = keras.Input((16, 16, 3))
    conv = keras.layers.Conv2D(4, 3, padding="same", activation="relu")
    backbone = keras.Model(image, conv(image), name="backbone")
    pool, dense = keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3)
    outer_in = keras.Input((16, 16, 3))
    nested = keras.Model(outer_in, dense(pool(backbone(outer_in))))
    flat_in = keras.Input((16, 16, 3))
    flat = keras.Model(flat_in, dense(pool(conv(flat_in))))  # the same layers, one graph
    x = np.random.default_rng(0).normal(size=(2, 16, 16, 3)).astype(np.float32)
    cam = GradCam(nested)
    assert cam.layer is backbone
    logits, maps = cam(x)
    flat_logits, flat_maps = GradCam(flat)(x)
    np.testing.assert_allclose(logits, flat_logits, atol=1e-5)
    np.testing.assert_allclose(maps, flat_maps, atol=1e-5)
    assert maps.shape == (2, 16, 16) and maps.max() <= 1.0


def test_the_overlay_lets_the_picture_show_where_the_map_is_cold():
    """Issue 23: a uniform 0.45 of jet covered the picture in dark blue. The colour's share follows the map:
    none where it is 0 (an empty map leaves the picture as it is), OVERLAY_ALPHA at its peak."""
    from workbench.predict.gradcam import OVERLAY_ALPHA, overlay

    picture = np.full((8, 8, 3), 200, np.uint8)
    np.testing.assert_array_equal(overlay(picture, np.zeros((2, 2), np.float32)), picture)
    hot = overlay(picture, np.ones((2, 2), np.float32)).astype(float)
    red = np.array([127.0, 0.0, 0.0])  # jet at 1: dark red
    np.testing.assert_allclose(hot[0, 0], (1 - OVERLAY_ALPHA) * 200 + OVERLAY_ALPHA * red, atol=1)
    half = np.array([[0.0, 1.0]], np.float32)
    blended = overlay(picture, half).astype(float)
    assert np.abs(blended[:, 0] - 200).max() < np.abs(blended[:, -1] - 200).max()  # cold side nearer the picture
    assert OVERLAY_ALPHA <= 0.5
