"""A sweep's answer as tables, pure functions of store rows (no Gradio, no store access): the Runs tab's
sweep view and `python -m workbench sweeps NAME` both print these.

    sweep_table(runs)            one row per setting (the seed's layout: network, GPUs, parameters, batch,
                                 epochs, loss, training time, val and test accuracy), mean ± std over seeds
    paired(runs, "loss")         each setting's other values against a baseline value (focal - cross-entropy
                                 for each network), paired by seed: the difference and its spread
A sweep's runs are those tagged `sweep:NAME` (`workbench.specs.sweep`); a setting is a run's spec but
its seed (`views.runs.setting_key`).
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from workbench.constants import ACTIVE_STATUSES, RunStatus
from workbench.errors import UserError
from workbench.specs.sweep import TAG_PREFIX, sweep_of, sweep_tag
from workbench.views.live import duration
from workbench.views.runs import (
    ACCURACY_METRICS,
    NOT_SETTINGS,
    accuracy_column,
    format_count,
    run_augment,
    setting_key,
    spec_of,
)

# Fields shown in the seed's table whether they vary or not, and the title of any field that varies.
TITLES = {
    "model": "Network",
    "gpus": "GPUs",
    "params": "Parameters",
    "batch_size": "Batch",
    "epochs": "Epochs",
    "loss": "Loss",
    "augment": "Augment",
    "schedule": "Schedule",
    "learning_rate": "LR",
    "optimizer": "Optimizer",
    "weight_decay": "Weight decay",
    "train_subset": "Subset",
}
FIXED = ("model", "gpus", "params", "batch_size", "epochs", "loss")
LOSS_ORDER = ("cross_entropy",)  # the usual baseline of a loss comparison


# -- which sweeps, which runs ----------------------------------------------------------------------
def sweep_names(runs: list[dict]) -> list[dict]:
    """The sweeps found in the runs' tags, newest first: name, runs, completed, active (queued/running)."""
    found: dict[str, list] = {}
    for run in runs:
        for tag in run.get("tags") or ():
            if str(tag).startswith(TAG_PREFIX):
                found.setdefault(str(tag)[len(TAG_PREFIX) :], []).append(run)
    result = [
        {
            "name": name,
            "runs": len(members),
            "completed": sum(r["status"] == RunStatus.COMPLETED for r in members),
            "active": sum(r["status"] in ACTIVE_STATUSES for r in members),
            "newest": max(r["id"] for r in members),
        }
        for name, members in found.items()
    ]
    return sorted(result, key=lambda s: -s["newest"])


def sweep_choice(info: dict) -> str:
    return f"{info['name']} ({info['runs']} runs, {info['completed']} completed)"


def parse_sweep_choice(choice) -> str:
    name = str(choice or "").split(" (", 1)[0].strip()
    if not name:
        raise UserError("pick a sweep first (queue one from the Train tab's Sweep box or `python -m workbench sweep`)")
    return name


def sweep_runs(runs: list[dict], name: str) -> list[dict]:
    members = [r for r in runs if sweep_tag(name) in (r.get("tags") or ())]
    if not members:
        raise UserError(f"no runs are tagged {sweep_tag(name)!r}; `python -m workbench sweeps` lists the sweeps")
    return sorted(members, key=lambda r: r["id"])


def varying(runs: list[dict]) -> list[str]:
    """Spec fields whose values differ between the runs (seeds, names and the like aside), in spec order."""
    fields: dict[str, set] = {}
    for run in runs:
        for key, value in spec_of(run).items():
            if key not in NOT_SETTINGS:
                fields.setdefault(key, set()).add(json.dumps(value, sort_keys=True, default=str))
    return [k for k, values in fields.items() if len(values) > 1]


# -- the seed's table --------------------------------------------------------------------------
def _value(run: dict, field: str):
    spec = spec_of(run)
    if field == "params":
        return run.get("params")
    if field == "gpus":
        names = [n.strip() for n in (run.get("device") or "").split(",") if n.strip()]
        gpus = sum(n.upper().startswith("GPU") for n in names)
        return gpus if gpus else ("CPU" if names else None)
    if field == "augment":
        return run_augment(run)
    return spec.get(field)


