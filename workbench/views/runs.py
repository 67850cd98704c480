"""The Runs tab's data, as pure functions of store rows and arrays (no Gradio, no store access).

Leaderboard rows and filters, run choices ((label "id: name", id) for Gradio), tag parsing, per-class accuracy,
accuracy grouped by setting (seeds as the spread) or by loss/augmentation/model (saying what each
group pools), a running run's training time, a clone's new name, EMA smoothing and curve series.
"""

from __future__ import annotations

import csv
import json
import math
import re
import tempfile
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import numpy as np

from workbench.constants import RunKind
from workbench.errors import UserError
from workbench.inspect.analysis import class_accuracy

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

# accuracy choice -> run column
ACCURACY_METRICS = {
    "Test accuracy": "test_accuracy",
    "Best validation accuracy": "best_val_accuracy",
    "Final validation accuracy": "final_val_accuracy",
}
# curve metric choice -> epochs column
CURVE_METRICS = {
    "Validation accuracy": "val_accuracy",
    "Validation loss": "val_loss",
    "Training loss": "loss",
    "Training accuracy": "accuracy",
    "Learning rate": "lr",
}
X_AXES = ("Epoch", "Wall time")
GROUP_BY = ("Setting", "Loss", "Augmentation", "Model")
NOT_SETTINGS = ("seed", "name", "gpus", "tensorboard")  # spec fields that do not make another setting: runs differing
# only in them are repeats of one setting, and their spread is the seeds' spread
EMPTY_MESSAGE = "No runs yet: train one in the Train tab."


# -- describing a run ----------------------------------------------------------------------------
def spec_of(run: dict) -> dict:
    spec = run.get("spec")
    return spec if isinstance(spec, dict) else {}


def run_model(run: dict) -> str:
    spec = spec_of(run)  # fine-tune runs name a backbone instead of a zoo model
    return str(spec.get("model") or (f"{spec['backbone']} (fine-tuned)" if spec.get("backbone") else ""))


def run_loss(run: dict) -> str:
    spec = spec_of(run)
    return str(spec.get("loss") or ("cross_entropy" if spec.get("backbone") else ""))


def run_augment(run: dict, sep: str = "+") -> str:
    augment = spec_of(run).get("augment") or []
    if isinstance(augment, str):
        augment = [a for a in augment.replace("+", ",").split(",") if a.strip()]
    return sep.join(str(a).strip() for a in augment) or "none"


def run_dataset(run: dict) -> str:
    return str(spec_of(run).get("dataset") or run.get("dataset") or "")


def run_label(run: dict) -> str:
    """How the page names a run in its choices, legends and headings: "12: name"."""
    return f"{run['id']}: {run['name']}"


def run_choice(run: dict, note: str = "") -> tuple[str, int]:
    """A run as a choice of a Gradio dropdown or checkbox group: (its label and `note`, its id). Every run
    choice of the page is one of these: the component's value is the id (a list of ids when it picks
    several) and nothing reads an id back out of a label."""
    return run_label(run) + note, int(run["id"])


def chosen_run_id(choice) -> int:
    """The run id a component of `run_choice`s gave; a UserError when none is picked."""
    if choice is None or (isinstance(choice, str) and not choice.strip()):
        raise UserError("pick a run first")
    if isinstance(choice, (int, np.integer)) and not isinstance(choice, bool):
        return int(choice)
    raise UserError(f"{choice!r} is not a run; pick one from the list")


def chosen_run_ids(choices) -> list[int]:
    """The run ids a multiselect of `run_choice`s gave (None: none)."""
    if choices is None:
        return []
    if isinstance(choices, (str, int, np.integer)):
        choices = [choices]
    return [chosen_run_id(c) for c in choices]


def fresh_name(name: str, taken) -> str:
    """A name for a clone of run `name` that no run in `taken` has: "name-2", "name-3", ... (a clone of
    "name-2" is "name-3", not "name-2-2")."""
    taken = set(taken)
    base = re.sub(r"-\d+$", "", name) if re.sub(r"-\d+$", "", name) in taken else name
    number = 2
    while f"{base}-{number}" in taken:
        number += 1
    return f"{base}-{number}"


