"""Results derived from a run's training (a snapshot at the end of a cosine cycle, the weight average of its
last epochs): a mixin of `store.Store`. Each is a run row of its own, so the Ensemble, Errors and Predict tabs,
export and the leaderboard pick it as they pick any run; `parent_run` and `derived` say where it came from.
"""

from __future__ import annotations

from typing import Any

from workbench.constants import RunStatus


class DerivedRows:
    """Derived runs, through the Store's own run methods (`create_run`, `update_run`, `_query`...)."""

    def derived_run(self, parent_id: int, derived: str, name: str) -> int:
        """The id of run `parent_id`'s derived result `derived` ("snapshot 2", "averaged"), created completed
        (its spec, kind, data and split the parent's) on first use; a resumed run re-taking a snapshot
        replaces that row's logits instead of adding a second row."""
        store: Any = self
        rows = store._query("SELECT id FROM runs WHERE parent_run = ? AND derived = ?", [int(parent_id), str(derived)])
        if rows:
            return int(rows[0]["id"])
        parent = store.get_run(parent_id)
        run_id = store.create_run(
            name,
            parent["spec"],
            kind=parent["kind"],
            dataset=parent["dataset"],
            split_id=parent["split_id"],
            tags=parent["tags"],
            created_by=parent["created_by"],
        )
        store.update_run(run_id, parent_run=int(parent_id), derived=str(derived), params=parent["params"])
        store.set_status(run_id, RunStatus.RUNNING)
        return run_id

    def derived_runs(self, parent_id: int) -> list[dict]:
        """Run `parent_id`'s derived results (archived too), by id."""
        store: Any = self
        rows = store._query("SELECT id FROM runs WHERE parent_run = ? ORDER BY id", [int(parent_id)])
        return [store.get_run(r["id"]) for r in rows]
