"""Saved ensemble recipes: members (run ids), weights, temperatures, options and the accuracies they were saved
with (`workbench.ensemble.lab.save`). A mixin of `store.Store`, kept apart from it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, SupportsFloat

from workbench.errors import UserError

from . import blobs
from .clock import utc_now
from .rows import StoreRows

_ENSEMBLE_JSON = ("members", "weights", "temperatures", "options")


class EnsembleRows(StoreRows):
    """The `ensembles` table, on the Store's connection and lock."""

    def save_ensemble(
        self,
        name: str,
        method: str,
        members: Iterable[int],
        weights: Iterable[float],
        *,
        temperatures: Iterable[float] | None = None,
        val_accuracy: SupportsFloat | None = None,
        test_accuracy: SupportsFloat | None = None,
        options: Mapping[str, Any] | None = None,
        created_by: str | None = None,
    ) -> int:
        """Save an ensemble recipe (members are run ids, made by `created_by`) and return its id."""
        temps = None if temperatures is None else blobs.dumps([float(t) for t in temperatures])
        row = {
            "name": str(name),
            "method": str(method),
            "temperatures": temps,
            "members": blobs.dumps([int(m) for m in members]),
            "weights": blobs.dumps([float(w) for w in weights]),
            "val_accuracy": blobs.optional_float(val_accuracy),
            "test_accuracy": blobs.optional_float(test_accuracy),
            "options": blobs.dumps(dict(options or {})),
            "created_at": utc_now(),
            "created_by": created_by,
        }
        with self._write() as db:
            ensemble_id = db.table("ensembles").insert(row).last_pk
            assert ensemble_id is not None, "an insert into ensembles sets last_pk"
            return int(ensemble_id)

    def list_ensembles(self) -> list[dict]:
        rows = self._query("SELECT * FROM ensembles ORDER BY id")
        return [blobs.decode_json(r, _ENSEMBLE_JSON) for r in rows]

    def get_ensemble(self, ensemble_id: int) -> dict:
        rows = self._query("SELECT * FROM ensembles WHERE id = ?", [int(ensemble_id)])
        if not rows:
            raise UserError(f"no ensemble {ensemble_id}")
        return blobs.decode_json(rows[0], _ENSEMBLE_JSON)

    def delete_ensemble(self, ensemble_id: int) -> None:
        with self._write() as db:
            self.get_ensemble(ensemble_id)
            db.execute("DELETE FROM ensembles WHERE id = ?", [int(ensemble_id)])
