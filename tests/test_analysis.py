"""Errors-tab building blocks: error analysis on probabilities (hand-checked), gallery pages and the
exported grid, and sources (runs, saved ensembles) with their images rebuilt from a real stored run."""

import numpy as np
import pytest
from conftest import logits_for
from PIL import Image

from workbench.constants import CIFAR10_CLASSES
from workbench.data.datasets import load_dataset
from workbench.data.split import make_split
from workbench.ensemble.calibration import softmax
from workbench.ensemble.lab import Lab
from workbench.errors import UserError
from workbench.inspect import analysis, gallery
from workbench.inspect import sources as sources_view
from workbench.specs.run import RunSpec

# Seven images, three classes. Predictions (arg-max, ties to the lower class): [0, 1, 1, 2, 0, 1, 0].
PROBS = np.array(
    [
        [0.70, 0.20, 0.10],  # 0: true 0, right
        [0.10, 0.80, 0.10],  # 1: true 0, predicted 1 at 0.8, true class 0.1
        [0.35, 0.60, 0.05],  # 2: true 2, predicted 1 at 0.6, true class 0.05
        [0.10, 0.20, 0.70],  # 3: true 1, predicted 2 at 0.7, true class 0.2
        [0.45, 0.10, 0.45],  # 4: true 2, predicted 0 (tie with 2) at 0.45, true class 0.45
        [0.05, 0.90, 0.05],  # 5: true 1, right
        [0.60, 0.30, 0.10],  # 6: true 1, predicted 0 at 0.6, true class 0.3
    ]
)
Y = np.array([0, 0, 2, 1, 2, 1, 1])
NAMES = ["cat", "dog", "ship"]


def onehot(pred, k=3):
    return np.eye(k)[pred]


def test_confusion_matrix_and_per_class_by_hand():
    pred = analysis.predictions(PROBS)
    assert pred.tolist() == [0, 1, 1, 2, 0, 1, 0]
    matrix = analysis.confusion_matrix(Y, pred, 3)
    assert matrix.tolist() == [[1, 1, 0], [1, 1, 1], [1, 1, 0]]
    rows = analysis.per_class(Y, PROBS, NAMES)
    assert [(r["class"], r["name"], r["count"], r["correct"], r["errors"], r["predicted"]) for r in rows] == [
        (0, "cat", 2, 1, 1, 3),
        (1, "dog", 3, 1, 2, 3),
        (2, "ship", 2, 0, 2, 1),
    ]
    assert [r["precision"] for r in rows] == pytest.approx([1 / 3, 1 / 3, 0.0])
    assert [r["recall"] for r in rows] == pytest.approx([1 / 2, 1 / 3, 0.0])
    assert [r["accuracy"] for r in rows] == [r["recall"] for r in rows]
    # A class with no images and never predicted: its ratios are undefined, not 0.
    empty = analysis.per_class([0, 1], onehot([0, 1]))
    assert empty[2]["count"] == 0 and empty[2]["precision"] is None and empty[2]["recall"] is None
    with pytest.raises(UserError, match="class indices in"):
        analysis.confusion_matrix([0, 3], [0, 1], 3)


def test_top_k_accuracy_by_hand():
    assert analysis.top_k_accuracy(PROBS, Y, 1) == pytest.approx(2 / 7)
    assert analysis.top_k_accuracy(PROBS, Y, 1) == pytest.approx(np.mean(PROBS.argmax(1) == Y))
    assert analysis.top_k_accuracy(PROBS, Y, 2) == pytest.approx(6 / 7)  # only image 2 has its class third
    assert analysis.top_k_accuracy(PROBS, Y, 3) == analysis.top_k_accuracy(PROBS, Y, 10) == 1.0
    with pytest.raises(UserError, match="k must be"):
        analysis.top_k_accuracy(PROBS, Y, 0)


