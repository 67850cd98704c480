"""Near-duplicates and the map of a split (issue 24, points 5-7): the exact chunked search, planted exact and
jittered duplicates found above the threshold and nothing else, ciFAIR's duplicate-free accuracy on a case
worked by hand, features cached per (run, split), the map's figure (one point per image, the click's image),
and the `duplicates` and `map` commands' files. One tiny run is really trained on an image folder made of
the bundled CIFAR-10 sample with duplicates planted in its test split."""

import csv
import re
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import FIXTURES
from PIL import Image

from store import Store
from workbench.cli.main import main
from workbench.data.datasets import load_dataset
from workbench.errors import UserError
from workbench.inspect import duplicates as dup
from workbench.inspect import projection
from workbench.jobs.queue import JobQueue
from workbench.predict import features as wf
from workbench.predict import maps
from workbench.predict.models import ModelCache
from workbench.specs.run import RunSpec
from workbench.views import data_map as dm

MINI = FIXTURES / "cifar10-mini.tar.gz"
EXACT, JITTERED = 6, 6


# --- the search on features alone -----------------------------------------------------------------


def _planted_features(rng, n_base=3000, n_query=400, dims=96):
    """Random base and query features with EXACT copies and JITTERED copies (5% noise) of base rows planted
    among the queries: {query row: base row}."""
    base = rng.normal(size=(n_base, dims)).astype(np.float32)
    query = rng.normal(size=(n_query, dims)).astype(np.float32)
    rows = rng.choice(n_query, 40, replace=False)
    sources = rng.choice(n_base, 40, replace=False)
    for k, (q, b) in enumerate(zip(rows, sources)):
        query[q] = base[b] * 3.0  # a scaled copy: cosine similarity ignores length
        if k >= 20:
            query[q] += rng.normal(scale=0.05 * np.linalg.norm(base[b]) / np.sqrt(dims), size=dims)
    return base, query, dict(zip(rows.tolist(), sources.tolist()))


def test_planted_duplicates_are_all_found_above_the_threshold_and_nothing_else():
    rng = np.random.default_rng(0)
    base, query, planted = _planted_features(rng)
    match = dup.nearest(query, base, chunk=64)  # 7 chunks, the last one short
    found = dup.duplicate_pairs(match, 0.95)
    assert sorted(found.tolist()) == sorted(planted)
    assert all(match.index[q] == b for q, b in planted.items())
    assert np.all(match.similarity[list(planted)[:20]] > 0.9999)  # exact copies
    others = np.setdiff1d(np.arange(len(query)), list(planted))
    assert match.similarity[others].max() < 0.6  # random 96-D directions: far below any sensible threshold
    assert np.all(np.diff(match.similarity[found]) <= 0)  # most similar first


def test_the_chunked_search_is_the_exact_full_product():
    rng = np.random.default_rng(1)
    base, query = rng.normal(size=(500, 16)), rng.normal(size=(130, 16))
    base[7] = base[3]  # a tie: the lower index wins, as argmax does
    query[0] = base[3]
    full = dup.normalise(query) @ dup.normalise(base).T
    for chunk in (1, 17, 1000):
        match = dup.nearest(query, base, chunk=chunk)
        assert np.array_equal(match.index, full.argmax(axis=1))
        assert np.allclose(match.similarity, full.max(axis=1), atol=1e-6)
    assert dup.nearest(query, base).index[0] == 3


def test_duplicate_free_accuracy_on_a_case_worked_by_hand():
    predicted = [0, 1, 2, 3, 4, 0]
    labels = [0, 1, 2, 0, 4, 1]  # right: 1 1 1 0 1 0 -> 4 of 6
    flagged = [True, False, False, True, False, False]  # images 0 (right) and 3 (wrong) have a duplicate
    result = dup.duplicate_free_accuracy(predicted, labels, flagged)
    # without images 0 and 3: images 1, 2, 4 right, 5 wrong -> 3 of 4
    assert result == {
        "full": 4 / 6,
        "clean": 3 / 4,
        "images": 6,
        "clean_images": 4,
        "duplicates": 2,
        "duplicates_right": 1,
    }
    assert dup.duplicate_free_accuracy([1], [1], [True])["clean"] is None
    with pytest.raises(UserError, match="same images"):
        dup.duplicate_free_accuracy([1, 2], [1], [False])
    for bad in ("x", 1.5, None):
        with pytest.raises(UserError, match="threshold"):
            dup.check_threshold(bad)