def running_seconds(run: dict, epochs: list[dict], now: float):
    """A running run's training time so far (the store writes `train_seconds` only when a run stops):
    its logged epochs' seconds plus the time since the last one was logged, or since it started."""
    done = sum(float(e.get("seconds") or 0.0) for e in epochs)
    since = epochs[-1].get("logged_at") if epochs else run.get("started_at")
    if not since:
        return done or None
    return done + max(0.0, now - datetime.fromisoformat(since).timestamp())


# -- leaderboard ---------------------------------------------------------------------------------
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


def lineage(run: dict) -> str:
    """Where a run's knowledge came from: a distillation run's teacher (the name given and the runs it
    resolved to when queued), its mode and settings; a snapshot's or average's run it came from; "" for others."""
    if run.get("parent_run"):
        return f"{run.get('derived') or 'derived'} of run {run['parent_run']}"
    if run.get("kind") != RunKind.DISTILL:
        return ""
    spec = run.get("spec") or {}
    members = ", ".join(str(m) for m in (spec.get("teacher_members") or {}))
    return (
        f"taught by {spec.get('teacher', '?')} (run{'s' if ',' in members else ''} {members or '?'}), "
        f"{spec.get('distill_mode', '?')}, T {spec.get('temperature', '?')}, alpha {spec.get('alpha', '?')}"
    )


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
    runs: list[dict],
    ensembles: Sequence[dict] = (),
    *,
    status=(),
    model=(),
    loss=(),
    tag=(),
    show_archived=False,
    show_ensembles=True,
    sort_by: str = DEFAULT_SORT,
    by=(),
) -> list[dict]:
    """The leaderboard: filtered runs plus (when no run filter but `by` is active) the saved ensembles, those
    of the users in `by` when it is."""
    kept = filter_runs(runs, status=status, model=model, loss=loss, tag=tag, by=by, show_archived=show_archived)
    rows = [run_row(r) for r in kept]
    if show_ensembles and not any((status, model, loss, tag)):
        by_id = {r["id"]: r for r in runs}
        rows += [ensemble_row(e, by_id) for e in ensembles if not by or e.get("created_by") in set(by)]
    return sort_rows(rows, sort_by)


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


# -- analysis ------------------------------------------------------------------------------------
def per_class_accuracy(logits, labels, num_classes: int | None = None) -> np.ndarray:
    """Accuracy of argmax(logits) per true class (NaN for a class with no examples)."""
    logits = np.asarray(logits)
    labels = np.asarray(labels).reshape(-1).astype(np.int64)
    if logits.ndim != 2 or logits.shape[0] != labels.shape[0]:
        raise UserError(f"logits of shape {list(logits.shape)} do not match {labels.shape[0]} labels")
    return class_accuracy(labels, logits.argmax(axis=1), int(num_classes or logits.shape[1]))


def setting_key(run: dict) -> str:
    """The run's setting: its spec but the fields in NOT_SETTINGS (what seeds repeat)."""
    return json.dumps({k: v for k, v in spec_of(run).items() if k not in NOT_SETTINGS}, sort_keys=True, default=str)


def setting_labels(runs: list[dict]) -> dict:
    """{setting_key: label}: "model · loss · augmentations", and where settings share that, the spec
    fields in which they differ ("... · learning_rate=0.05")."""
    settings = {setting_key(r): r for r in runs}
    short = {key: f"{run_model(r) or '?'} · {run_loss(r) or '?'} · {run_augment(r)}" for key, r in settings.items()}
    labels = {}
    for key, label in short.items():
        alike = [json.loads(k) for k, other in short.items() if other == label]
        mine = json.loads(key)
        differ = sorted(f for f in set().union(*alike) if len({json.dumps(s.get(f), default=str) for s in alike}) > 1)
        labels[key] = " · ".join([label, *(f"{f}={mine.get(f)}" for f in differ)])
    return labels


