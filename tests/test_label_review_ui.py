"""The Errors tab's label review against a real server (issue 24): keyboard verdicts from two browsers at once
(none lost), a killed app and a restart (every verdict still there), the CSV export, and the leaderboard's
reviewed test accuracy beside the original."""

import csv
import re
import time

import numpy as np
import pytest
from conftest import ARTIFACTS, AppServer, wait_text

from store import Store
from workbench.data.datasets import load_dataset
from workbench.data.reviewed import dataset_identity
from workbench.specs.run import RunSpec

pytestmark = pytest.mark.browser

OPTIONS = {"n_train": 300, "n_test": 300, "num_classes": 4, "label_noise": 0.05}


def _store_with_a_run(db):
    """Run 1: test logits of a model that knows the true classes, stored against the noisy labels the spec's
    dataset gives (as training on it would store them, without training)."""
    given = load_dataset("synthetic", **OPTIONS)
    truth = load_dataset("synthetic", **{**OPTIONS, "label_noise": 0.0}).y_test
    logits = np.random.default_rng(0).normal(0, 1, (len(truth), 4)).astype(np.float32)
    logits[np.arange(len(truth)), truth] += 4
    spec = RunSpec(model="lenet", dataset="synthetic", dataset_options=OPTIONS, epochs=1, name="noisy")
    with Store(db) as store:
        run_id = store.create_run("noisy", spec.to_dict())
        store.set_status(run_id, "running")
        store.save_logits(run_id, "test", logits, given.y_test)
        store.update_run(run_id, test_accuracy=float((logits.argmax(1) == given.y_test).mean()))
        store.set_status(run_id, "completed")
    return dataset_identity("synthetic", Store.labels_hash(given.y_test))


def _review_page(browser, server):
    page = browser.new_page(viewport={"width": 1400, "height": 1400})
    page.goto(server.url)
    page.get_by_role("tab", name="Errors").click()
    page.locator("#errors-source input").click()
    page.get_by_role("option", name=re.compile("noisy")).click()
    page.get_by_text("Likely label errors: review source A's labels").click()
    page.locator("#review-start").click()
    wait_text(page.locator("#review-info"), r"Card 1 of \d+")
    return page


def _progress(page, reviewed):
    return wait_text(page.locator("#review-progress"), rf"\b{reviewed} of \d+ flagged images reviewed")


@pytest.mark.slow  # two app starts: about a minute on a quiet 2-core machine, three on a loaded one
def test_review_with_keys_from_two_browsers_survives_a_killed_app(tmp_path, browser):
    (tmp_path / "runs").mkdir()
    db = tmp_path / "runs" / "workbench.db"
    dataset = _store_with_a_run(db)
    server = AppServer(tmp_path)
    try:
        a = _review_page(browser, server)
        b = _review_page(browser, server)
        first = re.search(r"image \*?\*?#(\d+)", a.locator("#review-info").inner_text())
        a.keyboard.press("e")  # label error
        _progress(a, 1)
        b.locator("#review-cursor input").fill("6")
        b.locator("#review-cursor input").press("Enter")
        wait_text(b.locator("#review-info"), r"Card 6 of")
        b.locator("#review-start").focus()  # keys reach the view only outside text fields
        for step, (key_a, key_b) in enumerate((("c", "u"), ("e", "e"), ("r", "c")), 1):  # both browsers at once
            a.keyboard.press(key_a)
            a.keyboard.press(key_a)  # pressed twice before its card changes: one verdict, not two
            b.keyboard.press(key_b)
            with Store(db) as store:
                assert len(wait_rows(store, dataset, 1 + 2 * step)) == 1 + 2 * step
            wait_text(a.locator("#review-message"), r"Image #\d+: ")
            wait_text(b.locator("#review-message"), r"Image #\d+: ")
            time.sleep(0.5)  # the cards are replaced: the next keys act on the next ones
        a.keyboard.press("j")  # skip one: next card, no verdict
        with Store(db) as store:
            assert len(wait_rows(store, dataset, 8, timeout=3)) == 7  # 1 + 3 from A, 3 from B: none lost, none twice
        ARTIFACTS.mkdir(exist_ok=True)
        a.screenshot(path=str(ARTIFACTS / "label-review.png"), full_page=True)
        server.process.kill()  # no shutdown: what a crash leaves
        server.process.wait(20)
        server = AppServer(tmp_path)
        c = _review_page(browser, server)
        c.get_by_label("Hide reviewed").uncheck()
        text = _progress(c, r"\d+")
        with Store(db) as store:
            rows = store.reviews(dataset, "test")
        assert len(rows) == 7 and first is not None
        verdicts = sorted(r["verdict"] for r in rows)
        assert verdicts == sorted(
            ["label error", "correct", "unsure", "label error", "label error", "relabel", "correct"]
        )
        assert "verdicts on this split: 3 label error, 2 correct, 1 unsure, 1 relabel" in text, text
        c.get_by_role("button", name="Export this dataset's reviews as CSV").click()
        wait_text(c.locator("#review-message"), r"Exported 7 reviews")
        c.get_by_role("tab", name="Runs").click()
        wait_text(c.locator("body"), r"Reviewed test %")
    finally:
        server.stop()


def wait_rows(store, dataset, count, timeout=30):
    deadline = time.monotonic() + timeout
    rows = []
    while time.monotonic() < deadline:
        rows = store.reviews(dataset, "test")
        if len(rows) >= count:
            return rows
        time.sleep(0.3)
    return rows


def test_the_export_has_one_row_per_review(tmp_path):
    from workbench.constants import Verdict
    from workbench.inspect.review_queue import write_reviews_csv

    db = tmp_path / "w.db"
    dataset = _store_with_a_run(db)
    given = load_dataset("synthetic", **OPTIONS).y_test
    with Store(db) as store:
        store.register_review_part(dataset, "synthetic", "test", given, num_classes=4)
        store.save_review(
            dataset, "test", 3, Verdict.RELABEL, given=given[3], label=(given[3] + 1) % 4, suggested=1, by="x"
        )
        store.save_review(dataset, "test", 9, Verdict.UNSURE, given=given[9])
        path = tmp_path / "reviews.csv"
        assert write_reviews_csv(store, dataset, ["a", "b", "c", "d"], path) == 2
    rows = list(csv.DictReader(path.open()))
    assert list(rows[0]) == [
        "split",
        "index",
        "given",
        "suggested",
        "verdict",
        "relabel_as",
        "reviewed_by",
        "reviewed_at",
    ]
    assert (rows[0]["split"], rows[0]["index"], rows[0]["verdict"], rows[0]["suggested"]) == (
        "test",
        "3",
        "relabel",
        "b",
    )
    assert rows[0]["relabel_as"] == "abcd"[(given[3] + 1) % 4] and rows[1]["verdict"] == "unsure"
