"""Reviews of given labels (issue 24): a mixin of `store.Store`, kept apart from it.

    store.register_review_part("cifar10/1a2b...", "cifar10", "test", y_test, num_classes=10)
    store.save_review("cifar10/1a2b...", "test", 2405, Verdict.RELABEL, given=6, label=3, by="alice")
    store.reviews("cifar10/1a2b...", "test")          # [{idx, verdict, label, given, ...}], by index

A review belongs to an image of a dataset, not to a run: `dataset` is the dataset's identity (its name and the
hash of its test labels, `workbench.inspect.label_quality.dataset_identity`), `part` the dataset's own part
("train" or "test": a run's validation images are rows of the official training set) and `idx` the image's
position in that part. Each part is registered with its labels (count and hash), so a review for an index
that does not exist, or whose given label is not the label stored there (another dataset's split), is refused
before anything is written. One row per image: a later verdict replaces an earlier one (two reviewers of
different images never touch the same row; each write is its own `BEGIN IMMEDIATE` transaction).

`label_quality` caches cleanlab's per-image results per (source, split), with the fingerprint of what they
were computed from, so a changed source recomputes instead of reading a stale answer.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

import numpy as np

from workbench.constants import DATASET_PARTS, VERDICTS, Verdict
from workbench.errors import UserError, choose

from . import blobs
from .clock import utc_now
from .rows import StoreRows


class ReviewRows(StoreRows):
    """Review datasets, label reviews and the label-quality cache, on the Store's connection and lock."""

    # -- datasets ----------------------------------------------------------------------------
    def register_review_part(
        self,
        dataset: str,
        name: str,
        part: str,
        labels: np.ndarray,
        *,
        num_classes: int,
        files: Sequence[str] | None = None,
    ) -> None:
        """Make (dataset, part) reviewable: its labels (stored once, by hash), count and file names."""
        part = choose("dataset part", part, DATASET_PARTS)
        labels = np.asarray(labels, np.int64).reshape(-1)
        digest = blobs.labels_hash(labels)
        known = self._query("SELECT labels_hash FROM review_datasets WHERE dataset = ? AND part = ?", [dataset, part])
        if known and known[0]["labels_hash"] != digest:
            raise UserError(
                f"the {part} labels of dataset {dataset} differ from those its reviews were made on; "
                "the dataset files changed: restore them to review or train with its reviews"
            )
        if known:
            if files is not None:  # registered before without the dataset's file names: add them
                with self._write() as db:
                    db.execute(
                        "UPDATE review_datasets SET files = ? WHERE dataset = ? AND part = ? AND files IS NULL",
                        [json.dumps(list(files)), dataset, part],
                    )
            return
        if files is not None and len(files) != len(labels):
            raise ValueError(f"{len(files)} file names for {len(labels)} images")
        with self._write() as db:
            db.table("labels").insert(
                {"hash": digest, "count": int(labels.size), "labels": blobs.array_to_npy(labels)},
                pk="hash",
                ignore=True,
            )
            db.table("review_datasets").insert(
                {
                    "dataset": dataset,
                    "name": name,
                    "part": part,
                    "count": int(labels.size),
                    "num_classes": int(num_classes),
                    "labels_hash": digest,
                    "files": None if files is None else json.dumps(list(files)),
                },
                pk=("dataset", "part"),
                ignore=True,
            )

    def review_part(self, dataset: str, part: str) -> dict:
        """The registered part: name, count, num_classes, labels_hash, files (a list, or None)."""
        rows = self._query("SELECT * FROM review_datasets WHERE dataset = ? AND part = ?", [dataset, part])
        if not rows:
            known = sorted({r["dataset"] for r in self._query("SELECT dataset FROM review_datasets")})
            raise UserError(
                f"dataset {dataset!r} has no {part} split known to the reviews (known: {', '.join(known) or 'none'}); "
                "open its label issues first (Errors tab or `workbench label-issues`)"
            )
        return blobs.decode_json(rows[0], ("files",))

    def review_part_labels(self, dataset: str, part: str) -> np.ndarray:
        digest = self.review_part(dataset, part)["labels_hash"]
        rows = self._query("SELECT labels FROM labels WHERE hash = ?", [digest])
        return blobs.npy_to_array(rows[0]["labels"]).astype(np.int64, copy=False)

    # -- reviews -----------------------------------------------------------------------------
    def save_review(
        self,
        dataset: str,
        part: str,
        idx: int,
        verdict: str,
        *,
        given: int,
        label: int | None = None,
        suggested: int | None = None,
        score: float | None = None,
        by: str = "",
    ) -> dict:
        """Record (replacing) one image's verdict; refused with a UserError for an index outside the part, a
        given label that is not the one stored at that index, or a relabel to no class or to the same one."""
        verdict = choose("verdict", verdict, VERDICTS)
        info = self.review_part(dataset, choose("dataset part", part, DATASET_PARTS))
        idx, given = int(idx), int(given)
        if not 0 <= idx < info["count"]:
            raise UserError(
                f"there is no image {idx} in the {part} split of {dataset} (it has {info['count']}: 0 to "
                f"{info['count'] - 1}); the review was not recorded"
            )
        stored = int(self.review_part_labels(dataset, part)[idx])
        if stored != given:
            raise UserError(
                f"image {idx} of {dataset}'s {part} split is labelled {stored}, not {given}: this review is for "
                "another dataset's split and was not recorded"
            )
        if verdict == Verdict.RELABEL:
            if label is None or not 0 <= int(label) < info["num_classes"] or int(label) == given:
                raise UserError(
                    f"relabel needs a class from 0 to {info['num_classes'] - 1} other than the given {given}"
                )
            label = int(label)
        else:
            label = None
        row = {
            "dataset": dataset,
            "part": part,
            "idx": idx,
            "verdict": verdict,
            "label": label,
            "given": given,
            "suggested": None if suggested is None else int(suggested),
            "score": None if score is None else float(score),
            "reviewed_by": str(by or ""),
            "reviewed_at": utc_now(),
        }
        with self._write() as db:
            db.table("label_reviews").upsert(row, pk=("dataset", "part", "idx"))
        return row

    def clear_review(self, dataset: str, part: str, idx: int) -> None:
        with self._write() as db:
            db.execute(
                "DELETE FROM label_reviews WHERE dataset = ? AND part = ? AND idx = ?", [dataset, part, int(idx)]
            )

    def reviews(self, dataset: str, part: str | None = None) -> list[dict]:
        """The dataset's reviews (of one part, or both), by part and index."""
        sql, params = "SELECT * FROM label_reviews WHERE dataset = ?", [dataset]
        if part is not None:
            sql, params = sql + " AND part = ?", [*params, part]
        return self._query(sql + " ORDER BY part, idx", params)


def reviews_fingerprint(rows: Sequence[dict]) -> str:
    """The hash of what reviews say (part, index, verdict, new label): equal for equal reviews, whoever made them."""
    text = json.dumps(sorted((r["part"], int(r["idx"]), str(r["verdict"]), r["label"]) for r in rows))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class QualityCache(StoreRows):
    """cleanlab's results per (source, split), keyed by a fingerprint of the probabilities and labels."""

    def cached_label_quality(self, source: str, split: str, fingerprint: str) -> bytes | None:
        rows = self._query(
            "SELECT result FROM label_quality WHERE source = ? AND split = ? AND fingerprint = ?",
            [source, split, fingerprint],
        )
        return rows[0]["result"] if rows else None

    def cache_label_quality(self, source: str, split: str, fingerprint: str, result: bytes) -> None:
        with self._write() as db:
            db.table("label_quality").upsert(
                {
                    "source": source,
                    "split": split,
                    "fingerprint": fingerprint,
                    "result": result,
                    "created_at": utc_now(),
                },
                pk=("source", "split"),
            )