def test_pca_projection_and_the_choice_of_method():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(200, 8)) * np.array([10, 5, 1, 1, 1, 1, 1, 1])
    out = projection.project(x, "pca")
    assert out.coords.shape == (200, 2) and out.method == "pca" and out.note == ""
    # the first axis is the direction of largest variance: it carries most of the first feature
    assert abs(np.corrcoef(out.coords[:, 0], x[:, 0])[0, 1]) > 0.95
    auto = projection.project(x, "auto", limit=100)
    assert auto.method == "pca" and "200 points" in auto.note  # too many for UMAP: said so
    with pytest.raises(UserError, match="map method"):
        projection.project(x, "tsne")


# --- a real run on images with planted duplicates -------------------------------------------------


def _write_folder(root, x, y, names, split, start=0):
    for i, (image, label) in enumerate(zip(x, y)):
        folder = root / split / names[label]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(folder / f"{start + i:04d}.png")  # lossless: an exact copy stays exact


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """A store with one tiny run trained (1 epoch) on the CIFAR-10 sample whose test split also holds EXACT
    copies and JITTERED copies (pixel noise, +-3 of 255) of training images; yields (db, store, pairs) with
    pairs {test row: train row} of the planted images in the dataset's order."""
    root = tmp_path_factory.mktemp("planted")
    sample = load_dataset("folder", MINI)
    rng = np.random.default_rng(0)
    sources = rng.choice(len(sample.x_train), EXACT + JITTERED, replace=False)
    copies = sample.x_train[sources].copy()
    noise = rng.integers(-3, 4, size=copies[EXACT:].shape)
    copies[EXACT:] = np.clip(copies[EXACT:].astype(int) + noise, 0, 255).astype(np.uint8)
    names = sample.class_names
    _write_folder(root / "data", sample.x_train, sample.y_train, names, "train")
    _write_folder(root / "data", sample.x_test, sample.y_test, names, "test")
    _write_folder(root / "data", copies, sample.y_train[sources], names, "test", start=5000)
    data = load_dataset("folder", root / "data")

    def row_of(images, image):
        return int(np.flatnonzero((images == image).all(axis=(1, 2, 3)))[0])

    pairs = {row_of(data.x_test, c): row_of(data.x_train, sample.x_train[s]) for c, s in zip(copies, sources)}
    db = root / "runs" / "workbench.db"  # where tests/conftest.AppServer opens it
    spec = RunSpec.from_dict(
        dict(
            model="lenet",
            model_kwargs={"width": 0.5},
            dataset="folder",
            data_path=str(root / "data"),
            batch_size=50,
            epochs=1,
            learning_rate=0.05,
            name="planted",
        )
    )
    with Store(db) as store:
        queue = JobQueue(store, devices=[], isolate=False)
        run_id = queue.submit(spec)
        assert queue.wait(run_id, timeout=300)
        queue.shutdown()
        assert store.get_run(run_id)["status"] == "completed", store.get_run(run_id)["error"]
        yield db, store, pairs