def test_misclassified_filters_and_sort_orders():
    assert analysis.misclassified(PROBS, Y).tolist() == [1, 3, 2, 6, 4]  # 2 and 6 tie at 0.6: image order
    assert analysis.misclassified(PROBS, Y, sort="true_low").tolist() == [2, 1, 3, 6, 4]
    assert analysis.misclassified(PROBS, Y, true_class=1).tolist() == [3, 6]  # a row
    assert analysis.misclassified(PROBS, Y, predicted_class=1, sort="true_low").tolist() == [2, 1]  # a column
    assert analysis.misclassified(PROBS, Y, true_class=2, predicted_class=0).tolist() == [4]  # a cell
    assert analysis.misclassified(PROBS, Y, true_class=0, predicted_class=0).tolist() == []  # the diagonal
    shuffled = analysis.misclassified(PROBS, Y, sort="random", seed=3)
    assert sorted(shuffled.tolist()) == [1, 2, 3, 4, 6]
    assert shuffled.tolist() == analysis.misclassified(PROBS, Y, sort="random", seed=3).tolist()
    orders = {tuple(analysis.misclassified(PROBS, Y, sort="random", seed=s)) for s in range(10)}
    assert len(orders) > 1
    with pytest.raises(UserError, match="unknown sort"):
        analysis.misclassified(PROBS, Y, sort="loudest")
    with pytest.raises(UserError, match="true_class must be a class index"):
        analysis.misclassified(PROBS, Y, true_class=3)
    with pytest.raises(UserError, match="not probabilities"):
        analysis.misclassified(PROBS * 3, Y)


def test_ordered_puts_any_indices_in_a_sort_order():
    """What orders a comparison's images like A's own mistakes (they were in image order)."""
    assert analysis.ordered([6, 4, 3, 2, 1], PROBS, Y).tolist() == [1, 3, 6, 2, 4]  # 6 and 2 tie: given order
    assert analysis.ordered([1, 2, 3, 4, 6], PROBS, Y, sort="true_low").tolist() == [2, 1, 3, 6, 4]
    assert analysis.ordered([1, 2, 3], PROBS, Y, sort="random", seed=3).tolist() == (
        np.random.default_rng(3).permutation([1, 2, 3]).tolist()
    )
    assert analysis.ordered([], PROBS, Y).tolist() == []
    with pytest.raises(UserError, match="image indices"):
        analysis.ordered([7], PROBS, Y)


def test_compare_and_all_wrong():
    b = onehot([1, 0, 2, 1, 0, 1, 1])  # right on 1, 2, 3, 5, 6; A is right on 0 and 5
    result = analysis.compare(PROBS, b, Y)
    assert result["a_right_b_wrong"].tolist() == [0]
    assert result["b_right_a_wrong"].tolist() == [1, 2, 3, 6]
    assert result["both_wrong"].tolist() == [4]
    assert result["both_right"].tolist() == [5]
    assert analysis.all_wrong([PROBS, b], Y).tolist() == [4]
    assert analysis.all_wrong([PROBS], Y).tolist() == [1, 2, 3, 4, 6]
    with pytest.raises(UserError, match="same split"):
        analysis.compare(PROBS, b[:5], Y)
    with pytest.raises(UserError, match="at least one source"):
        analysis.all_wrong([], Y)


def test_top5():
    row = np.array([0.05, 0.3, 0.1, 0.2, 0.05, 0.25, 0.05])
    names = list("abcdefg")
    assert analysis.top5(row, names) == [("b", 0.3), ("f", 0.25), ("d", 0.2), ("c", 0.1), ("a", 0.05)]
    assert [n for n, _ in analysis.top5(PROBS[4], NAMES)] == ["cat", "ship", "dog"]


# --- gallery ---------------------------------------------------------------------------------------


@pytest.fixture
def pictures():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (10, 32, 32, 3), dtype=np.uint8)
    labels = np.arange(10) % 3
    probs = np.full((10, 3), 0.065)
    probs[np.arange(10), (labels + 1) % 3] = 0.87  # every image predicted as the next class, at 87 %
    return images, probs, labels


