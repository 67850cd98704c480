"""How `pytest -n N --dist loadfile` splits this suite into units of work, derived from the tests themselves.

A unit is what one xdist worker runs as a whole. It follows from the fixtures a test uses (no list of files):
  - a session-scoped fixture defined in this project (`tests/`) is one per run: every file with a test that
    uses it is one unit together with the other such files, so one worker holds the one instance (the shared
    `app_server`, the Ray cluster). Cheap session fixtures each worker may have its own of are named in the
    ini option `per_worker_fixtures` (the browser, a path).
  - else a file with a module-, class- or package-scoped fixture is one unit (the fixture is built once);
  - else each test is a unit of its own, so a file of long tests is spread over the workers.
Units start longest first, by the seconds stored in the ini option `durations_file` (nodeid -> seconds,
written by `pytest --store-durations`); a test without a stored time counts DEFAULT_SECONDS, and the summary
says how many had none.

The workers collect, the controller schedules, and with pytest 9.2 nothing but node ids crosses from one to the
other at collection (xdist's own `xdist_group` side channel, a suffix on the node id, no longer takes effect:
pytest-dev/pytest-xdist#1386). So each worker writes its unit of every node id into a folder the controller
named (`pytest_configure_node`), and the controller's scheduler reads it; a node id without a unit stops the
run (nothing falls back silently).

tests/conftest.py imports the hooks below; tests/test_work_units.py runs a small project with `-n 2` on them.
"""

import json
import shutil
import statistics
import tempfile
from pathlib import Path

import pytest

DEFAULT_SECONDS = 1.0
FOLDER_KEY = "work_units_folder"
SHARED_SCOPES = ("module", "class", "package")
_folder_key = pytest.StashKey[Path]()
_summary_key = pytest.StashKey[dict]()


def pytest_addoption(parser):
    parser.addini(
        "per_worker_fixtures",
        type="linelist",
        default=[],
        help="session fixtures of this project each xdist worker may build for itself (tests/work_units.py)",
    )
    parser.addini("durations_file", default="", help="stored seconds per test, read to start long units first")
    parser.addoption(
        "--store-durations",
        action="store_true",
        help="write this run's seconds per test into the ini option durations_file (kept for tests not run)",
    )


def _durations_path(config) -> Path | None:
    name = config.getini("durations_file")
    return config.rootpath / name if name else None


def stored_durations(config) -> dict:
    path = _durations_path(config)
    if path is None or not path.exists():
        return {}
    return json.loads(path.read_text())


def _project_fixture(fixturedef, root: Path) -> bool:
    try:
        path = Path(fixturedef.func.__code__.co_filename).resolve()
    except AttributeError:
        return False
    return root in path.parents and "site-packages" not in path.parts


def _fixture_scopes(item) -> dict:
    """{fixture name: its scope} for every fixture the test uses (the one that applies, where overridden)."""
    info = getattr(item, "_fixtureinfo", None)
    if info is None:  # not a function test (a doctest, say): it uses nothing worth sharing
        return {}
    return {name: defs[-1] for name, defs in info.name2fixturedefs.items() if defs}


def work_units(items, config) -> dict:
    """{nodeid: unit name} by the rules in this module's docstring."""
    root = config.rootpath.resolve()
    per_worker = set(config.getini("per_worker_fixtures"))
    file_of = {item.nodeid: item.nodeid.split("::", 1)[0] for item in items}
    once_per_run: dict[str, set] = {}  # file -> the one-per-run fixtures its tests use
    shares_a_fixture = set()  # files with a module-scoped (or class, package) fixture
    for item in items:
        for name, fixturedef in _fixture_scopes(item).items():
            scope = fixturedef.scope
            if scope == "session" and name not in per_worker and _project_fixture(fixturedef, root):
                once_per_run.setdefault(file_of[item.nodeid], set()).add(name)
            elif scope in SHARED_SCOPES:
                shares_a_fixture.add(file_of[item.nodeid])
    # Files that share a one-per-run fixture, directly or through another file, are one unit (union-find).
    parent: dict[str, str] = {}

    def find(key):
        while parent.setdefault(key, key) != key:
            key = parent[key]
        return key

    for file, names in once_per_run.items():
        for name in names:
            parent[find(f"fixture {name}")] = find(file)
    groups: dict[str, set] = {}
    for file, names in once_per_run.items():
        groups.setdefault(find(file), set()).update(names)
    unit_of_file = {file: "shares " + ", ".join(sorted(groups[find(file)])) for file in once_per_run}
    units = {}
    for item in items:
        file = file_of[item.nodeid]
        if file in unit_of_file:
            units[item.nodeid] = unit_of_file[file]
        elif file in shares_a_fixture:
            units[item.nodeid] = file
        else:
            units[item.nodeid] = item.nodeid
    return units