def test_planted_image_duplicates_are_found_by_a_real_runs_features(planted):
    _, store, pairs = planted
    models, cache = ModelCache(store), {}
    report = maps.near_duplicates(store, 1, models=models, cache=cache)
    test = wf.split_features(store, 1, "test", models=models, cache=cache)
    assert test.cached and test.features.shape == (len(report.test_labels), test.features.shape[1])
    assert len(report.train_labels) == 400  # the whole training set, validation images among them
    sims = report.match.similarity
    exact = [t for t, _ in list(pairs.items())[:EXACT]]
    assert np.all(sims[exact] > 0.9999)
    assert all(report.match.index[t] == s for t, s in pairs.items())
    planted_rows = np.array(list(pairs))
    others = np.setdiff1d(np.arange(len(sims)), planted_rows)
    # The threshold that separates them: every planted pair at or above it, every other test image below.
    # (measured: planted >= 0.9961, the others <= 0.9909 with this tiny, one-epoch model)
    threshold = 0.995
    assert sims[planted_rows].min() >= threshold > sims[others].max()
    assert sorted(report.pairs(threshold).tolist()) == sorted(pairs)
    accuracy = report.accuracy(threshold)
    assert accuracy["duplicates"] == len(pairs) and accuracy["clean_images"] == len(sims) - len(pairs)
    right = report.test_predicted == report.test_labels
    assert accuracy["clean"] == pytest.approx(right[others].mean())


def test_features_are_cached_per_run_and_split_and_redone_for_a_new_checkpoint(planted):
    _, store, _ = planted
    models = ModelCache(store)
    first = wf.split_features(store, 1, "val", models=models, cache={})
    again = wf.split_features(store, 1, "val", models=models, cache={})
    assert again.cached and np.array_equal(first.features, again.features)
    assert np.array_equal(first.labels, store.load_labels(1, "val"))
    checkpoint = store.run_dir(1) / "model.keras"
    stamp = checkpoint.stat().st_mtime_ns
    import os

    os.utime(checkpoint, ns=(stamp + 10**9, stamp + 10**9))  # "trained again"
    redone = wf.split_features(store, 1, "val", models=ModelCache(store), cache={})
    assert not redone.cached and np.allclose(redone.features, first.features, atol=1e-5)
    with pytest.raises(UserError, match="split"):
        wf.split_features(store, 1, "everything", models=models, cache={})


def test_the_map_has_one_point_per_image_and_a_click_returns_that_image(planted):
    _, store, _ = planted
    from workbench.ui.tabs.errors_map import MapView, _Handlers

    models, cache = ModelCache(store), {}
    data = maps.split_map(store, 1, "test", models=models, cache=cache, method="pca")
    n = len(data.features.labels)
    names = maps.class_names(store, 1, data)
    points = dm.points_from(data.projection.coords, data.features.logits, data.features.labels, names)
    for colour in dm.colour_options(points):
        fig = dm.map_figure(points, colour, title="t", note="PCA")  # validated: a wrong property fails
        assert all(trace.type == "scattergl" for trace in fig.data)
        shown = sorted(i for trace in fig.data for i in trace.customdata)
        assert shown == list(range(n))  # every image once
    assert dm.LABEL_QUALITY not in dm.colour_options(points)
    quality = dm.points_from(data.projection.coords, data.features.logits, data.features.labels, names, np.ones(n))
    assert (
        dm.LABEL_QUALITY in dm.colour_options(quality)
        and len(dm.map_figure(quality, "label quality", title="t").data) == 1
    )

    handlers = _Handlers(SimpleNamespace(store=store), MapView(*[object()] * 12), cache)
    shown = handlers.load("run:1", "test", "pca")
    # a test map is coloured by label quality too: cleanlab's score of each given label, in the map's order
    assert shown.points.label_quality is not None and len(shown.points.label_quality) == n
    assert dm.LABEL_QUALITY in dm.colour_options(shown.points)
    images = wf.split_images(store, 1, "test", cache)[0]
    for index in (0, n - 1, 17):
        picked, figure = handlers.pick(shown, index)
        assert np.array_equal(np.asarray(picked)[::8, ::8], images[index])  # the clicked image, enlarged 8x
        assert f"Image #{index}" in figure.layout.title.text
    with pytest.raises(UserError, match="no image"):
        handlers.pick(shown, n)