def test_gallery_page_sizes_captions_and_upscaling(pictures):
    images, probs, labels = pictures
    order = np.arange(10)[::-1]
    assert gallery.page_count(10, 4) == 3 and gallery.page_count(8, 4) == 2 and gallery.page_count(0, 4) == 1
    first = gallery.page(images, order, probs, labels, NAMES, page=0, per_page=4)
    assert len(first) == 4
    last = gallery.page(images, order, probs, labels, NAMES, page=2, per_page=4)
    assert len(last) == 2
    assert len(gallery.page(images, order, probs, labels, NAMES, page=99, per_page=4)) == 2  # clamped
    assert gallery.page(images, order[:0], probs, labels, NAMES) == []
    image, caption = first[0]  # image 9: true class 0 (cat), predicted dog
    assert caption == "predicted: dog (87%) · true: cat"
    assert last[0][1] == "predicted: ship (87%) · true: dog"  # image 1
    assert isinstance(image, Image.Image) and image.size == (96, 96)
    pixels = np.asarray(image)
    assert (pixels[:3, :3] == images[9][0, 0]).all()
    assert (pixels[3:6, :3] == images[9][1, 0]).all() and (pixels[:3, 93:] == images[9][0, 31]).all()
    assert np.array_equal(pixels[::3, ::3], images[9])
    assert gallery.page(images, order, probs, labels, NAMES, scale=1)[0][0].size == (32, 32)
    with pytest.raises(UserError, match="class names"):
        gallery.page(images, order, probs, labels, NAMES[:2])
    right = np.eye(3)[labels]  # a second source, right on every image: compared, captions give both
    assert (
        gallery.page(images, order, probs, labels, NAMES, probs_b=right)[0][1]
        == "A: dog (87%) · B: cat (100%) · true: cat"
    )
    with pytest.raises(UserError, match="same images"):
        gallery.page(images, order, probs, labels, NAMES, probs_b=right[:5])


def test_export_grid_png(pictures, tmp_path):
    images, probs, labels = pictures
    path = gallery.export_grid(images, np.arange(10), probs, labels, NAMES, tmp_path / "out" / "grid.png", columns=4)
    with Image.open(path) as grid:
        assert grid.format == "PNG" and grid.mode == "RGB"
        width, height = grid.size
    assert 4 * 96 <= width < 4 * 200 and 3 * 96 <= height < 3 * 200  # 4 columns, 3 rows with captions
    many = np.arange(300) % 10  # more than the cap: the grid holds the first 256, like a 256 selection
    capped = gallery.export_grid(images, many, probs, labels, NAMES, tmp_path / "capped.png")
    full = gallery.export_grid(images, many[:256], probs, labels, NAMES, tmp_path / "full.png")
    with Image.open(capped) as a, Image.open(full) as b:
        assert a.size == b.size and a.size[1] > 32 * 96
    with pytest.raises(UserError, match="no images selected"):
        gallery.export_grid(images, [], probs, labels, NAMES, tmp_path / "none.png")
    # Named (two title lines) and compared (a caption line for B): taller than the plain grid.
    named = gallery.export_grid(
        images,
        np.arange(10),
        probs,
        labels,
        NAMES,
        tmp_path / "named.png",
        columns=4,
        title="A: run 1 (a) · B: run 2 (b)\ntest split · true class: any",
        probs_b=np.eye(3)[labels],
    )
    titled = gallery.export_grid(
        images, np.arange(10), probs, labels, NAMES, tmp_path / "t.png", columns=4, title="A: run 1 (a)\ntest split"
    )
    with Image.open(named) as grid, Image.open(titled) as title_only:
        taller, title_lines = grid.size[1] - height, title_only.size[1] - height
    assert title_lines > 0 and taller > title_lines and (taller - title_lines) % 3 == 0  # + a B line in 3 rows


# --- sources and their images, on a real store ----------------------------------------------------

SYNTHETIC = {"n_train": 200, "n_test": 50}


def stored_run(store, rng, *, name="syn", spec=None, labels=None, skill=2.0):
    """A completed run with val/test logits, its images chosen exactly as workbench.data.split.prepare_data does."""
    spec = spec or RunSpec(dataset="synthetic", dataset_options=SYNTHETIC, epochs=1).to_dict()
    dataset = load_dataset("synthetic", None, **SYNTHETIC)
    split = make_split(dataset.y_train, val_size=spec["val_size"] or None, seed=spec["split_seed"])
    found = {"val": dataset.y_train[split.val_idx], "test": dataset.y_test}
    run_id = store.create_run(name, spec, split_id=split.identity)
    store.update_run(run_id, split_id=split.identity)
    for part, y in found.items():
        y_saved = y if labels is None else labels[part]
        store.save_logits(run_id, part, logits_for(y_saved, rng, skill), y_saved)
    store.set_status(run_id, "running")
    store.set_status(run_id, "completed")
    return run_id, dataset, split


