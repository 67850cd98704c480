"""The sweep UI. In headless Chromium: the Train tab's Sweep box counts the runs as values are typed, names a
refused combination and queues nothing, shows the equivalent command; the Runs tab's Sweeps view shows a sweep
the store holds. Without a browser: the box's queueing (all runs tagged, or none) and the view of a store
without sweeps. Nothing trains here."""

from types import SimpleNamespace

import pytest
from conftest import ARTIFACTS, wait_until
from test_sweeps import FakeQueue

from store import Store
from workbench.errors import UserError
from workbench.specs.run import RunSpec
from workbench.ui.forms import FORM_FIELDS, LABELS, FormWords, form_values_to_spec, spec_to_form_values
from workbench.ui.tabs.runs_sweeps import show
from workbench.ui.tabs.sweep_form import SweepActions
from workbench.users import User


def _type(page, elem_id, text):
    box = page.locator(f"#{elem_id} input, #{elem_id} textarea").first
    box.fill(str(text))
    box.press("Tab")


def _choose(page, elem_id, option):
    page.locator(f"#{elem_id} input").click()
    page.get_by_role("option", name=option, exact=True).first.click()
    page.keyboard.press("Escape")


@pytest.mark.browser
def test_the_sweep_box_counts_and_checks_and_the_runs_tab_shows_a_sweep(app_server, browser):
    with Store(app_server.db) as store:  # a finished sweep, as its jobs would leave it
        for seed in (0, 1):
            spec = RunSpec(model="lenet", dataset="synthetic", epochs=1, seed=seed, name=f"done-lenet-s{seed}")
            run_id = store.create_run(spec.name, spec.to_dict(), tags=["sweep:done"])
            store.set_status(run_id, "running")
            store.log_epoch(run_id, 1, lr=0.1, loss=1.0, accuracy=0.5, val_loss=1.0, val_accuracy=0.6, seconds=3.0)
            store.update_run(run_id, test_accuracy=0.6 + seed / 100, train_seconds=3.0, params=62006)
            store.set_status(run_id, "completed")
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(app_server.url)
    page.locator("#train-button").wait_for()
    page.locator("#sweep-box").get_by_text("Sweep: several values").click()
    summary, message = page.locator("#sweep-summary"), page.locator("#sweep-message")
    _type(page, "sweep-name", "ui")
    _choose(page, "sweep-model", "lenet")
    _type(page, "sweep-learning_rate", "0.05, -1")
    wait_until(
        lambda: "run 2 of 2 (model lenet, learning rate -1) is refused" in summary.inner_text(),
        "the refused combination named",
        page=page,
    )
    page.locator("#sweep-button").click()
    wait_until(lambda: "Not queued" in message.inner_text(), "the refusal", page=page)
    _type(page, "sweep-learning_rate", "0.05")
    _type(page, "sweep-seed", "0-1")
    wait_until(lambda: "1 model × 1 learning rate × 2 seeds = 2 runs" in summary.inner_text(), "the count", page=page)
    assert "--models lenet --learning-rates 0.05 --seeds 0,1" in page.locator("#sweep-command").inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "sweep-train.png"), full_page=True)
    page.get_by_role("tab", name="Runs").click()
    wait_until(
        lambda: "done: 2 runs, 2 completed" in page.locator("#sweeps-summary").inner_text(), "the sweep view", page=page
    )
    assert "60.50 ± 0.71" in page.locator("#sweeps-table").inner_text()
    page.close()


def test_the_sweep_box_queues_every_run_tagged_or_none(store):
    queue = FakeQueue()
    ctx = SimpleNamespace(store=store, queue=queue, gpu_names=[], user=lambda: User("carol"))
    actions = SweepActions(ctx, lambda values: form_values_to_spec(*values), FormWords(RunSpec, LABELS, FORM_FIELDS))
    form = spec_to_form_values(RunSpec(model="lenet", dataset="synthetic", epochs=1))
    axes = ["", ["cross_entropy", "focal"], "", [], "0.1, 0", "0-1"]  # model, loss, augment, schedule, lr, seed
    with pytest.raises(UserError, match=r"run 3 of 8 .*learning rate 0.*is refused"):
        actions.queue("mine", axes, "", form)
    assert queue.submitted == []
    text, command = actions.preview("mine", axes[:4] + ["0.1", "0-1"], "extra", form)
    assert text.startswith("**2 losses × 1 learning rate × 2 seeds = 4 runs**, tagged `sweep:mine`")
    assert command.endswith("--tags extra")
    message, run_ids = actions.queue("mine", axes[:4] + ["0.1", "0-1"], "extra", form)
    assert run_ids == [1, 2, 3, 4] and message.startswith("Queued 4 runs (runs 1-4) as sweep **mine**")
    assert {tuple(tags) for _, tags in queue.submitted} == {("extra", "sweep:mine")}
    assert queue.by == ["carol"] * 4  # the page's user made every run of the sweep
    assert actions.preview("", [""] * 6, "", form)[0].startswith("Fill one or more boxes")


def test_the_sweeps_view_reads_a_store_without_sweeps(store):
    shown = show(store)
    assert shown["summary"].startswith("No sweeps yet") and shown["table"].empty