def test_the_duplicates_and_map_commands_write_files_that_parse(planted, tmp_path, capsys):
    db, _, pairs = planted
    out = tmp_path / "pairs.csv"
    assert main(["duplicates", "1", "--db", str(db), "--output", str(out), "--threshold", "0.995"]) == 0
    rows = list(csv.DictReader(out.open()))
    assert list(rows[0]) == list(
        ("test_index", "train_index", "similarity", "test_label", "train_label", "predicted", "right")
    )
    assert {int(r["test_index"]): int(r["train_index"]) for r in rows} == pairs
    printed = capsys.readouterr().out
    assert f"{len(pairs)} of " in printed and re.search(r"\d+\.\d\d% on the \d+ without", printed)
    html = tmp_path / "map.html"
    assert main(["map", "1", "--db", str(db), "--split", "test", "--output", str(html), "--method", "pca"]) == 0
    text = html.read_text()
    assert "scattergl" in text and "Plotly.newPlot" in text
    assert main(["map", "1", "--db", str(db), "--output", str(tmp_path / "map.png")]) == 2
    assert main(["duplicates", "1", "--db", str(db), "--output", str(tmp_path / "no" / "x.csv")]) == 2
    assert main(["map", "1", "--db", str(db), "--output", str(html), "--colour", "pink"]) == 2
    quality = tmp_path / "quality.html"
    args = ["map", "1", "--db", str(db), "--split", "test", "--method", "pca", "--colour", "quality"]
    assert main([*args, "--output", str(quality)]) == 0 and "label quality" in quality.read_text()
    assert main(["map", "1", "--db", str(db), "--split", "train", "--colour", "quality", "--output", str(html)]) == 2
    err = capsys.readouterr().err
    assert ".html file" in err and "does not exist" in err and "--colour" in err and "out-of-sample" in err


@pytest.mark.slow
def test_a_real_click_on_the_map_shows_that_image_and_the_duplicates_view_counts_the_planted_pairs(planted, browser):
    """The page's bridge: Plotly's click on a scattergl point reaches the server and shows that image; a box
    selection fills the gallery; the Near-duplicates view finds the planted pairs (a real app, real Chromium)."""
    from conftest import AppServer

    db, _, pairs = planted
    server = AppServer(db.parent.parent)
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(server.url, timeout=120000)
        page.get_by_role("tab", name="Errors").click()
        page.locator("#errors-source input").click()
        page.get_by_role("option").filter(has_text="run 1 ").first.click()
        page.get_by_text("Map of a split (its features in 2-D)").click()
        page.locator("#errors-map-method input").click()
        page.get_by_role("option", name="PCA", exact=True).click()
        page.get_by_role("button", name="Draw the map").click()
        page.wait_for_selector(
            "#errors-map-plot .js-plotly-plot .scatterlayer, #errors-map-plot canvas", timeout=300000
        )
        point = page.evaluate(
            """() => new Promise((done) => { const find = () => {
                 const gd = document.querySelector('#errors-map-plot .js-plotly-plot');
                 if (!gd || !gd.__workbenchBound) return setTimeout(find, 200);
                 const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis, tr = gd.data[0];
                 const box = gd.querySelector('.nsewdrag').getBoundingClientRect();
                 done({x: box.left + xa.l2p(tr.x[0]), y: box.top + ya.l2p(tr.y[0]), index: tr.customdata[0],
                       left: box.left, top: box.top, w: box.width, h: box.height}); };
               find(); })"""
        )
        page.mouse.move(point["x"], point["y"])
        page.mouse.click(point["x"], point["y"])
        page.wait_for_selector(f"#errors-map-picked:has-text('Image #{point['index']}')", timeout=60000)
        page.mouse.move(point["left"] + 2, point["top"] + 2)
        page.mouse.down()
        page.mouse.move(point["left"] + point["w"] - 2, point["top"] + point["h"] - 2, steps=8)
        page.mouse.up()
        page.wait_for_selector("#errors-map-count:has-text('images selected')", timeout=60000)
        page.get_by_text("Near-duplicates between the test and training images").click()
        page.locator("#errors-duplicates-threshold input[type=number]").fill("0.995")
        page.get_by_role("button", name="Find near-duplicates").click()
        summary = page.wait_for_selector(f"#errors-duplicates-summary:has-text('{len(pairs)} of')", timeout=300000)
        assert "without a near-duplicate" in summary.inner_text()
    finally:
        server.stop()
