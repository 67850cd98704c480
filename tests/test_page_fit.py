"""Does the page fit? Every tab at 1024, 1400 and 1920 px in headless Chromium against a real server whose
store was filled through the Store API (runs, epochs, logits of the committed CIFAR fixture; nothing is
trained). Screenshots land in test-artifacts/fit-<tab>-<width>.png (every tab at 1400 px, other widths where a
check failed); the checks (tests/page_checks.py) measure
what the eye would catch: sideways overflow, words split or cut in tables, text on text in figures, cut captions.
Each tab is put in the state worth looking at (a value refused, curves drawn, members mixed, an image
clicked), at 1400 px, and then looked at in every width."""

import re
import shutil

import numpy as np
import pytest
from conftest import ARTIFACTS, FIXTURES, AppServer, completed_run
from conftest import wait_until as _wait
from page_checks import PLOT_OVERLAPS, problems

from store import Store
from workbench.data.datasets import load_dataset
from workbench.data.split import split_arrays
from workbench.specs.run import RunSpec

pytestmark = pytest.mark.browser
WIDTHS = (1024, 1400, 1920)
SCREENSHOT_MS = 120_000  # a full-page screenshot took over 30 s (the default) on a loaded 2-core machine
RUNS = (  # name, loss, params, tags, notes, test accuracy, skill (how far the true class's logit is raised)
    (
        "wide_resnet-28-10-cutout-baseline",
        "cross_entropy",
        36_489_290,
        ("baseline", "seed0", "cutout"),
        "the reference run for the README table, trained on the full split",
        0.91,
        3.0,
    ),
    ("resnet110-label-smoothing", "label_smoothing", 1_730_714, ("seed0",), "", 0.84, 2.0),
    ("vgg16_bn-plain", "cross_entropy", 20_559_958, (), "", 0.72, 1.0),
)


def _fill(db, data):
    """Three completed runs with curves and logits for the fixture's images, an ensemble of the first two,
    and a newest run that failed before its first epoch (what the live panel follows)."""
    dataset = load_dataset("cifar10", str(data))
    labels = {"val": split_arrays(dataset, val_size=100).validation[1], "test": dataset.y_test}
    rng = np.random.default_rng(0)
    with Store(db) as store:
        ids = []
        for name, loss, params, tags, notes, test_accuracy, skill in RUNS:
            spec = RunSpec(loss=loss, data_path=str(data), val_size=100, epochs=12, name=name).to_dict()
            epochs = [
                dict(
                    epoch=e,
                    lr=0.1 * 0.8**e,
                    loss=2.0 / e,
                    accuracy=1 - 0.6 / e,
                    val_loss=2.1 / e,
                    val_accuracy=0.9 - 0.5 / e,
                    seconds=7.748,
                )
                for e in range(1, 13)
            ]
            ids.append(
                completed_run(
                    store,
                    name,
                    spec,
                    tags=tags,
                    notes=notes,
                    dataset="cifar10",
                    split_id="mini",
                    epochs=epochs,
                    params=params,
                    test_accuracy=test_accuracy,
                    train_seconds=93.0,
                    train_images=45_000,
                    rng=rng,
                    skill=skill,
                    flips=True,
                    logits=labels,
                )
            )
        store.save_ensemble("pair-of-baselines", "mean", ids[:2], [0.5, 0.5], val_accuracy=0.86, test_accuracy=0.85)
        failed = store.create_run("waits-for-data", RunSpec(epochs=30).to_dict(), dataset="cifar10")
        store.set_status(failed, "running")
        store.set_status(failed, "failed", error="data path /nowhere does not exist")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fit")
    data = folder / "cifar10-mini.tar.gz"
    shutil.copy(FIXTURES / "cifar10-mini.tar.gz", data)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("WORKBENCH_CACHE", str(folder / "cache"))  # the decode cache, private to this module
        (folder / "runs").mkdir()
        _fill(folder / "runs" / "workbench.db", data)
        app = AppServer(folder)
        yield app
    app.stop()


def _choose(page, elem_id, option):
    page.locator(f"#{elem_id} input").click()
    page.get_by_role("option", name=re.compile(option)).first.click()
    page.wait_for_timeout(300)


def _type(page, elem_id, text):
    box = page.locator(f"#{elem_id} input, #{elem_id} textarea").first
    box.fill(text)
    box.press("Tab")


def _refused(page, elem_id):
    """The reason shown at a field, or None while the field is not flagged."""
    field = page.locator(f"#{elem_id}")
    return field.locator(".info-text").inner_text() if "refused" in field.get_attribute("class").split() else None


