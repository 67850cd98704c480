"""End to end in headless Chromium: queue a tiny synthetic run from the Train tab, reload mid-run and
find the job still there, watch it complete, and find it in the Runs tab. Screenshots land in
test-artifacts/ (kept by CI as the test's record)."""

import re

import pytest
from conftest import ARTIFACTS
from conftest import wait_text as _wait_text

from store import Store

pytestmark = pytest.mark.browser


def _screenshot(page, name):
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _choose(page, field, value):
    box = page.locator(f"#field-{field} input")
    box.click()
    box.fill(value)
    page.get_by_role("option", name=value, exact=True).click()  # waits for the option to render


def _field(page, field):
    return page.locator(f"#field-{field} input, #field-{field} textarea").first


def _fill(page, field, value):
    _field(page, field).fill(str(value))


def test_train_watch_reload_and_find_the_run(app_server, browser):
    page = browser.new_page(viewport={"width": 1500, "height": 1300})
    page.goto(app_server.url)
    page.locator("#train-button").wait_for()
    # On this CPU the form starts with the quick recipe and says how long it will take, and where from.
    assert _field(page, "epochs").input_value() == "5"
    _wait_text(
        page.locator("#train-estimate"),
        r"Time on this CPU: ~\d+h? ?\d+m( \d+s)? \(rough\)\*?\*? — ~\d+m \d+s to start, 5 epochs",
    )
    _screenshot(page, "01-train-tab-empty")
    # (The recipe buttons, each refilling the whole form: test_estimate.py's test_the_recipe_buttons_...)
    # A bad value is explained next to the form and nothing is queued.
    _fill(page, "epochs", 0)
    with Store(app_server.db) as store:  # the server is shared: other tests' runs may be there
        before = store.list_runs()
    page.locator("#train-button").click()
    _wait_text(page.locator("#train-message"), r"Not queued: epochs must be at least 1")
    with Store(app_server.db) as store:
        assert store.list_runs() == before

    # The quick recipe's other settings stay (cosine schedule, no data path here): each field a test fills
    # costs one of Gradio's event round trips, seconds on a loaded 2-core machine.
    _choose(page, "dataset", "synthetic")
    _fill(page, "dataset_options", "n_train=300,n_test=100")
    _fill(page, "model_kwargs", "depth=8,base_width=4")
    _fill(page, "epochs", 3)  # enough to reload while it trains: the reload accepts "completed" too
    _fill(page, "batch_size", 50)
    _fill(page, "name", "browser-run")
    _field(page, "name").press("Tab")
    _wait_text(page.locator("#train-command"), r"--name browser-run")
    page.locator("#train-button").click()
    run_id = re.search(
        r"Queued run (\d+): browser-run", _wait_text(page.locator("#train-message"), r"Queued run \d+: browser-run")
    ).group(1)
    _wait_text(page.locator("#live-panel"), r"running · epoch [1-9]")
    _screenshot(page, "02-train-tab-running")

    # The job lives in the server, not the page: a reload shows it still running.
    page.reload()
    _wait_text(page.locator("#jobs-table"), r"browser-run")
    status = _wait_text(page.locator("#live-panel"), rf"browser-run.*\(run {run_id}\)", timeout=30)
    assert "running" in status or "completed" in status
    _wait_text(page.locator("#live-panel"), r"completed", timeout=240)
    # The status line and the figure arrive together, but Plotly draws the figure after the text shows.
    page.locator("#live-curves .js-plotly-plot").wait_for(timeout=30_000)
    assert page.locator("#live-curves .js-plotly-plot").count() == 1
    page.locator("#cancel-button:disabled").wait_for()  # nothing to cancel; nothing to resume
    assert page.locator("#resume-button").is_disabled()
    _screenshot(page, "03-train-tab-completed")

    page.get_by_role("tab", name="Runs").click()
    board = page.locator("#runs-leaderboard")
    _wait_text(board, r"browser-run")
    _wait_text(board, r"completed")
    _screenshot(page, "04-runs-tab")
    page.close()


@pytest.mark.slow  # ~100 s on 2 cores; by default its parts run faster where listed in the docstring
def test_fine_tune_a_backbone_from_its_tab(app_server, browser):
    """mobilenet_v2 (random weights: no download here) at 32 px on synthetic data, queued from its tab,
    cancelled from its live panel once its process runs, then cloned back into the form. (Fine-tuning
    through both phases to stored predictions is tests/test_finetune.py's, in the test process.)

    Without `-m slow` the same code runs in: tests/test_app.py::test_api_fine_tunes_and_cancels_in_its_process
    (the tab's queue and cancel endpoints on this server: the refusal, a fine-tune's process started and
    cancelled), tests/test_page_fit.py (the tab's form in the browser, a field refused and cleared),
    tests/test_runs_tab.py::test_a_fine_tune_run_clones_into_the_fine_tune_form (Clone), and this file's
    train flow (the live panel the tabs share, followed across a reload)."""
    page = browser.new_page(viewport={"width": 1500, "height": 1300})
    page.goto(app_server.url)
    page.get_by_role("tab", name="Fine-tune").click()

    def fill(name, value):
        page.locator(f"#ft-{name} input, #ft-{name} textarea").first.fill(str(value))

    def choose(name, option):
        page.locator(f"#ft-{name} input").click()
        page.get_by_role("option", name=option, exact=True).click()

    choose("backbone", "inception_v3")
    fill("image_size", 32)
    page.locator("#ft-button").click()
    _wait_text(page.locator("#ft-message"), r"Not queued: image size 32 is below inception_v3's minimum of 75")
    choose("backbone", "mobilenet_v2")
    fill("weights", "none")
    for name, value in (
        ("head_epochs", 1),
        ("finetune_epochs", 30),
        ("batch_size", 50),
        ("dataset_options", "n_train=300,n_test=60"),
        ("name", "ft-browser"),
    ):
        fill(name, value)
    choose("dataset", "synthetic")
    page.locator("#ft-name textarea, #ft-name input").first.press("Tab")
    _wait_text(page.locator("#ft-command"), r"python -m workbench finetune --backbone mobilenet_v2 --weights none")
    page.locator("#ft-button").click()
    _wait_text(page.locator("#ft-message"), r"Queued run \d+: ft-browser")
    _wait_text(page.locator("#ft-live-panel"), r"ft-browser .*running", timeout=120)
    _screenshot(page, "07-finetune-tab")
    page.locator("#ft-cancel-button:enabled").click()
    _wait_text(page.locator("#ft-live-panel"), r"ft-browser .*cancelled", timeout=120)
    with Store(app_server.db) as store:
        run = next(r for r in store.list_runs() if r["name"] == "ft-browser")
        assert run["kind"] == "finetune" and run["status"] == "cancelled" and run["error"] is None
    # A fresh page has the default form; Runs' "Clone" brings this run's settings back into it.
    page.reload()
    page.get_by_role("tab", name="Runs").click()
    page.locator("#runs-pick input").click()
    page.get_by_role("option", name=f"{run['id']}: ft-browser", exact=True).click()
    page.locator("#runs-clone").click()
    _wait_text(page.locator("#ft-command"), r"--backbone mobilenet_v2 --weights none .*--name ft-browser")
    assert page.locator("#ft-backbone input").input_value() == "mobilenet_v2"
    _wait_text(page.locator("#ft-live-panel"), r"ft-browser")  # its live panel polls again
    _screenshot(page, "08-finetune-cloned")
    page.close()