def _shown(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def mean_std(values) -> tuple:
    """(mean, sample std; 0 for one value) of the values, (None, None) for none."""
    values = np.asarray([v for v in values if v is not None], dtype=float)
    if not len(values):
        return None, None
    return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0


def pm(mean, std, digits: int = 2) -> str:
    """'95.12 ± 0.15' (a percentage's mean and spread), '' for none."""
    if mean is None:
        return ""
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def table_columns(runs: list[dict]) -> list[str]:
    """The seed's columns, the fields the sweep varies beyond them, then seeds, time and accuracies."""
    extra = [f for f in varying(runs) if f not in FIXED]
    reviewed = ["Reviewed test %"] if any(r.get("reviewed_test_accuracy") is not None for r in runs) else []
    return [TITLES.get(f, f) for f in (*FIXED, *extra)] + [
        "Seeds",
        "Training time",
        "Val acc %",
        "Test acc %",
        *reviewed,
    ]


def sweep_table(runs: list[dict]) -> list[dict]:
    """One row per setting, in the order the sweep queued them: its settings, `Seeds` ("3/3": completed
    of all), the mean training time, and val (final epoch) and test accuracy as mean ± std over the
    completed seeds, with the numbers kept in `_val`, `_test` ((mean, std) in %) and `_runs` (ids)."""
    extra = [f for f in varying(runs) if f not in FIXED]
    groups: dict[str, list] = {}
    for run in sorted(runs, key=lambda r: r["id"]):
        groups.setdefault(setting_key(run), []).append(run)
    rows = []
    for members in groups.values():
        done = [r for r in members if r["status"] == RunStatus.COMPLETED]
        first = (done or members)[0]
        row: dict[str, Any] = {}
        for field in (*FIXED, *extra):
            shown = sorted({_shown(_value(r, field)) for r in (done or members)} - {""})
            row[TITLES.get(field, field)] = (
                format_count(_value(first, "params")) if field == "params" else ", ".join(shown)
            )
        seconds, _ = mean_std(r.get("train_seconds") for r in done)
        val = mean_std(100 * r["final_val_accuracy"] for r in done if r.get("final_val_accuracy") is not None)
        test = mean_std(100 * r["test_accuracy"] for r in done if r.get("test_accuracy") is not None)
        reviewed = mean_std(
            100 * r["reviewed_test_accuracy"] for r in done if r.get("reviewed_test_accuracy") is not None
        )
        row.update(
            {
                "Seeds": f"{len(done)}/{len(members)}",
                "Training time": duration(seconds) if seconds else "",
                "Val acc %": pm(*val),
                "Test acc %": pm(*test),
                "Reviewed test %": pm(*reviewed),  # on the reviewed test set, where it has reviews (issue 24)
                "_val": val,
                "_test": test,
                "_runs": [r["id"] for r in members],
            }
        )
        rows.append(row)
    return rows


# -- paired comparison --------------------------------------------------------------------------
def factors(runs: list[dict]) -> list[str]:
    """What a paired comparison can set against each other: the varied fields (the seed aside)."""
    return [f for f in varying(runs) if f != "seed"]


def factor_values(runs: list[dict], factor: str) -> list[str]:
    """The factor's values as the view names them, the usual baseline first (cross-entropy for losses)."""
    values = list(dict.fromkeys(_level(r, factor) for r in sorted(runs, key=lambda r: r["id"])))
    return sorted(values, key=lambda v: (v not in LOSS_ORDER, values.index(v)))


def _level(run: dict, factor: str) -> str:
    return run_augment(run) if factor == "augment" else _shown(spec_of(run).get(factor))


def paired(runs: list[dict], factor: str, baseline: str | None = None, metric: str = "Test accuracy") -> list[dict]:
    """For every setting that has the factor at `baseline` and at another value: the other value minus the
    baseline in percentage points, paired by seed (mean, sample std of the per-seed differences, n) and a
    verdict that reads it ("helps" / "hurts" where the mean difference exceeds two standard errors).
    Settings are named by the other fields the sweep varies (e.g. the network)."""
    column = accuracy_column(metric)
    values = factor_values(runs, factor)
    if factor not in factors(runs):
        raise UserError(f"the sweep does not vary {factor!r}; compare one of: {', '.join(factors(runs)) or 'none'}")
    baseline = baseline if baseline in values else values[0]
    others = [f for f in varying(runs) if f not in (factor, "seed")]
    groups: dict[str, dict] = {}
    for run in sorted(runs, key=lambda r: r["id"]):
        if run["status"] != RunStatus.COMPLETED or run.get(column) is None:
            continue
        spec = {k: v for k, v in spec_of(run).items() if k not in (*NOT_SETTINGS, factor)}
        key = json.dumps(spec, sort_keys=True, default=str)
        label = " · ".join(_shown(_value(run, f)) for f in others) or "all"
        by_level = groups.setdefault(key, {"label": label, "levels": {}})["levels"]
        by_level.setdefault(_level(run, factor), {})[spec_of(run).get("seed")] = 100 * float(run[column])  # latest wins
    rows = []
    for group in groups.values():
        base = group["levels"].get(baseline)
        if not base:
            continue
        for value in values:
            if value == baseline or value not in group["levels"]:
                continue
            mine = group["levels"][value]
            seeds = sorted(set(base) & set(mine), key=str)
            diffs = [mine[s] - base[s] for s in seeds]
            mean, std = mean_std(diffs)
            rows.append(
                {
                    "Setting": group["label"],
                    "Compared": f"{value} − {baseline}",
                    "Seeds": len(seeds),
                    "Baseline %": pm(*mean_std(base[s] for s in seeds)),
                    "Other %": pm(*mean_std(mine[s] for s in seeds)),
                    "Difference (pp)": "" if mean is None else f"{mean:+.2f}",
                    "Spread (std, pp)": "" if std is None else f"{std:.2f}",
                    "Reading": verdict(mean, std, len(seeds), value),
                    "_diff": (mean, std, len(seeds)),
                }
            )
    return rows


def verdict(mean, std, n: int, value: str) -> str:
    """How the paired differences read: the value helps or hurts where the mean is more than two standard
    errors from 0, else it is within the seeds' spread; one seed has no spread to judge by."""
    if not n:
        return "no seed finished both yet"
    if n == 1:
        return f"one seed only ({mean:+.2f}): add seeds to judge"
    error = std / math.sqrt(n)
    if abs(mean) > 2 * error:
        return f"{value} {'helps' if mean > 0 else 'hurts'} (beyond 2 standard errors)"
    return "no clear difference (within the seeds' spread)"


def display(rows: list[dict], columns=None) -> list[list]:
    """Rows as a table's cells, the private `_` keys left out."""
    columns = columns or [c for c in (rows[0] if rows else {}) if not c.startswith("_")]
    return [[row.get(c, "") for c in columns] for row in rows]


def text_table(columns: list[str], cells: list[list]) -> str:
    """A plain-text table for the terminal: columns as wide as their widest cell."""
    cells = [[str(c) for c in row] for row in cells]
    widths = [max([len(h)] + [len(row[i]) for row in cells]) for i, h in enumerate(columns)]
    line = lambda row: "  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip()  # noqa: E731
    return "\n".join([line(columns), line(["-" * w for w in widths]), *map(line, cells)])


__all__ = [
    "ACCURACY_METRICS",
    "factor_values",
    "factors",
    "paired",
    "sweep_names",
    "sweep_of",
    "sweep_runs",
    "sweep_table",
]


def time_text(est) -> str:
    """A `workbench.jobs.estimate_many.ManyEstimate` as the sweep box says it."""
    if est.seconds is None:
        return "Time: unknown here yet (no run like these has finished, and their models' cost is not listed)."
    text = f"~{duration(est.seconds)} of training in all{' (rough)' if est.rough else ''}"
    if est.side_by_side > 1:
        text += (
            f"; the queue runs {est.side_by_side} side by side on this machine's GPUs, so about {duration(est.wall)}"
        )
    else:
        text += f", one run at a time on the {est.device}"
    if est.unknown:
        text += f"; {est.unknown} run(s) without a figure are not counted"
    sources = getattr(est, "sources", ())
    return text + "." + (f" {' '.join(s.rstrip('.') + '.' for s in sources)}" if sources else "")
