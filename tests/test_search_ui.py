"""The search UI in headless Chromium, on an app of its own (its study trains): the Train tab's Search box names
each bad part of a space as it is typed and starts nothing for it, says what a good space searches and its command,
and starts the study; the Runs tab's Studies view shows its trials, best trial and Optuna's figure, and Train the
best queues the best settings as a sweep. Screenshots at 1024, 1400 and 1920 px land in test-artifacts/."""

import pytest
from conftest import ARTIFACTS, AppServer, wait_text, wait_until

from store import Store
from workbench.constants import RunStatus, StudyState

GOOD_SPACE = "model=lenet dataset=synthetic train_subset=0 epochs=2 augment=none learning_rate=log(0.01,0.2)"


def _type(page, elem_id, text):
    box = page.locator(f"#{elem_id} input, #{elem_id} textarea").first
    box.fill(str(text))
    box.press("Tab")
    page.keyboard.press("Escape")  # the next field may be a dropdown that the Tab opened


def _shots(page, name):
    ARTIFACTS.mkdir(exist_ok=True)
    for width in (1024, 1400, 1920):
        page.set_viewport_size({"width": width, "height": 1000})
        page.wait_for_timeout(400)
        page.screenshot(path=str(ARTIFACTS / f"{name}-{width}.png"), full_page=True)
    page.set_viewport_size({"width": 1400, "height": 1000})


@pytest.mark.browser
def test_the_search_box_names_bad_parts_as_they_are_typed_and_starts_nothing(app_server, browser):
    """On the shared server (nothing is started here): the box's live check, its refusal and its command."""
    page = browser.new_page(viewport={"width": 1024, "height": 900})
    page.goto(app_server.url)
    page.locator("#train-button").wait_for()
    page.locator("#search-box").get_by_text("Search: an Optuna study").click()
    summary = page.locator("#search-summary")
    _type(page, "search-name", "box-check")
    _type(page, "search-space", "colour=[1,2] batch_size=int(64,32)")
    text = wait_text(summary, r"bad parts", timeout=60)
    assert "colour=[1,2]: 'colour' is not a setting a search can vary" in text, text
    assert "batch_size=int(64,32): the low bound 64 is above the high bound 32" in text, text
    page.locator("#search-button").click()
    wait_until(lambda: "Not started" in page.locator("#search-message").inner_text(), "the refusal", page=page)
    _type(page, "search-space", "weight_decay=log(1e-5,1e-3) augment=[flip_crop; flip_crop,cutout]")
    text = wait_text(summary, r"2 settings searched", timeout=60)
    assert "augment in flip_crop, flip_crop,cutout" in text, text
    assert (
        "--space 'weight_decay=log(1e-5,1e-3) augment=[flip_crop; flip_crop,cutout]'"
        in page.locator("#search-command").inner_text()
    )
    with Store(app_server.db) as store:
        assert "box-check" not in {s["name"] for s in store.list_studies()}
    page.close()


@pytest.mark.slow  # an app of its own that trains two trials: minutes on a loaded 2-core machine
@pytest.mark.browser
def test_the_search_box_checks_and_starts_a_study_and_the_runs_tab_shows_it(tmp_path, browser):
    server = AppServer(tmp_path)
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(server.url)
        page.locator("#train-button").wait_for()
        page.locator("#search-box").get_by_text("Search: an Optuna study").click()
        summary, message = page.locator("#search-summary"), page.locator("#search-message")
        _type(page, "search-name", "ui-study")
        _type(page, "search-space", "learning_rate=log(0,1) epochs=int(5,2)")
        text = wait_text(summary, r"bad parts", timeout=60)
        assert "learning_rate=log(0,1): a log range needs both bounds above 0" in text, text
        assert "epochs=int(5,2): the low bound 5 is above the high bound 2" in text, text
        page.locator("#search-button").click()
        wait_until(lambda: "Not started" in message.inner_text(), "the refusal", page=page)
        _type(page, "search-space", GOOD_SPACE)
        _type(page, "search-trials", "2")
        wait_until(lambda: "1 setting searched" in summary.inner_text(), "the space's summary", page=page)
        assert "learning_rate 0.01…0.2 log scale" in summary.inner_text() and "2 trials by tpe" in summary.inner_text()
        command = page.locator("#search-command").inner_text()
        assert "python -m workbench search ui-study" in command and "--trials 2" in command
        _shots(page, "search-train")
        with Store(server.db) as store:
            assert store.list_studies() == []  # nothing was started for the refused space
        page.locator("#search-button").click()
        wait_until(lambda: "Started study ui-study" in message.inner_text(), "the study started", page=page)

        page.get_by_role("tab", name="Runs").click()
        studies = page.locator("#studies-summary")

        def finished():
            page.locator("#runs-refresh").click()
            page.wait_for_timeout(1000)
            return "ui-study: finished, 2 trials" in studies.inner_text()

        wait_until(finished, "the study finished in the Studies view", timeout=300, page=page, every=2)
        assert "Best: trial" in studies.inner_text() and "-optuna.db" in studies.inner_text()
        assert page.locator("#studies-trials").inner_text().split().count("complete") == 2
        wait_until(lambda: page.locator("#studies-figure .js-plotly-plot").count() > 0, "Optuna's figure", page=page)
        _type(page, "studies-seeds", "0")
        page.locator("#studies-train-best").click()
        wait_until(
            lambda: (
                "Queued the best settings of ui-study as sweep ui-study-best"
                in page.locator("#studies-message").inner_text()
            ),
            "Train the best",
            page=page,
        )
        page.locator("#studies-view").scroll_into_view_if_needed()
        _shots(page, "search-runs")
        page.close()
        with Store(server.db) as store:
            assert store.get_study("ui-study")["state"] == StudyState.FINISHED
            best_runs = [r for r in store.list_runs() if "sweep:ui-study-best" in r["tags"]]
            assert len(best_runs) == 1 and best_runs[0]["status"] in (
                RunStatus.QUEUED,
                RunStatus.RUNNING,
                RunStatus.COMPLETED,
            )
    finally:
        server.stop()
