"""Shared fixtures: quiet TensorFlow, the real CIFAR-10 copy when this checkout has one."""

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_CIFAR10 = ROOT.parent / "shared" / "data" / "cifar10-jpeg.tar.gz"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="session")
def shared_cifar10() -> Path:
    """Path of the bundled CIFAR-10 JPEG archive; skips the test where the checkout has none."""
    if not SHARED_CIFAR10.exists():
        pytest.skip(f"real CIFAR-10 copy not present at {SHARED_CIFAR10} (only CI and dev machines have it)")
    return SHARED_CIFAR10


@pytest.fixture
def store(tmp_path):
    """A fresh store in a temporary folder (`runs/workbench.db`, as the app lays it out)."""
    from store import Store

    with Store(tmp_path / "runs" / "workbench.db") as s:
        yield s


@pytest.fixture
def cache_dir(tmp_path, monkeypatch) -> Path:
    """A private decode cache so tests never touch the user's ~/.cache."""
    path = tmp_path / "cache"
    monkeypatch.setenv("WORKBENCH_CACHE", str(path))
    return path


# --- finished runs written through the Store API, as training leaves them (no training) ------------

RUN_CREATE_FIELDS = ("kind", "dataset", "split_id", "params", "tags", "notes")


def logits_for(labels, rng, skill=2.0, classes=10):
    """Logits a model of some `skill` might give: unit noise, the true class raised by `skill`."""
    import numpy as np

    z = rng.normal(0, 1, (len(labels), classes)).astype(np.float32)
    z[np.arange(len(labels)), labels] += skill
    return z


def completed_run(store, name, spec, *, logits=None, rng=None, skill=2.0, flips=False, epochs=(), **fields) -> int:
    """A completed run: `fields` (create_run's, e.g. split_id and tags, and any run column such as
    test_accuracy), its epoch rows (dicts for `log_epoch`), and for each {split: labels} in `logits`
    logits of `skill` (with `flips`, the mirrored `<split>_flip` ones too), then running -> completed."""
    run_id = store.create_run(name, spec, **{k: fields.pop(k) for k in RUN_CREATE_FIELDS if k in fields})
    store.set_status(run_id, "running")
    for row in epochs:
        store.log_epoch(run_id, **row)
    if fields:
        store.update_run(run_id, **fields)
    for split, y in (logits or {}).items():
        for stored in (split, f"{split}_flip") if flips else (split,):
            store.save_logits(run_id, stored, logits_for(y, rng, skill), y)
    store.set_status(run_id, "completed")
    return run_id


# --- a real app server in a subprocess, for gradio_client and browser tests ----------------------

import re
import socket
import subprocess
import sys
import time
import urllib.request

ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")


def wait_until(predicate, what: str = "", timeout: float = 60, page=None, every: float = 0.3):
    """`predicate()`'s first true value, polled (a page's events finish on their own time); on a timeout
    the `page`, if given, is saved as test-artifacts/wait-timeout.png to show what was there instead."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    if page is not None:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "wait-timeout.png"), full_page=True)
    raise AssertionError(f"timed out waiting for {what}")


def wait_text(locator, pattern: str, timeout: float = 120) -> str:
    """A page element's text once it matches the regex `pattern` (the page updates on its own time)."""
    deadline, text = time.monotonic() + timeout, ""
    while time.monotonic() < deadline:
        text = locator.inner_text()
        if re.search(pattern, text):
            return text
        time.sleep(0.5)
    raise AssertionError(f"{pattern!r} not found in {text!r}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class AppServer:
    def __init__(self, folder: Path, *extra_args):
        self.db = folder / "runs" / "workbench.db"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log = folder / "app.log"
        env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3", "WORKBENCH_AUTH": ""}
        self.process = subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "app.py"),
                "--db",
                str(self.db),
                "--port",
                str(self.port),
                "--no-browser",
                *extra_args,
            ],
            cwd=folder,
            env=env,
            stdout=self.log.open("w"),
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"app exited: {self.log.read_text()[-3000:]}")
            try:
                urllib.request.urlopen(self.url, timeout=2)
                return
            except urllib.error.HTTPError:
                return  # it answers (401 when a login is required)
            except OSError:
                time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"app did not start: {self.log.read_text()[-3000:]}")

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()


@pytest.fixture(scope="session")
def app_server(tmp_path_factory):
    """One server on an empty store, shared by every test that asks for it (an app start costs about 20 s
    here, mostly importing Gradio and TensorFlow): such tests must not assume run ids or an empty store.
    Under xdist their files are one unit of work, so one worker holds the one server (tests/work_units.py)."""
    server = AppServer(tmp_path_factory.mktemp("app"))
    yield server
    server.stop()


# The loopback two-node Ray cluster, one per test session: defined here, once, so that every file using it shares
# the one instance (a fixture imported into two test modules would be two fixtures, and start Ray twice).
from cluster_fixtures import ray_cluster  # noqa: F401

# How `-n 2` splits the suite (which files share a worker, which tests spread, what starts first) follows
# from the fixtures each test uses and the seconds stored in tests/durations.json: see tests/work_units.py.
from work_units import (  # noqa: F401  (hooks: pytest finds them in this module)
    pytest_addoption,
    pytest_collection_modifyitems,
    pytest_configure,
    pytest_configure_node,
    pytest_terminal_summary,
    pytest_unconfigure,
    pytest_xdist_make_scheduler,
)


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (/usr/bin/chromium); `.ci/run` installs it")
    playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with playwright_api.sync_playwright() as p:
        launched = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield launched
        launched.close()