@pytest.hookimpl(trylast=True)  # after -m/-k deselection: the units are made of the tests that run
def pytest_collection_modifyitems(session, config, items):
    durations = stored_durations(config)
    by_file: dict[str, list] = {}
    for nodeid, seconds in durations.items():
        by_file.setdefault(nodeid.split("::", 1)[0], []).append(seconds)
    units = work_units(items, config)
    unknown = [item.nodeid for item in items if item.nodeid not in durations]
    cost: dict[str, float] = {}
    first: dict[str, int] = {}
    for index, item in enumerate(items):
        seconds = durations.get(item.nodeid, DEFAULT_SECONDS)
        cost[units[item.nodeid]] = cost.get(units[item.nodeid], 0.0) + seconds
        first.setdefault(units[item.nodeid], index)
    position = {item.nodeid: i for i, item in enumerate(items)}
    # Longest unit first; a unit's tests together and in their file's order (module fixtures stay built once).
    items.sort(key=lambda item: (-cost[units[item.nodeid]], first[units[item.nodeid]], position[item.nodeid]))
    config.stash[_summary_key] = {"units": len(cost), "tests": len(items), "unknown": len(unknown)}
    workerinput = getattr(config, "workerinput", None)
    if workerinput and FOLDER_KEY in workerinput:
        record = {"units": {item.nodeid: units[item.nodeid] for item in items}, "unknown": len(unknown)}
        path = Path(workerinput[FOLDER_KEY]) / f"{workerinput['workerid']}.json"
        path.write_text(json.dumps(record))


# --- the controller ------------------------------------------------------------------------------


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node):
    """Each worker is told where to write its units (the controller's side, before the worker starts)."""
    config = node.config
    if _folder_key not in config.stash:
        config.stash[_folder_key] = Path(tempfile.mkdtemp(prefix="work-units-"))
    node.workerinput[FOLDER_KEY] = str(config.stash[_folder_key])


def recorded_units(config) -> dict:
    """The workers' {nodeid: unit}; they must agree (they collected the same tests from the same files)."""
    records = [json.loads(p.read_text()) for p in sorted(config.stash[_folder_key].glob("*.json"))]
    if not records:
        raise RuntimeError("no worker recorded its work units (tests/work_units.py): is tests/conftest.py loaded?")
    if any(r["units"] != records[0]["units"] for r in records[1:]):
        raise RuntimeError("the workers recorded different work units for the same tests")
    config.stash[_summary_key] = {
        "units": len(set(records[0]["units"].values())),
        "tests": len(records[0]["units"]),
        "unknown": records[0]["unknown"],
    }
    return records[0]["units"]


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """`--dist loadfile`, with the units above in place of files; other `--dist` modes are xdist's own."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class WorkUnits(LoadFileScheduling):
        def __init__(self, config, log=None):
            super().__init__(config, log)
            # The workers sent their tests longest unit first; xdist would reorder the units by test count.
            config.option.loadscopereorder = False
            self.units: dict | None = None

        def _split_scope(self, nodeid: str) -> str:
            if self.units is None:
                self.units = recorded_units(self.config)
            if nodeid not in self.units:
                raise RuntimeError(f"no work unit recorded for {nodeid} (tests/work_units.py)")
            return self.units[nodeid]

    return WorkUnits(config, log)


class _DurationRecorder:
    """--store-durations: each test's setup, call and teardown seconds (on the controller under xdist, which
    receives the workers' reports), merged into the durations file at the end (tests not run keep theirs)."""

    def __init__(self, config):
        self.config, self.seconds = config, {}

    def pytest_runtest_logreport(self, report):
        self.seconds[report.nodeid] = self.seconds.get(report.nodeid, 0.0) + report.duration

    def pytest_sessionfinish(self, session):
        path = _durations_path(self.config)
        merged = {**stored_durations(self.config), **{k: round(v, 2) for k, v in self.seconds.items()}}
        path.write_text(json.dumps(dict(sorted(merged.items())), indent=0) + "\n")


def pytest_configure(config):
    if config.getoption("store_durations", False) and not hasattr(config, "workerinput"):
        if _durations_path(config) is None:
            raise pytest.UsageError("--store-durations needs the ini option durations_file")
        config.pluginmanager.register(_DurationRecorder(config), "work-units-durations")


def pytest_terminal_summary(terminalreporter, config):
    summary = config.stash.get(_summary_key, None)
    if summary is None or hasattr(config, "workerinput"):
        return
    line = f"work units: {summary['units']} for {summary['tests']} tests (tests/work_units.py)"
    if summary["unknown"]:
        median = statistics.median(stored_durations(config).values() or [DEFAULT_SECONDS])
        line += (
            f"; {summary['unknown']} without a stored duration, counted as {DEFAULT_SECONDS:.0f} s "
            f"(median stored {median:.1f} s): `--store-durations` records them"
        )
    terminalreporter.write_line(line)


def pytest_unconfigure(config):
    folder = config.stash.get(_folder_key, None)
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)
