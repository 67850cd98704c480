"""The Runs tab's leaderboard: its columns, filters and sorts, one row per run or saved ensemble, the table as
the page shows it (numbers kept, shown short) and as CSV."""

from __future__ import annotations

import csv
import math
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from workbench.constants import RunKind
from workbench.errors import UserError
from workbench.views.runs.describe import lineage, run_augment, run_loss, run_model

# Leaderboard columns, in display order; accuracies are percentages, training time minutes.
COLUMNS = (
    "Kind",
    "ID",
    "Name",
    "Model",
    "Loss",
    "Augmentations",
    "Status",
    "Best val acc %",
    "Final val acc %",
    "Test acc %",
    "Reviewed test %",  # on the test set with its label reviews applied (issue 24); blank without reviews
    "Params",
    "Train min",
    "Tags",
    "Notes",
)
HEADERS = {"Augmentations": "Augment"}  # shown instead, in a column that fits its values; the CSV keeps COLUMNS
NUMERIC = {"ID", "Best val acc %", "Final val acc %", "Test acc %", "Reviewed test %", "Params", "Train min"}
DATATYPES = ["number" if c in NUMERIC else "str" for c in COLUMNS]
NODE = "Node"  # the Ray node a run trained on: a column only when the app runs jobs on a cluster
BY = "By"  # who made the run or ensemble: a column only on a page with logins (one user needs no such column)


def columns(nodes: bool = False, owners: bool = False) -> tuple:
    """The leaderboard's columns: with `nodes`, the node each run trained on, and with `owners`, who made it,
    after its status."""
    at = COLUMNS.index("Status") + 1
    return COLUMNS[:at] + ((NODE,) if nodes else ()) + ((BY,) if owners else ()) + COLUMNS[at:]


# "sort by" label -> (column, descending)
SORTS = {
    "ID (newest first)": ("ID", True),
    "ID (oldest first)": ("ID", False),
    "Best val acc": ("Best val acc %", True),
    "Final val acc": ("Final val acc %", True),
    "Test acc": ("Test acc %", True),
    "Params (fewest first)": ("Params", False),
    "Train time (shortest first)": ("Train min", False),
    "Name": ("Name", False),
}
DEFAULT_SORT = "ID (newest first)"
EMPTY_MESSAGE = "No runs yet: train one in the Train tab."


@dataclass(frozen=True)
class LeaderboardFilters:
    """What the leaderboard shows: the runs' statuses, models, losses, tags (any of them) and makers (an empty
    one passes all), archived runs or not, ensembles or not, and the sort. Built once from a Runs tab handler's
    inputs and passed through: its fields are in the order of the tab's filter components (`RunsView.filters`),
    so `LeaderboardFilters(*values)` takes their values. A Gradio value may be None or a list: each is kept as a
    tuple, the flags as bools, no sort as the default."""

    status: tuple = ()
    model: tuple = ()
    loss: tuple = ()
    tag: tuple = ()
    show_archived: bool = False
    show_ensembles: bool = True
    sort_by: str = DEFAULT_SORT
    by: tuple = ()

    def __post_init__(self):
        # frozen: the normalised values are set the way dataclasses itself sets them
        for name in ("status", "model", "loss", "tag", "by"):
            object.__setattr__(self, name, tuple(getattr(self, name) or ()))
        object.__setattr__(self, "show_archived", bool(self.show_archived))
        object.__setattr__(self, "show_ensembles", bool(self.show_ensembles))
        object.__setattr__(self, "sort_by", self.sort_by or DEFAULT_SORT)


def _pct(value):
    return None if value is None else round(100.0 * float(value), 2)


def _minutes(seconds):
    return None if seconds is None else round(float(seconds) / 60.0, 1)


def filter_options(runs: list[dict]) -> dict:
    """The choices of the filter dropdowns: statuses, models, losses and tags found in `runs`."""
    return {
        "status": sorted({r["status"] for r in runs}),
        "model": sorted({m for m in map(run_model, runs) if m}),
        "loss": sorted({x for x in map(run_loss, runs) if x}),
        "tag": sorted({t for r in runs for t in (r.get("tags") or [])}),
        "by": sorted({r["created_by"] for r in runs if r.get("created_by")}),
    }


def filter_runs(
    runs: list[dict], *, status=(), model=(), loss=(), tag=(), by=(), show_archived: bool = False
) -> list[dict]:
    """Runs that pass every active filter (an empty filter passes all; tags: any of them; by: who made it)."""
    status, model, loss, tag, by = (set(x or ()) for x in (status, model, loss, tag, by))
    kept = []
    for run in runs:
        if run.get("archived") and not show_archived:
            continue
        if status and run["status"] not in status:
            continue
        if model and run_model(run) not in model:
            continue
        if loss and run_loss(run) not in loss:
            continue
        if tag and not tag & set(run.get("tags") or ()):
            continue
        if by and run.get("created_by") not in by:
            continue
        kept.append(run)
    return kept


def run_row(run: dict) -> dict:
    status = run["status"] + (" (archived)" if run.get("archived") else "")
    taught = lineage(run)
    return {
        "Kind": run.get("kind") or RunKind.SCRATCH.value,
        "ID": run["id"],
        "Name": run["name"],
        "Model": run_model(run) + (f" · {taught}" if taught else ""),
        "Loss": run_loss(run),
        "Augmentations": run_augment(run, ", "),  # as --augment takes them; wraps between names
        "Status": status,
        BY: run.get("created_by") or "",
        "Best val acc %": _pct(run.get("best_val_accuracy")),
        "Final val acc %": _pct(run.get("final_val_accuracy")),
        "Test acc %": _pct(run.get("test_accuracy")),
        "Reviewed test %": _pct(run.get("reviewed_test_accuracy")),
        "Params": run.get("params"),
        "Train min": _minutes(run.get("train_seconds")),
        "Tags": ", ".join(run.get("tags") or []),
        "Notes": run.get("notes") or "",
        NODE: run.get("node") or "",
    }


