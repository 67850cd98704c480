"""Stored predictions: a run's logits per split (`.npy` blobs) and the labels they were computed against,
each label vector stored once by its hash (`store.blobs`). A mixin of `store.Store`, kept apart from it.

    store.save_logits(run_id, "test", logits, labels)
    store.load_logits(run_id, "test"), store.load_labels(run_id, "test"), store.prediction_splits(run_id)
"""

from __future__ import annotations

import json

import numpy as np
from numpy.typing import ArrayLike

from workbench.errors import UserError

from . import blobs
from .clock import utc_now
from .rows import StoreRows


class PredictionRows(StoreRows):
    """The `predictions` and `labels` tables, on the Store's connection and lock."""

    labels_hash = staticmethod(blobs.labels_hash)

    def save_logits(self, run_id: int, split: str, logits: ArrayLike, labels: ArrayLike) -> None:
        """Store (replacing) the run's logits for `split`, fingerprinted by its labels."""
        array = np.asarray(logits, dtype=np.float32)
        labels = np.asarray(labels)
        if array.ndim < 1 or labels.reshape(-1).shape[0] != array.shape[0]:
            raise ValueError(f"{labels.size} labels for logits of shape {list(array.shape)}; give one label per row")
        row = {
            "run": int(run_id),
            "split": str(split),
            "logits": blobs.logits_to_npy(array),
            "shape": json.dumps(list(array.shape)),
            "labels_hash": blobs.labels_hash(labels),
            "created_at": utc_now(),
        }
        label_row = {
            "hash": row["labels_hash"],
            "count": int(labels.size),
            "labels": blobs.array_to_npy(labels.reshape(-1).astype(np.int64)),
        }
        with self._write() as db:
            self._run_row(run_id)
            db.table("predictions").upsert(row, pk=("run", "split"))
            db.table("labels").insert(label_row, pk="hash", ignore=True)

    def _prediction(self, run_id: int, split: str, columns: str) -> dict:
        rows = self._query(f"SELECT {columns} FROM predictions WHERE run = ? AND split = ?", [int(run_id), str(split)])
        if not rows:
            self._run_row(run_id)
            raise UserError(
                f"run {run_id} has no stored logits for split {split}; stored: "
                f"{', '.join(self.prediction_splits(run_id)) or 'none'}"
            )
        return rows[0]

    def load_logits(self, run_id: int, split: str) -> np.ndarray:
        """The stored float32 logits (with their shape) of the run for `split`."""
        row = self._prediction(run_id, split, "logits, shape")
        array = blobs.npy_to_array(row["logits"])
        return array.reshape(json.loads(row["shape"])).astype(np.float32, copy=False)

    def load_labels(self, run_id: int, split: str) -> np.ndarray:
        """The int64 labels the run's logits for `split` were computed against."""
        label_hash = self._prediction(run_id, split, "labels_hash")["labels_hash"]
        rows = self._query("SELECT labels FROM labels WHERE hash = ?", [label_hash])
        if not rows:
            raise UserError(f"the labels of run {run_id}'s {split} logits are missing from the store")
        return blobs.npy_to_array(rows[0]["labels"]).astype(np.int64, copy=False)

    def prediction_info(self, run_id: int, split: str) -> dict:
        """`run`, `split`, `shape` (a list), `labels_hash`, `created_at` of stored logits."""
        row = self._prediction(run_id, split, "run, split, shape, labels_hash, created_at")
        return {**row, "shape": json.loads(row["shape"])}

    def prediction_splits(self, run_id: int) -> list[str]:
        rows = self._query("SELECT split FROM predictions WHERE run = ? ORDER BY split", [int(run_id)])
        return [r["split"] for r in rows]
