"""Accuracy per class, and per group of runs: by setting (runs that differ only in their seed, the spread over
seeds) or by loss, augmentation or model (saying what each group pools)."""

from __future__ import annotations

import json

import numpy as np

from workbench.errors import UserError
from workbench.inspect.analysis import class_accuracy
from workbench.views.runs.describe import run_augment, run_loss, run_model, spec_of

# accuracy choice -> run column
ACCURACY_METRICS = {
    "Test accuracy": "test_accuracy",
    "Best validation accuracy": "best_val_accuracy",
    "Final validation accuracy": "final_val_accuracy",
}
GROUP_BY = ("Setting", "Loss", "Augmentation", "Model")
NOT_SETTINGS = ("seed", "name", "gpus", "tensorboard")  # spec fields that do not make another setting: runs differing
# only in them are repeats of one setting, and their spread is the seeds' spread


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
