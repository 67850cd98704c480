"""The Errors tab against a real server: two runs really trained on real CIFAR images (the committed
fixture) and a saved ensemble of them; browse mistakes, filter, compare, inspect and export."""
import re
import shutil
import time

import pytest
from conftest import ARTIFACTS, FIXTURES, AppServer

from store import Store
from workbench.ensemble import lab
from workbench.jobs.queue import JobQueue
from workbench.specs.run import RunSpec

pytestmark = pytest.mark.browser


def _train_runs(db, data_path):
    with Store(db) as store:
        queue = JobQueue(store, devices=[], isolate=False)
        ids = []
        for seed in (0, 1):
            spec = RunSpec(model="resnet20", model_kwargs={"depth": 8, "base_width": 8}, data_path=str(data_path),
                           val_size=100, epochs=2, batch_size=50, schedule="cosine", learning_rate=0.05, seed=seed,
                           name=f"mini-{seed}")
            ids.append(queue.submit(spec))
        for run_id in ids:
            queue.wait(run_id, timeout=300)
            assert store.get_run(run_id)["status"] == "completed", store.get_run(run_id)["error"]
        members = lab.Lab(store).load(ids)
        lab.save(store, members, lab.score(members, [1, 1], lab.Settings()), lab.Settings(), "pair")
        queue.shutdown()
    return ids


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
    _train_runs(tmp_path / "runs" / "workbench.db", data)
    server = AppServer(tmp_path)
    try:
        page = _errors_tab(browser, server, r"mini-0")
        match = _wait_text(page.locator("#errors-count"), r"([\d,]+) images · page 1 of (\d+)")
        errors = int(match.group(1).replace(",", ""))
        assert 0 < errors <= 200
        assert page.locator("#errors-gallery img").count() == min(64, errors)
        page.locator("#errors-gallery img").first.click()
        page.wait_for_timeout(1500)
        assert "Image #" in page.locator(".js-plotly-plot").last.inner_text()
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "06-errors-tab.png"), full_page=True)
        # A confusion-matrix row: only images whose true class is cat.
        _choose(page, "errors-true", r"^cat$")
        cats = _count_when(page, lambda n: n <= 20)  # the fixture's test split has 20 cats
        assert cats > 0
        # The saved ensemble is a source too, and two sources can be compared.
        _choose(page, "errors-source-b", r"ensemble")
        page.get_by_text("both wrong").click()
        _wait_text(page.locator("#errors-count"), r"images|No images")
        page.wait_for_timeout(1500)
        if "images ·" in page.locator("#errors-count").inner_text():  # else: no image is wrong for both
            _count_when(page, lambda n: n <= cats)  # both wrong is a subset of A's wrong cats
        page.get_by_role("button", name="Export the selection as one PNG").click()
        _wait_text(page.locator("#errors-message"), r"Exported \d+ images")
        page.close()
    finally:
        server.stop()
    # The dataset behind a run goes missing: a clear message, no traceback.
    data.unlink()
    server = AppServer(tmp_path)
    try:
        page = _errors_tab(browser, server, r"mini-1")
        message = _wait_text(page.locator("#errors-message"), r"not available|changed or is missing")
        assert "Traceback" not in page.content() and message
        page.close()
    finally:
        server.stop()