def group_key(run: dict, by: str) -> str:
    if by == "Setting":
        return setting_key(run)
    if by == "Loss":
        return run_loss(run) or "?"
    if by == "Augmentation":
        return run_augment(run)
    if by == "Model":
        return run_model(run) or "?"
    raise UserError(f"unknown grouping {by!r}; choose one of: {', '.join(GROUP_BY)}")


def pooled(runs: list[dict], by: str) -> str:
    """What one group's spread is over: the seeds of one setting, or the settings a coarser group pools
    (e.g. every architecture trained with one loss)."""
    if by == "Setting":
        return "seeds " + ", ".join(sorted({str(spec_of(r).get("seed", "?")) for r in runs}))
    others = {"models": run_model, "losses": run_loss, "augmentations": run_augment}
    others.pop({"Loss": "losses", "Augmentation": "augmentations", "Model": "models"}[by])
    parts = [f"{what} " + ", ".join(sorted({describe(r) or "?" for r in runs})) for what, describe in others.items()]
    n = len({setting_key(r) for r in runs})
    return f"{n} setting{'s' * (n != 1)}: " + "; ".join(parts)


def group_accuracy(runs: list[dict], by: str = "Setting", metric: str = "Test accuracy") -> list[dict]:
    """Per group: `group` (its label), `n`, `mean` and `std` (sample std, 0 for one run) of the metric in
    %, the run ids and `pools` (what the spread is over); runs without the metric are left out. Sorted by
    mean, best first."""
    column = accuracy_column(metric)
    groups: dict[str, list] = {}
    for run in runs:
        if run.get(column) is not None:
            groups.setdefault(group_key(run, by), []).append(run)
    labels = setting_labels(runs) if by == "Setting" else {}
    result = []
    for name, members in groups.items():
        values = np.array([100.0 * float(r[column]) for r in members])
        std = float(values.std(ddof=1)) if len(values) > 1 else 0.0
        result.append(
            {
                "group": labels.get(name, name),
                "n": len(values),
                "mean": float(values.mean()),
                "std": std,
                "runs": [r["id"] for r in members],
                "pools": pooled(members, by),
            }
        )
    return sorted(result, key=lambda g: (-g["mean"], g["group"]))


def accuracy_column(metric: str) -> str:
    if metric not in ACCURACY_METRICS:
        raise UserError(f"unknown accuracy {metric!r}; choose one of: {', '.join(ACCURACY_METRICS)}")
    return ACCURACY_METRICS[metric]


def ema(values, alpha: float) -> list:
    """Exponential moving average `s = alpha * s + (1 - alpha) * x`; None values stay None and
    do not move the average; alpha 0 returns the values unchanged."""
    alpha = float(alpha or 0.0)
    if not 0.0 <= alpha < 1.0:
        raise UserError(f"smoothing must be in [0, 1), got {alpha}")
    out: list[float | None] = []
    state: float | None = None
    for x in values:
        if x is None or (isinstance(x, float) and math.isnan(x)):
            out.append(None)
            continue
        state = float(x) if state is None else alpha * state + (1.0 - alpha) * float(x)
        out.append(state)
    return out


def curve_series(epochs: list[dict], metric: str, x_axis: str = "Epoch") -> tuple[list, list]:
    """x (epoch, or cumulative wall-clock minutes) and y (the metric; accuracies in %) of a run."""
    if metric not in CURVE_METRICS:
        raise UserError(f"unknown metric {metric!r}; choose one of: {', '.join(CURVE_METRICS)}")
    if x_axis not in X_AXES:
        raise UserError(f"unknown x axis {x_axis!r}; choose one of: {', '.join(X_AXES)}")
    column = CURVE_METRICS[metric]
    xs, ys, elapsed = [], [], 0.0
    for row in epochs:
        elapsed += float(row.get("seconds") or 0.0)
        xs.append(row["epoch"] if x_axis == "Epoch" else elapsed / 60.0)
        value = row.get(column)
        ys.append(None if value is None else (100.0 * value if "accuracy" in column else value))
    return xs, ys
