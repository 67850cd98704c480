"""The live panel's numbers and words, from store rows: rates and remaining times from the first batch,
the final evaluation's own progress, elapsed time per attempt and in all, the queue, and what Cancel
and Resume say they will do."""

from datetime import UTC, datetime, timedelta

import pytest

from store.lock import StoreLock
from workbench.views import live


def _iso(seconds_ago):
    return (datetime.now(UTC) - timedelta(seconds=seconds_ago)).isoformat()


@pytest.fixture
def runner(store):
    """This test holds the store's job lock, as the app does: active runs read as they are stored."""
    lock = StoreLock(store.path).acquire()
    yield lock
    lock.release()


def _running(store, epochs=10, **fields):
    run_id = store.create_run("a", {"epochs": epochs})
    store.set_status(run_id, "running")
    store.update_run(run_id, **{"phase": "training", "train_images": 5000, "steps_per_epoch": 50, **fields})
    return run_id


def _view(store, run_id):
    run = next(r for r in store.seen_runs() if r["id"] == run_id)
    return live.progress(run, store.epochs(run_id)), live.status_html(run, store.epochs(run_id), store.seen_runs())


def test_progress_of_a_running_job(store, runner):
    run_id = _running(store, started_at=_iso(100), step=25, step_seconds=20.0)
    for epoch in (1, 2):
        store.log_epoch(run_id, epoch, lr=0.1, loss=1.0, accuracy=0.5, val_loss=1.0, val_accuracy=0.5, seconds=40.0)
    p, html = _view(store, run_id)
    assert p["epoch"] == "3/10" and p["fraction"] == pytest.approx(0.25)
    assert p["images_per_second"] == pytest.approx(125.0)
    assert p["remaining"] == pytest.approx(40.0 * 7.5)
    assert 99 <= p["elapsed"] <= 110
    assert "epoch 3/10" in html and "125 images/s" in html and "remaining ~5m 00s" in html


def test_the_first_epoch_has_a_rate_and_a_remaining_time_with_the_final_evaluation(store, runner):
    # 25 of 50 batches in 10 s: 0.4 s a batch, 20 s an epoch; the evaluation's 40 batches at a third of that.
    run_id = _running(
        store,
        step=25,
        step_seconds=10.0,
        eval_steps=40,
        attempt=1,
        attempt_started_at=_iso(30),
        attempt_seconds=25.0,
        train_seconds=25.0,
    )
    p, html = _view(store, run_id)
    assert p["epoch"] == "1/10" and p["fraction"] == pytest.approx(0.05)
    assert p["images_per_second"] == pytest.approx(250.0)
    assert p["evaluation_remaining"] == pytest.approx(0.4 / 3 * 40)
    assert p["remaining"] == pytest.approx(20.0 * 9.5 + 0.4 / 3 * 40)
    assert "250 images/s" in html and "remaining ~3m 15s (incl. ~0m 05s final evaluation)" in html
    assert "after the first" not in html


def test_the_final_evaluation_has_its_own_progress_and_estimate(store, runner):
    run_id = _running(store, epochs=2, phase="evaluating test", step=30, step_seconds=15.0, eval_steps=40)
    for epoch in (1, 2):
        store.log_epoch(run_id, epoch, loss=1.0, val_accuracy=0.5, seconds=40.0)
    p, html = _view(store, run_id)
    assert p["epoch"] == "2/2" and p["fraction"] == pytest.approx(0.75) and p["remaining"] == pytest.approx(5.0)
    assert "evaluating test (30 of 40 batches)" in html and "remaining ~0m 05s" in html
    row = next(r for r in live.jobs_rows(store, store.seen_runs()) if r[0] == run_id)
    assert row[2:5] == ["evaluating", "2/2", "75%"] and row[-1] == "0m 05s"


