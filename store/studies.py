"""The store's side of Optuna studies (`workbench.jobs.study`): a mixin of `store.Store`, kept apart from it.

A study's row names it, says where its Optuna file is (`<store>-optuna.db`), keeps its settings (JSON: the
base run's spec, the space's text, sampler, seed, pruner, budget) and its state; `study_trials` maps each
trial's number to the run it became. Runs themselves are ordinary runs tagged `study:NAME`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from workbench.errors import UserError

from .rows import StoreRows


class StudyRows(StoreRows):
    """Studies and their trials' runs, on the Store's connection and lock (`_write`, `_query`)."""

    path: Path

    def optuna_path(self) -> Path:
        """`<store>-optuna.db` beside the store: the Optuna storage of every study (optuna-dashboard opens it)."""
        return self.path.parent / f"{self.path.stem}-optuna.db"

    def optuna_url(self) -> str:
        """The SQLAlchemy URL of that file, as Optuna and `optuna-dashboard` take it."""
        return f"sqlite:///{self.optuna_path().resolve()}"

    def create_study(self, name: str, settings: dict, *, state: str, created_at: str) -> None:
        with self._write() as db:
            if self._query("SELECT 1 FROM studies WHERE name = ?", [name]):
                raise UserError(f"a study named {name!r} exists already; continue it or choose another name")
            db.table("studies").insert(
                {
                    "name": name,
                    "storage": str(self.optuna_path()),
                    "settings": json.dumps(settings),
                    "state": state,
                    "seconds": 0.0,
                    "created_at": created_at,
                }
            )

    def get_study(self, name: str) -> dict:
        rows = self._query("SELECT * FROM studies WHERE name = ?", [str(name)])
        if not rows:
            known = [r["name"] for r in self._query("SELECT name FROM studies ORDER BY created_at")]
            raise UserError(f"no study {name!r}; studies: {', '.join(known) or 'none yet'}")
        return _decode(rows[0])

    def list_studies(self) -> list[dict]:
        return [_decode(r) for r in self._query("SELECT * FROM studies ORDER BY created_at, name")]

    def update_study(self, name: str, **fields: Any) -> None:
        unknown = sorted(set(fields) - {"state", "seconds", "error", "finished_at", "settings"})
        if unknown:
            raise ValueError(f"unknown study field(s) {', '.join(unknown)}")
        if "settings" in fields:
            fields["settings"] = json.dumps(fields["settings"])
        with self._write() as db:
            self.get_study(name)
            db.table("studies").update(str(name), fields)

    def add_study_trial(self, name: str, number: int, run_id: int) -> None:
        with self._write() as db:
            db.table("study_trials").upsert(
                {"study": name, "number": int(number), "run": int(run_id)}, pk=("study", "number")
            )

    def study_trials(self, name: str) -> dict:
        """{trial number: run id} of the study."""
        rows = self._query("SELECT number, run FROM study_trials WHERE study = ? ORDER BY number", [str(name)])
        return {r["number"]: r["run"] for r in rows}

    def judge_trial(self, run_id: int, epoch: int, verdict: str) -> None:
        """The study driver's `verdict` (a TrialVerdict) on the trial `run_id` is, after its `epoch`."""
        with self._write() as db:
            db.execute(
                "UPDATE study_trials SET judged = ?, verdict = ? WHERE run = ?", [int(epoch), str(verdict), int(run_id)]
            )

    def trial_verdict(self, run_id: int) -> dict | None:
        """{judged, verdict, state (the study's)} of the trial `run_id` is, or None for a run that is no trial."""
        rows = self._query(
            "SELECT t.judged, t.verdict, s.state FROM study_trials t JOIN studies s ON s.name = t.study "
            "WHERE t.run = ?",
            [int(run_id)],
        )
        return rows[0] if rows else None

    def trial_of_run(self, run_id: int) -> tuple | None:
        """(study, trial number) the run is, or None."""
        rows = self._query("SELECT study, number FROM study_trials WHERE run = ?", [int(run_id)])
        return (rows[0]["study"], rows[0]["number"]) if rows else None


def _decode(row: dict) -> dict:
    return {**row, "settings": json.loads(row["settings"] or "{}")}
