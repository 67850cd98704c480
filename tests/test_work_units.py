"""tests/work_units.py on a small project run with `-n 2 --dist loadfile`, as `make test` runs this suite: the
units reach the controller's scheduler (the part pytest 9.2 broke for xdist's own groups), a one-per-run
session fixture is built once for all its files, a module fixture once, a file of plain tests is spread over
both workers, the longest unit starts first, and --store-durations writes what the next run orders by."""

import json
import os
import subprocess
import sys
import textwrap

from conftest import ROOT

CONFTEST = """
import os
from pathlib import Path

import pytest
from work_units import (
    pytest_addoption, pytest_collection_modifyitems, pytest_configure, pytest_configure_node,
    pytest_terminal_summary, pytest_unconfigure, pytest_xdist_make_scheduler,
)

LOG = Path(__file__).parent / "log"


def note(*words):
    with open(LOG, "a") as log:
        log.write(" ".join([os.environ.get("PYTEST_XDIST_WORKER", "main"), *map(str, words)]) + "\\n")


@pytest.fixture(scope="session")
def server():  # one per run: its files share a worker
    note("server", os.getpid())
    return "server"


@pytest.fixture(scope="session")
def cheap():  # named in per_worker_fixtures: does not tie its users together
    return "cheap"


@pytest.fixture(autouse=True)
def ran(request):
    note("ran", request.node.nodeid)
"""

FILES = {
    "test_shares_a.py": "def test_one(server): pass\n\ndef test_two(server): pass\n",
    "test_shares_b.py": "def test_uses_it(server): pass\n\ndef test_does_not(): pass\n",
    "test_module.py": textwrap.dedent("""
        import pytest
        from conftest import note

        @pytest.fixture(scope="module")
        def built():
            note("module fixture")

        def test_first(built, cheap): pass

        def test_second(built): pass
        """),
    "test_plain.py": "".join(f"def test_{i}(cheap):\n    pass\n\n" for i in range(4)),
}


def _run(folder, *args):
    # Only xdist among the installed plugins: each of the three processes starts in about a second.
    env = {**os.environ, "PYTHONPATH": str(ROOT / "tests"), "PYTEST_ADDOPTS": "", "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "xdist", "-n", "2", "--dist", "loadfile", "-v", *args],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def test_units_reach_the_scheduler_with_two_workers(tmp_path):
    (tmp_path / "pytest.ini").write_text(
        "[pytest]\nper_worker_fixtures = cheap\ndurations_file = durations.json\naddopts = -p no:cacheprovider\n"
    )
    (tmp_path / "conftest.py").write_text(CONFTEST)
    for name, text in FILES.items():
        (tmp_path / name).write_text(text)
    # test_module.py's unit is the longest: it starts first; the plain tests next, one unit each, so the other
    # worker starts one and each worker is given one more (xdist keeps two tests queued per worker).
    stored = {"test_module.py::test_first": 30.0, "test_module.py::test_second": 30.0}
    stored |= {f"test_plain.py::test_{i}": 20.0 for i in range(4)}
    (tmp_path / "durations.json").write_text(json.dumps(stored))
    result = _run(tmp_path, "--store-durations")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "work units: 6 for 10 tests" in result.stdout  # shared, module, four plain tests
    assert "4 without a stored duration" in result.stdout  # the shared files' tests: no time given above
    lines = [line.split() for line in (tmp_path / "log").read_text().splitlines()]
    ran = {words[2]: words[0] for words in lines if words[1] == "ran"}
    assert len(ran) == 10 and set(ran.values()) == {"gw0", "gw1"}
    assert len([words for words in lines if words[1] == "server"]) == 1  # one server for both files
    assert len({ran[n] for n in ran if n.startswith("test_shares_")}) == 1  # ... on one worker
    assert len([words for words in lines if words[1:3] == ["module", "fixture"]]) == 1
    assert len({ran[n] for n in ran if n.startswith("test_module.py")}) == 1
    assert {ran[n] for n in ran if n.startswith("test_plain.py")} == {"gw0", "gw1"}  # spread
    first = {}
    for words in lines:
        if words[1] == "ran":
            first.setdefault(words[0], words[2])
    assert "test_module.py::test_first" in first.values()
    durations = json.loads((tmp_path / "durations.json").read_text())
    assert durations["test_module.py::test_first"] < 30 and set(durations) == set(ran)