def test_each_epochs_validation_shows_as_its_own_phase(store, runner):
    """Issue 23: a fine-tune's panel stayed on "epoch 1/2 · remaining ~0m 14s" through a 75 s validation."""
    # The first epoch's validation, 10 of 40 batches in 5 s: no epoch logged yet, so no rate or total.
    run_id = _running(store, epochs=2, phase="validating", val_steps=40, step=10, step_seconds=5.0)
    p, html = _view(store, run_id)
    assert p["epoch"] == "1/2" and p["fraction"] == pytest.approx(0.5)
    assert p["validation_remaining"] == pytest.approx(15.0)
    assert "epoch 1/2 · validating (10 of 40 batches)" in html
    row = next(r for r in live.jobs_rows(store, store.seen_runs()) if r[0] == run_id)
    assert row[2:5] == ["validating", "1/2", "50%"]
    # The second epoch's: the rest of this validation, then the epochs left at the logged pace.
    run_id = _running(store, epochs=4, phase="validating", val_steps=40, step=30, step_seconds=15.0)
    store.log_epoch(run_id, 1, loss=1.0, val_accuracy=0.5, seconds=40.0)
    p, html = _view(store, run_id)
    assert p["epoch"] == "2/4" and p["remaining"] == pytest.approx(5.0 + 2 * 40.0)
    assert "epoch 2/4 · validating (30 of 40 batches)" in html and "remaining ~1m 25s" in html
    assert "validating epoch 2, stops after the current batch" in live.cancel_message(store.get_run(run_id), True)
    # Without a batch count (a run from before it was stored): the phase all the same.
    store.update_run(run_id, val_steps=None)
    assert "epoch 2/4 · validating…" in _view(store, run_id)[1]


def test_elapsed_time_is_per_attempt_and_in_all(store, runner):
    # A second attempt that started a minute ago, after attempts that took 100 s.
    run_id = _running(store, attempt=2, attempt_started_at=_iso(60), attempt_seconds=30.0, train_seconds=130.0)
    p, html = _view(store, run_id)
    assert 59 <= p["attempt_seconds"] <= 65 and 159 <= p["elapsed"] <= 165
    assert "elapsed 1m 0" in html and "this attempt (#2), 2m 4" in html
    store.set_status(run_id, "cancelled")
    p, html = _view(store, run_id)
    assert (p["attempt_seconds"], p["elapsed"]) == (30.0, 130.0) and p["remaining"] is None
    assert "elapsed 0m 30s this attempt (#2), 2m 10s in all" in html


def test_the_queue_in_line_and_what_the_panel_follows(store, runner):
    done = store.create_run("done", {"epochs": 2})
    store.set_status(done, "completed")
    first = store.create_run("first", {"epochs": 5})
    busy = _running(store, epochs=5)
    second = store.create_run("second", {"epochs": 5})
    runs = store.seen_runs()
    rows = live.jobs_rows(store, runs)
    assert [r[0] for r in rows] == [busy, first, second, done]
    assert [r[2] for r in rows] == ["running", "queued #1", "queued #2", "completed"]
    assert rows[3][-1] == "-"
    assert live.default_follow(runs) == busy
    second_run = next(r for r in runs if r["id"] == second)
    assert live.queue_note(second_run, runs) == f"2nd in the queue, behind run {busy}"
    assert f"waiting: 2nd in the queue, behind run {busy}" in live.status_html(second_run, [], runs)
    store.set_status(busy, "failed", "boom")
    runs = store.seen_runs()
    assert live.default_follow(runs) == first
    assert "boom" in live.status_html(next(r for r in runs if r["id"] == busy), [], runs)
    store.update_run(first, phase="preparing")  # its job started: the process loads data
    runs = store.seen_runs()
    assert live.default_follow(runs) == first
    assert "starting: loading the data" in live.status_html(next(r for r in runs if r["id"] == first), [], runs)
    assert live.duration(3725) == "1h 02m" and live.duration(65) == "1m 05s" and live.duration(None) == "-"