def ensemble_row(ensemble: dict, runs_by_id: dict) -> dict:
    members = [int(m) for m in ensemble.get("members") or []]
    found = [runs_by_id[m] for m in members if m in runs_by_id]
    complete = len(found) == len(members) and members
    params = (
        sum(r.get("params") or 0 for r in found)
        if complete and all(r.get("params") is not None for r in found)
        else None
    )
    seconds = sum(r.get("train_seconds") or 0 for r in found) if complete else None
    missing = [m for m in members if m not in runs_by_id]
    note = f"{ensemble.get('method', '')} of runs {', '.join(map(str, members))}"
    if missing:
        note += f" (run(s) {', '.join(map(str, missing))} deleted or hidden)"
    return {
        "Kind": "ensemble",
        "ID": ensemble["id"],
        "Name": ensemble["name"],
        "Model": f"ensemble of {len(members)}",
        "Loss": "",
        "Augmentations": "",
        "Status": "saved",
        BY: ensemble.get("created_by") or "",
        "Best val acc %": _pct(ensemble.get("val_accuracy")),
        "Final val acc %": _pct(ensemble.get("val_accuracy")),
        "Test acc %": _pct(ensemble.get("test_accuracy")),
        "Reviewed test %": _pct(ensemble.get("reviewed_test_accuracy")),
        "Params": params,
        "Train min": _minutes(seconds),
        "Tags": "",
        "Notes": note,
        NODE: "",
    }


def sort_rows(rows: list[dict], sort_by: str = DEFAULT_SORT) -> list[dict]:
    """Rows sorted by a SORTS choice; missing values last; ensembles after runs on ties (and
    after all runs when sorting by ID)."""
    if sort_by not in SORTS:
        raise UserError(f"unknown sort {sort_by!r}; choose one of: {', '.join(SORTS)}")
    column, descending = SORTS[sort_by]

    def key(row):
        if column == "ID":  # run and ensemble ids are separate sequences: runs first
            return (row["Kind"] == "ensemble", -row["ID"] if descending else row["ID"])
        value = row[column]
        if value is None:
            return (1, 0, row["Kind"] == "ensemble", row["ID"])
        if isinstance(value, str):
            value = value.lower()
            return (0, value, row["Kind"] == "ensemble", row["ID"])
        return (0, -value if descending else value, row["Kind"] == "ensemble", row["ID"])

    return sorted(rows, key=key)


def leaderboard_rows(
    runs: list[dict], ensembles: Sequence[dict] = (), filters: LeaderboardFilters = LeaderboardFilters()
) -> list[dict]:
    """The leaderboard: filtered runs plus (when no run filter but `by` is active) the saved ensembles, those
    of the users in `by` when it is."""
    f = filters
    kept = filter_runs(
        runs, status=f.status, model=f.model, loss=f.loss, tag=f.tag, by=f.by, show_archived=f.show_archived
    )
    rows = [run_row(r) for r in kept]
    if f.show_ensembles and not any((f.status, f.model, f.loss, f.tag)):
        by_id = {r["id"]: r for r in runs}
        rows += [ensemble_row(e, by_id) for e in ensembles if not f.by or e.get("created_by") in set(f.by)]
    return sort_rows(rows, f.sort_by)


def rows_to_table(rows: list[dict], shown=COLUMNS) -> list[list]:
    return [[row[c] for c in shown] for row in rows]


def format_count(n) -> str:
    """A parameter count as people say it, three digits: 20559958 -> "20.6M", 1730714 -> "1.73M"."""
    if _missing(n):
        return ""
    for scale, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= scale:
            decimals = max(0, 2 - int(math.log10(abs(n) / scale)))
            return f"{n / scale:.{decimals}f}{suffix}"
    return str(int(n))


def shown_headers(shown=COLUMNS) -> list:
    return [HEADERS.get(c, c) for c in shown]


def datatypes(shown=COLUMNS) -> list:
    return ["number" if c in NUMERIC else "str" for c in shown]


def display_table(rows: list[dict], shown=COLUMNS):
    """The leaderboard as the page shows it: numbers kept (so its columns sort as numbers) but displayed
    short: parameters as 20.6M, accuracies and minutes without trailing zeros, blanks for missing values."""
    import pandas as pd  # noqa: PLC0415 - pandas: a second at import; the views stay light for the CLI

    frame = pd.DataFrame(rows_to_table(rows, shown), columns=shown_headers(shown))
    number = lambda v: "" if _missing(v) else f"{v:g}"  # noqa: E731
    formats = {HEADERS.get(c, c): format_count if c == "Params" else number for c in NUMERIC}
    return frame.style.format(formats)


def write_csv(header, table, folder=None) -> Path:
    """Write the table to a new `leaderboard.csv` in a fresh temp folder; return its path."""
    path = Path(tempfile.mkdtemp(prefix="workbench-leaderboard-", dir=folder)) / "leaderboard.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(list(header))
        for row in table:
            writer.writerow(["" if _missing(v) else v for v in row])
    return path


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))
