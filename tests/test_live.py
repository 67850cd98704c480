"""The live panel's numbers, from store rows."""
from datetime import datetime, timedelta, timezone

import pytest

from workbench.ui.views import live


def _iso(seconds_ago):
    return (datetime.now(timezone.utc) - timedelta(seconds=seconds_ago)).isoformat()


def test_progress_of_a_running_job(store):
    run_id = store.create_run("a", {"epochs": 10})
    store.set_status(run_id, "running")
    store.update_run(run_id, started_at=_iso(100), train_images=5000, steps_per_epoch=50, step=25)
    for epoch in (1, 2):
        store.log_epoch(run_id, epoch, lr=0.1, loss=1.0, accuracy=0.5, val_loss=1.0, val_accuracy=0.5, seconds=40.0)
    p = live.progress(store.get_run(run_id), store.epochs(run_id))
    assert p["epoch"] == "3/10" and p["fraction"] == pytest.approx(0.25)
    assert p["images_per_second"] == pytest.approx(125.0)
    assert p["remaining"] == pytest.approx(40.0 * 7.5)
    assert 99 <= p["elapsed"] <= 110
    html = live.status_html(store.get_run(run_id), store.epochs(run_id))
    assert "epoch 3/10" in html and "125 images/s" in html and "remaining ~5m 00s" in html


def test_jobs_rows_follow_and_finished_runs(store):
    done = store.create_run("done", {"epochs": 2})
    store.set_status(done, "running")
    store.set_status(done, "completed")
    queued = store.create_run("waiting", {"epochs": 5})
    running = store.create_run("busy", {"epochs": 5})
    store.set_status(running, "running")
    rows = live.jobs_rows(store)
    assert [r[0] for r in rows] == [queued, running, done]
    assert rows[2][2] == "completed" and rows[2][-1] == "-"
    assert live.default_follow(store) == running
    store.set_status(running, "failed", "boom")
    assert live.default_follow(store) == queued
    assert "boom" in live.status_html(store.get_run(running), [])
    assert live.duration(3725) == "1h 02m" and live.duration(65) == "1m 05s" and live.duration(None) == "-"
