"""Readers of a store and its job lock: runs whose runner was killed read as interrupted (the CLI's
`runs`, the Runs tab and the live panel read through `Store.seen_runs`), and probing the lock never
keeps a runner from taking it."""

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from store import Store
from store.lock import StoreLock, held

HOLDER_SCRIPT = """
import sys, time
from store.lock import StoreLock
lock = StoreLock(sys.argv[1]).acquire()
print("held", flush=True)
time.sleep(600)
"""


def test_readers_show_the_runs_of_a_killed_runner_as_interrupted(tmp_path):
    path = tmp_path / "w.db"
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root), "TF_CPP_MIN_LOG_LEVEL": "3"}
    with Store(path) as s:
        busy, waiting, done = (s.create_run(name, {}) for name in ("busy", "waiting", "done"))
        s.set_status(busy, "running")
        s.set_status(done, "completed")
        holder = subprocess.Popen(
            [sys.executable, "-c", HOLDER_SCRIPT, str(path)], cwd=root, env=env, stdout=subprocess.PIPE, text=True
        )
        assert holder.stdout.readline().strip() == "held"
        assert s.runner_alive()
        assert [r["status"] for r in s.seen_runs()] == ["running", "queued", "completed"]
        holder.kill()  # SIGKILL: nothing of it runs any more, the OS drops its lock
        holder.wait()
        holder.stdout.close()
        assert not s.runner_alive()
        seen = {r["id"]: r for r in s.seen_runs()}
        assert [seen[i]["status"] for i in (busy, waiting, done)] == ["interrupted", "interrupted", "completed"]
        assert "no process is running this store's jobs" in seen[busy]["error"] and seen[done]["error"] is None
        assert [r["id"] for r in s.seen_runs(status="interrupted")] == [busy, waiting]
        assert s.seen_runs(status="running") == []
        assert s.get_run(busy)["status"] == "running"  # the store is left for the next runner to mark
        table = subprocess.run(
            [sys.executable, "-m", "workbench", "--db", str(path), "runs"],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
        ).stdout
        assert any("busy" in line and "interrupted" in line for line in table.splitlines()), table
        lock = StoreLock(path).acquire()  # the next runner
        assert s.mark_interrupted() == [busy, waiting]
        lock.release()


def test_probing_the_lock_never_keeps_a_runner_from_taking_it(tmp_path):
    path = tmp_path / "w.db"
    assert not held(path)  # no runner ever opened this store: no lock file
    stop = threading.Event()
    probes = []

    def probe():
        while not stop.is_set():
            probes.append(held(path))

    thread = threading.Thread(target=probe)
    thread.start()
    try:
        for _ in range(30):
            lock = StoreLock(path).acquire()  # raises if a probe kept it from the lock for 0.5 s
            # Both states last a moment (a sleep gives the probe the GIL): without them a loaded machine's
            # scheduling let the probe run only while the lock was held, and the test read that as a failure.
            time.sleep(0.002)
            lock.release()
            time.sleep(0.002)
    finally:
        stop.set()
        thread.join()
    assert len(probes) > 30 and True in probes and False in probes
