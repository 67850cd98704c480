"""The Ensemble tab in a real browser against a real server whose store holds three finished runs."""
import re

import numpy as np
import pytest
from conftest import ARTIFACTS, AppServer
from conftest import wait_until as _wait

from store import Store
from workbench.ui.tabs.ensemble import metrics_rows

pytestmark = pytest.mark.browser


def _fill_store(db, skills=(2.0, 1.5, 0.4)):
    rng = np.random.default_rng(1)
    y_val, y_test = rng.integers(0, 10, 500), rng.integers(0, 10, 1000)
    with Store(db) as store:
        for i, skill in enumerate(skills):
            run_id = store.create_run(f"member-{i}", {"model": "resnet20", "loss": "cross_entropy", "epochs": 3})
            store.update_run(run_id, split_id="seed0-test", test_accuracy=0.5)
            for split, y in (("val", y_val), ("test", y_test)):
                for name in (split, f"{split}_flip"):
                    z = rng.normal(0, 1, (len(y), 10)).astype(np.float32)
                    z[np.arange(len(y)), y] += skill
                    store.save_logits(run_id, name, z, y)
            store.set_status(run_id, "running")
            store.set_status(run_id, "completed")
        store.create_run("still-queued", {"epochs": 3})


def test_metrics_rows_format():
    scored = {"val": {"accuracy": 0.9, "nll": 0.3, "ece": 0.02}, "test": {"accuracy": 0.8, "nll": 0.5, "ece": 0.03},
              "weights": [1.0], "members": [{"id": 4, "name": "a", "temperature": 1.2, "val_accuracy": 0.7,
                                             "val_nll": 0.9, "val_ece": 0.1, "test_accuracy": 0.6, "test_nll": 1.0,
                                             "test_ece": 0.2}]}
    rows = metrics_rows(scored)
    assert rows[0][:4] == ["ensemble", "", "", 90.0] and rows[1][0] == "4: a" and rows[1][6] == 60.0


def test_mix_search_and_save_in_the_browser(tmp_path, browser):
    (tmp_path / "runs").mkdir()
    _fill_store(tmp_path / "runs" / "workbench.db")
    server = AppServer(tmp_path)
    try:
        page = browser.new_page(viewport={"width": 1500, "height": 1300})
        page.goto(server.url)
        page.get_by_role("tab", name="Ensemble").click()
        _wait(lambda: "still-queued" in page.locator("#ensemble-unavailable").inner_text(), page=page,
              what="the unavailable list")
        assert "only completed runs" in page.locator("#ensemble-unavailable").inner_text()
        box = page.locator("#ensemble-runs input")
        for name in ("1: member-0", "2: member-1", "3: member-2"):
            box.click()
            box.fill(name)
            page.get_by_role("option", name=name, exact=True).click()  # waits for the option to render
            page.wait_for_timeout(300)
        metrics = page.locator("#ensemble-metrics")
        _wait(lambda: "ensemble" in metrics.inner_text() and "3: member-2" in metrics.inner_text(), page=page,
              what="the metrics of three members")
        assert page.locator("#ensemble-weight-2").is_visible() and not page.locator("#ensemble-weight-3").is_visible()
        page.get_by_role("button", name="Grid search (step 0.1)").click()
        message = _wait(lambda: re.search(r"Grid search over ([\d,]+) combinations: best validation accuracy ([\d.]+)%",
                                          page.locator("#ensemble-message").inner_text()), page=page,
                        what="the grid search message")
        assert message.group(1) == "1,330"  # 11^3 - 1
        page.wait_for_timeout(1500)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "05-ensemble-tab.png"), full_page=True)
        page.get_by_label("Ensemble name").fill("trio")
        page.get_by_role("button", name="Save ensemble").click()
        _wait(lambda: "Saved ensemble 1: trio" in page.locator("#ensemble-message").inner_text(), page=page,
              what="the saved message")
        with Store(server.db) as store:
            saved = store.get_ensemble(1)
        assert saved["members"] == [1, 2, 3] and saved["val_accuracy"] == pytest.approx(
            float(message.group(2)) / 100, abs=6e-5)
        assert saved["weights"][2] <= min(saved["weights"][:2])
        page.close()
    finally:
        server.stop()