def _train_tab(page):
    """A refused value is flagged at its field in the form's words; tags and an accepted path reach the command."""
    assert page.evaluate(PLOT_OVERLAPS) == []  # the waiting figure of the failed run, followed by default
    command = page.locator("#train-command")
    _type(page, "train-tags", "baseline, seed0")
    _type(page, "field-data_path", "/etc")
    reason = _wait(lambda: _refused(page, "field-data_path"), "the data path flagged")
    assert "outside the folders this app may read" in reason and "# not runnable yet" in command.inner_text()
    page.locator("#train-button").click()
    message = page.locator("#train-message")
    _wait(lambda: "Not queued: data path /etc is outside" in message.inner_text(), "the refusal above Train")
    _wait(lambda: "refused" in message.get_attribute("class").split(), "the refusal highlighted")
    page.screenshot(path=str(ARTIFACTS / "fit-train-refused-1400.png"), full_page=True, timeout=SCREENSHOT_MS)
    _type(page, "field-data_path", "")
    _wait(lambda: _refused(page, "field-data_path") is None and not message.inner_text().strip(), "the flags cleared")
    _wait(lambda: "--tags baseline,seed0" in command.inner_text(), "the tags in the command")
    assert "/etc" not in command.inner_text()
    _choose(page, "follow-run", "wide_resnet")
    _wait(lambda: page.locator("#live-curves .xtick").count(), "the live curves")
    ticks = page.locator("#live-curves .xtick text").evaluate_all("texts => texts.map(t => t.textContent)")
    assert ticks and all(t.isdigit() for t in ticks), ticks  # whole epochs only


def _finetune_tab(page):
    """The form speaks of its own fields, not the CLI's flags."""
    helps = page.locator("#ft-finetune_epochs .info-text").inner_text() + page.locator("#ft-dataset").inner_text()
    assert "--" not in helps and "“Unfreeze from layer”" in helps and "“Data path”" in helps
    assert "comma-separated" not in page.locator("#ft-augment").inner_text()  # these are checkboxes
    _type(page, "ft-unfreeze_from", "-5")
    reason = _wait(lambda: _refused(page, "ft-unfreeze_from"), "the unfreeze layer flagged")
    assert reason.startswith("“Unfreeze from layer” must be a backbone layer index")
    _type(page, "ft-unfreeze_from", "-1")
    _wait(lambda: _refused(page, "ft-unfreeze_from") is None, "the flag cleared")


def _ensemble_tab(page):
    for name in ("1: wide", "2: resnet110", "3: vgg16"):
        _choose(page, "ensemble-runs", name)
    _wait(lambda: "3: vgg16_bn-plain" in page.locator("#ensemble-metrics").inner_text(), "three members scored")
    page.get_by_role("button", name="Grid search (step 0.1)").click()
    _wait(lambda: "Grid search over" in page.locator("#ensemble-message").inner_text(), "the grid search")


def _errors_tab(page):
    _choose(page, "errors-source", "wide_resnet")
    _wait(lambda: page.locator("#errors-gallery img").count(), "the gallery")
    page.locator("#errors-gallery img").first.click()
    picked = page.locator("#errors-picked img")
    _wait(lambda: picked.count() and picked.evaluate("e => e.naturalWidth") == 256, "the clicked image, enlarged")
    assert picked.bounding_box()["width"] >= 200


def _predict_tab(page):
    """No run here kept a checkpoint (nothing was trained): the tab says so and how to get one."""
    note = page.locator("#predict-empty")
    _wait(lambda: note.is_visible() and "Nothing to predict with yet" in note.inner_text(), "the empty note")


TABS = {
    "Train": _train_tab,
    "Runs": None,
    "Ensemble": _ensemble_tab,
    "Fine-tune": _finetune_tab,
    "Errors": _errors_tab,
    "Predict": _predict_tab,
}


def test_every_tab_fits_at_three_widths(server, browser):
    """Each tab is opened once, put in its state at 1400 px, then looked at in every width (a tab opened
    again refreshes its views from the store: seconds each on a loaded machine, and nothing to see).
    The full-page screenshots: every tab at 1400 px; at the other widths, where a check found something."""
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.goto(server.url)
    page.locator("#train-button").wait_for()
    ARTIFACTS.mkdir(exist_ok=True)
    _wait(lambda: "waits-for-data" in page.locator("#live-panel").inner_text(), "the live panel")
    found = []
    for tab, use in TABS.items():
        page.set_viewport_size({"width": 1400, "height": 900})
        page.get_by_role("tab", name=tab).click()
        page.wait_for_timeout(1500)
        if use:  # the tab put in the state worth looking at
            use(page)
        for width in (1400, *(w for w in WIDTHS if w != 1400)):
            if width != 1400:
                page.set_viewport_size({"width": width, "height": 900})
            page.wait_for_timeout(1500)  # figures redraw at the new width
            seen = [f"{tab} at {width} px: {line}" for line in problems(page)]
            if seen or width == 1400:
                shot = ARTIFACTS / f"fit-{tab.lower()}-{width}.png"
                page.screenshot(path=str(shot), full_page=True, timeout=SCREENSHOT_MS)
            found += seen
    page.close()
    assert not found, "\n".join(found)
