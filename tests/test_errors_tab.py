"""The Errors tab against a real server: two runs whose logits are stored for the real CIFAR images of the
committed fixture (as training would store them, without training) and a saved ensemble of them; browse
mistakes, filter by a confusion-matrix click, compare, inspect and export."""

import re
import shutil
import time

import numpy as np
import pytest
from conftest import ARTIFACTS, FIXTURES, AppServer, completed_run

from store import Store
from workbench.constants import CIFAR10_CLASSES
from workbench.data.datasets import load_dataset
from workbench.data.split import split_arrays
from workbench.ensemble import lab
from workbench.inspect import analysis
from workbench.specs.run import RunSpec

pytestmark = pytest.mark.browser


def _stored_runs(db, data_path) -> np.ndarray:
    """Runs 1 and 2 (mini-0, mini-1) with val/test logits for the fixture's images, and ensemble 1 ("pair")
    of them; returns run 1's test confusion matrix."""
    dataset = load_dataset("cifar10", str(data_path))
    rng = np.random.default_rng(0)
    with Store(db) as store:
        for seed, skill in ((0, 2.0), (1, 1.0)):
            spec = RunSpec(
                model="resnet20", data_path=str(data_path), val_size=100, epochs=2, seed=seed, name=f"mini-{seed}"
            )
            arrays = split_arrays(dataset, val_size=spec.val_size, split_seed=spec.split_seed)
            completed_run(
                store,
                spec.name,
                spec.to_dict(),
                split_id=arrays.split_id,
                rng=rng,
                skill=skill,
                logits={"val": arrays.y_val, "test": dataset.y_test},
            )
        members = lab.Lab(store).load([1, 2])
        lab.save(store, members, lab.score(members, [1, 1], lab.Settings()), lab.Settings(), "pair")
        z = store.load_logits(1, "test")
    return analysis.confusion_matrix(dataset.y_test, z.argmax(1), 10)


def _wait_text(locator, pattern, timeout=60):
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        text = locator.inner_text()
        match = re.search(pattern, text)
        if match:
            return match
        time.sleep(0.3)
    raise AssertionError(f"{pattern!r} not in {text!r}")


def _count_when(page, predicate) -> int:
    """The gallery's image count once it satisfies `predicate` (events finish asynchronously)."""
    deadline = time.monotonic() + 60
    count = None
    while time.monotonic() < deadline:
        match = re.search(r"([\d,]+) images", page.locator("#errors-count").inner_text())
        count = int(match.group(1).replace(",", "")) if match else None
        if count is not None and predicate(count):
            return count
        time.sleep(0.3)
    raise AssertionError(f"the count stayed {count}")


def _errors_tab(browser, server, source_pattern):
    """A new page on the server's Errors tab with the source matching `source_pattern` chosen."""
    page = browser.new_page(viewport={"width": 1500, "height": 1300})
    page.goto(server.url)
    page.get_by_role("tab", name="Errors").click()
    _choose(page, "errors-source", source_pattern)
    return page


def _choose(page, elem_id, pattern):
    page.locator(f"#{elem_id} input").click()
    page.get_by_role("option", name=re.compile(pattern)).click()


def test_browse_filter_compare_and_export(tmp_path, browser, cache_dir):
    data = tmp_path / "cifar10-mini.tar.gz"
    shutil.copy(FIXTURES / "cifar10-mini.tar.gz", data)
    (tmp_path / "runs").mkdir()
    matrix = _stored_runs(tmp_path / "runs" / "workbench.db", data)
    errors = int(matrix.sum() - np.trace(matrix))
    server = AppServer(tmp_path)
    try:
        page = _errors_tab(browser, server, r"mini-0")
        _wait_text(page.locator("#errors-count"), rf"{errors} images · page 1 of (\d+)")
        assert page.locator("#errors-gallery img").count() == min(64, errors)
        page.locator("#errors-gallery img").first.click()
        _wait_text(page.locator(".js-plotly-plot").last, r"Image #")  # the clicked image's figure, once drawn
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "06-errors-tab.png"), full_page=True)
        # A click on a confusion cell shows that cell's images; on a class name, its row's mistakes.
        off = matrix - np.diag(np.diag(matrix))
        t, p = np.unravel_index(off.argmax(), off.shape)
        cell = lambda row, column: page.locator(f'#errors-confusion [data-testid="cell-{row}-{column}"]')  # noqa: E731
        cell(t, p + 1).click()
        _count_when(page, lambda n: n == off[t, p])
        assert page.locator("#errors-predicted input").input_value() == CIFAR10_CLASSES[p]
        cell(t, 0).click()
        _count_when(page, lambda n: n == off[t].sum())
        assert page.locator("#errors-predicted input").input_value() == "any"
        # A comparison without B says so beside B; with B, both sources' predictions are shown. The comparison
        # is set while the class filter's event is still running: the last change must win, not be dropped.
        _choose(page, "errors-true", r"^any$")
        page.get_by_text("both wrong").click()
        _wait_text(page.locator("#errors-compare-note"), r"Choose source B")
        _choose(page, "errors-source-b", r"ensemble")
        _count_when(page, lambda n: 0 < n <= errors)
        assert page.locator("#errors-compare-note").inner_text().strip() == ""
        assert re.search(r"A: \w+ \(\d+%\) · B: \w+", page.locator("#errors-gallery").inner_text())
        page.locator("#errors-gallery img").first.click()
        _wait_text(page.locator(".js-plotly-plot").last, r"A: mini-0[\s\S]*B: pair")
        page.get_by_role("button", name="Export the selection as one PNG").click()
        _wait_text(page.locator("#errors-message"), r"Exported \d+ images to errors-run1-test-vs-ensemble1-both_wrong")
        page.close()
        # The dataset behind a run goes missing (the server's image cache is keyed by the file's size and
        # time, so it notices without a restart): a clear message, no traceback.
        data.unlink()
        page = _errors_tab(browser, server, r"mini-1")
        message = _wait_text(page.locator("#errors-message"), r"not available|changed or is missing")
        assert "Traceback" not in page.content() and message
        page.close()
    finally:
        server.stop()


def test_an_export_names_its_sources_split_and_filter():
    from workbench.inspect.sources import Source
    from workbench.ui.tabs.errors import Selection

    probs, labels = np.full((4, 10), 0.1), np.arange(4)
    a = Source("run", 3, "mini-0", probs, labels, list(CIFAR10_CLASSES), "val")
    b = Source("ensemble", 1, "pair", probs, labels, list(CIFAR10_CLASSES), "val")
    alone = Selection(a, None, np.arange(2), "cat", "any", "random", 7, "off")
    assert alone.describe() == [
        "A: run 3 (mini-0)",
        "validation split · true class: cat · predicted by A: any · random, seed 7",
    ]
    assert alone.file_name() == "errors-run3-val-true-cat.png"
    compared = Selection(a, b, np.arange(2), "any", "dog", "confident", 0, "a_right_b_wrong")
    assert compared.describe()[0] == "A: run 3 (mini-0) · B: ensemble 1 (pair)"
    assert compared.describe()[1].endswith("predicted by A: dog · A right, B wrong · confidently wrong first")
    assert compared.file_name() == "errors-run3-val-vs-ensemble1-a_right_b_wrong-pred-dog.png"
