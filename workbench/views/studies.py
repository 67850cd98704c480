"""Studies as the CLI (`workbench studies`) and the Runs tab's Studies view show them: read from the store (the
study's row, its trials' runs) and from its Optuna file (each trial's state, value, parameters), and Optuna's
own Plotly figures (`optuna.visualization`). **Train the best** is `best_as_sweep`: the best trial's settings
as a sweep over seeds, with more epochs if asked."""

from __future__ import annotations

from typing import Any

import optuna
from optuna.trial import TrialState

from workbench.constants import StudyState
from workbench.errors import UserError
from workbench.specs.search import Search, duration_text
from workbench.specs.sweep import Sweep, parse_axis

STATE_WORDS = {
    TrialState.COMPLETE: "complete",
    TrialState.PRUNED: "pruned",
    TrialState.FAIL: "failed",
    TrialState.RUNNING: "running",
    TrialState.WAITING: "waiting",
}
TRIAL_COLUMNS = ["Trial", "State", "Value", "Run", "Run status", "Epochs", "Parameters"]
SUMMARY_COLUMNS = ["Study", "State", "Trials", "Complete", "Pruned", "Failed", "Best", "Sampler", "Pruner", "Time"]
FIGURES = {
    "history": ("Optimisation history", "plot_optimization_history"),
    "intermediate": ("Intermediate values (validation accuracy per epoch)", "plot_intermediate_values"),
    "parallel": ("Parallel coordinates", "plot_parallel_coordinate"),
    "importance": ("Parameter importances", "plot_param_importances"),
}


def load(store: Any, name: str) -> tuple[dict, Search, optuna.Study | None]:
    """(the study's row, its Search, its Optuna study or None when the file has none of that name)."""
    row = store.get_study(name)
    search = Search.from_settings(name, row["settings"])
    try:
        study = optuna.load_study(study_name=name, storage=store.optuna_url())
    except KeyError:
        study = None
    return row, search, study


def summaries(store: Any) -> list[dict]:
    """One row per study (SUMMARY_COLUMNS), oldest first."""
    rows = []
    for row in store.list_studies():
        _, search, study = load(store, row["name"])
        trials = study.get_trials(deepcopy=False) if study else []
        count = {state: sum(t.state == state for t in trials) for state in STATE_WORDS}
        best = _best(study)
        state = row["state"] + (f" ({row['error']})" if row["error"] else "")
        rows.append(
            {
                "Study": row["name"],
                "State": state,
                "Trials": f"{len(store.study_trials(row['name']))}/{search.budget()}",
                "Complete": count[TrialState.COMPLETE],
                "Pruned": count[TrialState.PRUNED],
                "Failed": count[TrialState.FAIL],
                "Best": f"{best.value:.2%} (trial {best.number})" if best and best.value is not None else "",
                "Sampler": search.sampler + (f" (seed {search.seed})" if search.seed is not None else ""),
                "Pruner": search.pruner,
                "Time": duration_text(row["seconds"])
                + (f" of {duration_text(search.timeout)}" if search.timeout else ""),
            }
        )
    return rows


def trial_rows(store: Any, name: str) -> list[dict]:
    """One row per trial (TRIAL_COLUMNS): its state, value, run and how many epochs that run trained."""
    _, _, study = load(store, name)
    runs = store.study_trials(name)
    rows = []
    for trial in study.get_trials(deepcopy=False) if study else []:
        run_id = runs.get(trial.number)
        run = _run(store, run_id)
        rows.append(
            {
                "Trial": trial.number,
                "State": STATE_WORDS.get(trial.state, str(trial.state)),
                "Value": "" if trial.value is None else f"{trial.value:.2%}",
                "Run": run_id if run_id is not None else "",
                "Run status": run["status"] if run else ("(deleted)" if run_id is not None else ""),
                "Epochs": f"{run['epochs_done']}/{run['spec'].get('epochs')}" if run else "",
                "Parameters": ", ".join(f"{k}={_shown(v)}" for k, v in trial.params.items()),
                "_error": trial.user_attrs.get("error", ""),
            }
        )
    return rows


def best(store: Any, name: str) -> dict | None:
    """The best complete trial: {number, value, params, run}, or None while none has completed."""
    _, _, study = load(store, name)
    trial = _best(study)
    if trial is None:
        return None
    return {
        "number": trial.number,
        "value": trial.value,
        "params": trial.params,
        "run": store.study_trials(name).get(trial.number),
    }


def best_as_sweep(store: Any, name: str, *, seeds: str = "0-2", epochs: int | None = None) -> Sweep:
    """**Train the best**: the best trial's settings (the search's base run with its parameters), `epochs` if
    given, as a sweep over `seeds`, named `<study>-best`."""
    _, search, _ = load(store, name)
    found = best(store, name)
    if found is None:
        raise UserError(f"study {name} has no complete trial yet: there is no best to train")
    spec = search.space.apply(search.base, found["params"])
    if epochs:
        spec = spec.replace(epochs=int(epochs))
    return Sweep(f"{name}-best", spec.replace(name=""), {"seed": parse_axis("seed", seeds)})


def figure(store: Any, name: str, which: str) -> Any:
    """Optuna's Plotly figure `which` (a FIGURES key) of the study; None while it has too few trials for it."""
    _, _, study = load(store, name)
    if study is None or which not in FIGURES:
        return None
    finished = [t for t in study.get_trials(deepcopy=False) if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    if not finished or (which == "importance" and sum(t.state == TrialState.COMPLETE for t in finished) < 2):
        return None
    try:
        return getattr(optuna.visualization, FIGURES[which][1])(study)
    except (ValueError, RuntimeError):  # a figure Optuna cannot draw yet (e.g. one parameter value so far)
        return None


def searching(store: Any) -> list[str]:
    return [r["name"] for r in store.list_studies() if r["state"] == StudyState.SEARCHING]


def _best(study: optuna.Study | None) -> optuna.trial.FrozenTrial | None:
    if study is None:
        return None
    complete = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if t.value is not None]
    return max(complete, key=lambda t: (t.value, -t.number)) if complete else None


def _run(store: Any, run_id: int | None) -> dict | None:
    if run_id is None:
        return None
    try:
        return store.get_run(run_id)
    except UserError:  # deleted
        return None


def _shown(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