def test_cancel_and_resume_say_what_will_happen(store, runner):
    run_id = _running(store, step=10, step_seconds=12.0)
    run = store.get_run(run_id)
    assert live.can_cancel(run) and not live.can_resume(run)
    said = live.cancel_message(run, started=True)
    assert "stops after its current batch (about 1.2 s each here)" in said
    assert "No epoch has finished, so nothing is kept: Resume would start it over from epoch 1" in said
    store.log_epoch(run_id, 1, loss=1.0, seconds=10.0)
    assert "Epoch 1 is kept (its checkpoint): Resume would continue from epoch 2 of 10" in live.cancel_message(
        store.get_run(run_id), True
    )
    store.log_epoch(run_id, 2, loss=1.0, seconds=10.0)
    assert "Epochs 1-2 are kept (its checkpoint)" in live.cancel_message(store.get_run(run_id), True)
    store.truncate_epochs(run_id, 1)
    store.update_run(run_id, phase="evaluating validation")
    assert "final evaluation" in live.cancel_message(store.get_run(run_id), True)
    assert live.cancel_message(run, started=False).endswith("was waiting in the queue and had not started.")
    store.set_status(run_id, "cancelled")
    run = store.get_run(run_id)
    assert live.can_resume(run) and not live.can_cancel(run)
    assert "starts over from epoch 1 of 10" in live.resume_message(run, 0, [run])
    assert "resume from its checkpoint after epoch 1: epochs 2-10 to go" in live.resume_message(run, 1, [run])
    assert "runs the final evaluation only" in live.resume_message(run, 10, [run])
    store.set_status(run_id, "completed")
    assert not live.can_cancel(store.get_run(run_id)) and not live.can_resume(store.get_run(run_id))


def test_a_resumed_run_says_so_at_once_and_its_time_per_attempt_from_the_start(store, runner):
    """Issue 23: after Resume the panel said "cancelled", then "starting … elapsed 1m 41s" that dropped to
    "0m 09s this attempt"; and the "Cancelling run 3" line stayed after the run had stopped."""
    run_id = _running(store, attempt=1, attempt_started_at=_iso(200), attempt_seconds=100.0, train_seconds=100.0)
    store.log_epoch(run_id, 1, loss=1.0, seconds=40.0)
    notice = live.cancel_message(store.get_run(run_id), True)
    assert notice.startswith(f"Cancelling run {run_id}:")
    assert live.settled_notice(notice, store.seen_runs()) is None  # still stopping: the line stays
    store.set_status(run_id, "cancelled")
    assert live.settled_notice(notice, store.seen_runs()) == (
        f"Run {run_id} has stopped (cancelled). Epoch 1 is kept (its checkpoint): Resume would continue from "
        "epoch 2 of 10."
    )
    assert live.settled_notice("Run 3 queued to resume", store.seen_runs()) is None
    # Resume: queued, and the queue starts its job at once (phase "preparing") before the job clocks its
    # second attempt. The first attempt's clock is not taken for this one's.
    store.set_status(run_id, "queued")
    assert store.get_run(run_id)["attempt_started_at"] is None  # the last attempt's clock stopped with it
    store.update_run(run_id, phase="preparing")
    p, html = _view(store, run_id)
    assert p["attempt_seconds"] is None and p["elapsed"] == 100.0
    assert "queued</b> · resuming from epoch 2/10: loading the data and its checkpoint" in html
    assert "elapsed 0m 00s this attempt (#2), 1m 40s in all" in html
    # The job clocks attempt 2: the same words, counting.
    store.update_run(run_id, attempt=2, attempt_started_at=_iso(9), attempt_seconds=0.0, train_seconds=100.0)
    p, html = _view(store, run_id)
    assert 9 <= p["attempt_seconds"] <= 15 and 109 <= p["elapsed"] <= 115
    assert "elapsed 0m 09s this attempt (#2), 1m 49s in all" in html or "this attempt (#2), 1m 5" in html
    # Waiting behind another job instead: where it stands, and where it will resume.
    store.set_status(run_id, "cancelled")
    store.update_run(run_id, attempt=1, attempt_started_at=_iso(200))
    store.set_status(run_id, "queued")
    busy = _running(store)
    runs = store.seen_runs()
    run = next(r for r in runs if r["id"] == run_id)
    assert f"resuming from epoch 2/10; waiting: 1st in the queue, behind run {busy}" in live.status_html(run, [], runs)