def test_split_images_rebuild_a_runs_images_and_check_them(store):
    rng = np.random.default_rng(0)
    run_id, dataset, split = stored_run(store, rng)
    cache = {}
    val = sources_view.split_images(store, run_id, "val", cache)
    assert val.dtype == np.uint8 and val.shape == (20, 32, 32, 3)
    assert np.array_equal(val, dataset.x_train[split.val_idx])
    test = sources_view.split_images(store, run_id, "test", cache)
    assert np.array_equal(test, dataset.x_test)
    assert sources_view.split_images(store, run_id, "test", cache) is test  # cached: no reload
    # a run's own training images are no source: only a cross-validation request's out-of-fold rows are
    with pytest.raises(UserError, match="only a cv:NAME source has training-split images"):
        sources_view.split_images(store, run_id, "train", cache)


def test_split_images_refuse_mismatched_or_missing_data(store, tmp_path):
    rng = np.random.default_rng(1)
    dataset = load_dataset("synthetic", None, **SYNTHETIC)
    wrong = {"val": rng.permutation(dataset.y_train[:20]), "test": dataset.y_test[::-1].copy()}
    mismatched, *_ = stored_run(store, rng, labels=wrong)
    with pytest.raises(UserError, match=f"run {mismatched}'s test split do not match.*changed or is missing"):
        sources_view.split_images(store, mismatched, "test", {})
    gone = tmp_path / "gone" / "cifar10.tar.gz"
    spec = RunSpec(dataset="cifar10", data_path=str(gone), epochs=1).to_dict()
    missing = store.create_run("missing", spec)
    store.save_logits(missing, "test", logits_for(dataset.y_test, rng), dataset.y_test)
    with pytest.raises(UserError, match=f"run {missing}'s test split are not available: the dataset at {gone}"):
        sources_view.split_images(store, missing, "test", {})
    store.set_status(missing, "completed")
    source = sources_view.load_source(store, Lab(store), f"run:{missing}", "test", {})
    assert "not available" in source.images_error  # predictions still browsable, images refused with why
    assert source.class_names == list(CIFAR10_CLASSES)  # the official names: no need of the data


def test_load_source_for_a_run_and_a_saved_ensemble(store):
    rng = np.random.default_rng(2)
    a, dataset, _ = stored_run(store, rng, name="a")
    b, *_ = stored_run(store, rng, name="b", skill=1.0)
    queued = store.create_run("queued", {})
    lab, cache = Lab(store), {}

    run = sources_view.load_source(store, lab, f"run:{a}", "test", cache)
    assert (run.kind, run.id, run.name, run.split, run.key) == ("run", a, "a", "test", f"run:{a}")
    assert np.allclose(run.probs, softmax(store.load_logits(a, "test")), atol=1e-6)
    assert np.array_equal(run.labels, dataset.y_test) and run.class_names == dataset.class_names
    assert run.images_error is None and run.members == {}
    assert sources_view.split_images(store, run.image_run, "test", cache).shape == (50, 32, 32, 3)

    ensemble_id = store.save_ensemble(
        "pair", "mean-prob", [a, b], [0.5, 0.5], options={"method": "mean", "space": "prob"}
    )
    ens = sources_view.load_source(store, lab, f"ensemble:{ensemble_id}", "val", cache)
    assert (ens.kind, ens.name, ens.image_run, list(ens.members)) == ("ensemble", "pair", a, [a, b])
    members = [softmax(store.load_logits(r, "val")) for r in (a, b)]
    assert np.allclose(ens.members[b], members[1], atol=1e-6)
    assert np.allclose(ens.probs, (members[0] + members[1]) / 2, atol=1e-6)
    assert ens.member_names == {a: "a", b: "b"} and ens.images_error is None
    assert len(ens.labels) == 20 and ens.class_names == dataset.class_names

    with pytest.raises(UserError, match=f"run {queued} \\(queued\\) has no stored predictions.*only completed"):
        sources_view.load_source(store, lab, f"run:{queued}", "test", cache)
    with pytest.raises(UserError, match="choose one of: val, test"):
        sources_view.load_source(store, lab, f"run:{a}", "val_flip", cache)
    with pytest.raises(UserError, match="unknown source"):
        sources_view.load_source(store, lab, "model:3", "test", cache)
    choices = sources_view.source_choices(store)
    assert [key for _, key in choices] == [f"run:{a}", f"run:{b}", f"ensemble:{ensemble_id}"]
    assert [sources_view.parse_key(key) for _, key in choices] == [("run", a), ("run", b), ("ensemble", ensemble_id)]
    assert sources_view.source_key("ensemble", ensemble_id) == f"ensemble:{ensemble_id}" == ens.key
    assert choices[2][0].startswith("ensemble") and "pair" in choices[2][0]
