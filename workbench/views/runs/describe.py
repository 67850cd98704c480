"""How the page and the CLI name and describe a run: its model, loss, augmentations and dataset from its spec,
its label and choice in a dropdown (and the id a choice gives back), a clone's new name, a running run's training
time so far, and its lineage (a distillation's teacher, a snapshot's run)."""

from __future__ import annotations

import re
from datetime import datetime

import numpy as np

from workbench.constants import RunKind
from workbench.errors import UserError


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
