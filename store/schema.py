"""The store's schema, created and changed only through `sqlite_utils.migrations.Migrations`.

Every schema change is a new function appended below with `@migration`; never edit one that has
shipped. `MIGRATION_NAMES` lists what this code knows, so a store written by a newer version (one
whose `_sqlite_migrations` table names migrations not listed here) can be refused with a message
instead of being half-understood.

Table and column names are a public contract (the UI and the CLI read them):

- `runs`: one row per training run; `spec` and `tags` are JSON text, times are ISO-8601 UTC text.
- `epochs`: one row per (run, epoch), epoch 1-based; re-logging an epoch replaces its row.
- `predictions`: stored logits per (run, split) as float32 `.npy` bytes, with their shape and the
  sha256 of the int64 labels they were computed against.
- `labels`: the int64 label vectors that predictions point to by `labels_hash`, each stored once.
- `ensembles`: saved ensemble recipes (members, weights, temperatures) and their accuracies.
- `studies`, `study_trials`: Optuna studies named in the store (their trials live in `<store>-optuna.db`)
  and the run each trial became (`store.studies`).
- `review_datasets`, `label_reviews`: datasets whose labels are reviewed (identity, part sizes, label hashes)
  and one verdict per (dataset, part, index) (`store.reviews`); `label_quality`: cleanlab's scores per
  (source, split), a cache.
- `audit`: append-only (triggers refuse UPDATE and DELETE): who did what, when (`store.audit`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from workbench.constants import RUN_KINDS, RUN_STATUSES
from workbench.errors import UserError, choose

from . import blobs

MIGRATION_SET = "workbench"
MIGRATIONS = Migrations(MIGRATION_SET)
MIGRATION_NAMES: list[str] = []
_Migration = TypeVar("_Migration", bound=Callable[[Database], None])


RUN_COLUMNS = (
    "id",
    "name",
    "kind",
    "spec",
    "status",
    "error",
    "dataset",
    "split_id",
    "params",
    "device",
    "created_at",
    "started_at",
    "finished_at",
    "epochs_done",
    "best_val_accuracy",
    "best_epoch",
    "final_val_accuracy",
    "test_accuracy",
    "train_seconds",
    "checkpoint_path",
    "tags",
    "notes",
    "archived",
    "train_images",
    "steps_per_epoch",
    "step",
    "phase",
    "step_seconds",
    "eval_steps",
    "eval_seconds",
    "attempt",
    "attempt_started_at",
    "attempt_seconds",
    "queued_at",
    "node",
    "val_steps",
    "created_by",
    "reviews_used",
    "parent_run",
    "derived",
)
EPOCH_COLUMNS = (
    "run",
    "epoch",
    "lr",
    "loss",
    "accuracy",
    "val_loss",
    "val_accuracy",
    "seconds",
    "logged_at",
)
PREDICTION_COLUMNS = ("run", "split", "logits", "shape", "labels_hash", "created_at")
ENSEMBLE_COLUMNS = (
    "id",
    "name",
    "method",
    "members",
    "weights",
    "temperatures",
    "val_accuracy",
    "test_accuracy",
    "options",
    "created_at",
    "created_by",
)
AUDIT_COLUMNS = ("id", "at", "user", "action", "target", "detail")
REVIEW_COLUMNS = (
    "dataset",
    "part",
    "idx",
    "verdict",
    "label",
    "given",
    "suggested",
    "score",
    "reviewed_by",
    "reviewed_at",
)
TABLES = (
    "runs",
    "epochs",
    "predictions",
    "labels",
    "ensembles",
    "audit",
    "studies",
    "study_trials",
    "review_datasets",
    "label_reviews",
    "label_quality",
)
SQLITE_HEADER = b"SQLite format 3\x00"
_POINT_ELSEWHERE = "point --db / WORKBENCH_DB at a workbench store or a new file name"


def encode_run_fields(fields: dict) -> dict:
    """Check `update_run` fields (unknown names: ValueError) and encode them as column values."""
    unknown = sorted(set(fields) - set(RUN_COLUMNS) | ({"id"} & set(fields)))
    if unknown:
        raise ValueError(
            f"unknown run field(s) {', '.join(unknown)}; known: {', '.join(c for c in RUN_COLUMNS if c != 'id')}"
        )
    fields = dict(fields)
    if "spec" in fields:
        fields["spec"] = blobs.dumps(fields["spec"])
    if "tags" in fields:
        fields["tags"] = blobs.dumps(list(fields["tags"]))
    if fields.get("reviews_used") is not None:
        fields["reviews_used"] = blobs.dumps(fields["reviews_used"])
    if "status" in fields:
        choose("run status", fields["status"], RUN_STATUSES)
    if "kind" in fields:
        choose("run kind", fields["kind"], RUN_KINDS)
    if "archived" in fields:
        fields["archived"] = int(bool(fields["archived"]))
    return fields


# -- is this file a store this code can open? -------------------------------------------------
def check_path(path: Path) -> None:
    """Refuse a directory or a non-SQLite file; create the parent folders of a new store."""
    if path.is_dir():
        raise UserError(
            f"{path} is a directory; point --db / WORKBENCH_DB at a store file "
            f"(e.g. {path / 'workbench.db'}) or a new file name"
        )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(
            f"cannot create the folder {path.parent} for the store ({exc}); "
            "point --db / WORKBENCH_DB at a writable location"
        ) from exc
    if path.is_file() and path.stat().st_size > 0:
        with path.open("rb") as handle:
            header = handle.read(len(SQLITE_HEADER))
        if header != SQLITE_HEADER:
            raise UserError(f"{path} is not a SQLite database; {_POINT_ELSEWHERE}")


def open_error(path: Path, exc: sqlite3.Error) -> UserError:
    """The UserError for a sqlite3 error met while opening or migrating the store at `path`."""
    text = str(exc)
    if "not a database" in text or "malformed" in text:
        return UserError(f"{path} is not a SQLite database (or is damaged: {text}); {_POINT_ELSEWHERE}")
    if "locked" in text or "busy" in text:
        return UserError(
            f"{path} stayed locked by another process ({text}); wait for it to "
            "finish or point --db / WORKBENCH_DB at another file"
        )
    return UserError(
        f"cannot open or write the store {path} ({text}); point --db / WORKBENCH_DB at a writable location"
    )


def check_known_migrations(db: Database, path: Path) -> None:
    """Refuse a store written by a newer version, or a SQLite file that is not a store at all."""
    tables = set(db.table_names())
    if Migrations.migrations_table in tables:
        rows = db.query(f"SELECT migration_set, name FROM {Migrations.migrations_table}")
        known = {(MIGRATION_SET, name) for name in MIGRATION_NAMES}
        unknown = sorted(
            f"{r['migration_set']}/{r['name']}" for r in rows if (r["migration_set"], r["name"]) not in known
        )
        if unknown:
            raise UserError(
                f"{path} was written by a newer version of CIFAR Workbench (unknown "
                f"migrations: {', '.join(unknown)}); upgrade CIFAR Workbench to open "
                "it, or point --db / WORKBENCH_DB at another file"
            )
    elif tables - {"sqlite_sequence"}:
        raise UserError(
            f"{path} is a SQLite database but not a CIFAR Workbench store (it has "
            f"tables {', '.join(sorted(tables))}); {_POINT_ELSEWHERE}"
        )


# -- migrations: append new ones at the end, never edit a shipped one --------------------------


def migration(fn: _Migration) -> _Migration:
    """Register `fn` as the next migration (named after the function) and remember its name."""
    MIGRATION_NAMES.append(fn.__name__)
    return MIGRATIONS(name=fn.__name__)(fn)


@migration
def m001_initial(db: Database) -> None:
    # `runs` and `ensembles` are written as SQL for AUTOINCREMENT: ids of deleted runs are never
    # reused, so a stale `run-<id>` folder or log line can't be mistaken for a newer run.
    # (sqlite-utils' `transform` keeps AUTOINCREMENT, so later migrations may use it.)
    db.execute(
        """
        CREATE TABLE runs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            name TEXT NOT NULL,
            kind TEXT NOT NULL DEFAULT 'scratch',
            spec TEXT NOT NULL DEFAULT '{}',
            status TEXT NOT NULL DEFAULT 'queued',
            error TEXT,
            dataset TEXT,
            split_id TEXT,
            params INTEGER,
            device TEXT,
            created_at TEXT NOT NULL,
            started_at TEXT,
            finished_at TEXT,
            epochs_done INTEGER NOT NULL DEFAULT 0,
            best_val_accuracy REAL,
            best_epoch INTEGER,
            final_val_accuracy REAL,
            test_accuracy REAL,
            train_seconds REAL,
            checkpoint_path TEXT,
            tags TEXT NOT NULL DEFAULT '[]',
            notes TEXT NOT NULL DEFAULT '',
            archived INTEGER NOT NULL DEFAULT 0
        )
        """
    )
    db.table("runs").create_index(["status"], index_name="idx_runs_status")
    db.table("runs").create_index(["archived"], index_name="idx_runs_archived")

    db.table("epochs").create(
        {
            "run": int,
            "epoch": int,
            "lr": float,
            "loss": float,
            "accuracy": float,
            "val_loss": float,
            "val_accuracy": float,
            "seconds": float,
            "logged_at": str,
        },
        pk=("run", "epoch"),
        foreign_keys=[("run", "runs", "id")],
        not_null=["run", "epoch"],
    )
    # The (run, epoch) primary key already serves `WHERE run = ?`; this named index is part of the
    # contract so the UI's per-run queries stay fast whatever the key becomes later.
    db.table("epochs").create_index(["run"], index_name="idx_epochs_run")

    db.table("predictions").create(
        {
            "run": int,
            "split": str,
            "logits": bytes,
            "shape": str,
            "labels_hash": str,
            "created_at": str,
        },
        pk=("run", "split"),
        foreign_keys=[("run", "runs", "id")],
        not_null=["run", "split", "logits", "shape", "labels_hash"],
    )
    db.table("predictions").create_index(["run"], index_name="idx_predictions_run")

    # The labels each stored prediction was computed against, once per distinct label vector, so the
    # ensemble and error views score stored logits without loading the dataset.
    db.table("labels").create({"hash": str, "labels": bytes, "count": int}, pk="hash", not_null=["labels"])

    db.execute(
        """
        CREATE TABLE ensembles (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            name TEXT NOT NULL,
            method TEXT NOT NULL,
            members TEXT NOT NULL,
            weights TEXT NOT NULL,
            temperatures TEXT,
            val_accuracy REAL,
            test_accuracy REAL,
            options TEXT NOT NULL DEFAULT '{}',
            created_at TEXT NOT NULL
        )
        """
    )


@migration
def m002_live_progress(db: Database) -> None:
    # Progress inside an epoch, for the live panel: epochs of big models take minutes, so the UI shows
    # the step within the epoch, written by the training callback every few seconds.
    db.table("runs").add_column("train_images", int)
    db.table("runs").add_column("steps_per_epoch", int)
    db.table("runs").add_column("step", int, not_null_default=0)


@migration
def m003_phases_and_attempts(db: Database) -> None:
    # Progress that tells the truth: what the job is doing (`phase`: preparing, training, evaluating
    # validation/test), how far the pass it is in has got (`step` of `steps_per_epoch`, or of
    # `eval_steps` while evaluating) and how long that pass has taken (`step_seconds`), so rates and
    # remaining times exist from the first batch; each attempt's own clock beside the total
    # (`train_seconds`); when the run joined the queue (its place in line); the final evaluation's
    # time, so estimates of later runs include it.
    for name, kind in (
        ("phase", str),
        ("step_seconds", float),
        ("eval_steps", int),
        ("eval_seconds", float),
        ("attempt_started_at", str),
        ("attempt_seconds", float),
        ("queued_at", str),
    ):
        db.table("runs").add_column(name, kind)
    db.table("runs").add_column("attempt", int, not_null_default=0)
    db.execute("UPDATE runs SET queued_at = created_at")


@migration
def m004_node(db: Database) -> None:
    # Where a run trained when jobs run on a Ray cluster (`workbench.jobs.ray_backend`): the node's address
    # and the start of its id, as the jobs and runs tables show it. Empty for runs trained by the app itself.
    db.table("runs").add_column("node", str)


@migration
def m005_val_steps(db: Database) -> None:
    # The batches of the validation at each epoch's end, so the live panel shows that pass's progress
    # (phase "validating": minutes for a fine-tune at 96x96) instead of a stalled epoch.
    db.table("runs").add_column("val_steps", int)


@migration
def m006_owners_and_audit(db: Database) -> None:
    # A shared page: who made each run (a sweep's runs each) and ensemble (`created_by`: the login, or the OS
    # user of the CLI; NULL for rows made before), and the audit trail: one row per action, never changed.
    db.table("runs").add_column("created_by", str)
    db.table("ensembles").add_column("created_by", str)
    db.execute(
        """
        CREATE TABLE audit (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            at TEXT NOT NULL,
            user TEXT NOT NULL,
            action TEXT NOT NULL,
            target TEXT NOT NULL DEFAULT '',
            detail TEXT NOT NULL DEFAULT ''
        )
        """
    )
    db.table("audit").create_index(["at"], index_name="idx_audit_at")
    # Append-only in the file itself, whatever code writes to it: SQLite refuses changing or deleting a row.
    for event in ("UPDATE", "DELETE"):
        db.execute(
            f"CREATE TRIGGER audit_append_only_{event.lower()} BEFORE {event} ON audit "
            "BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END"
        )


@migration
def m007_studies(db: Database) -> None:
    # Optuna studies (`workbench.jobs.study`): the study itself lives in `<store>-optuna.db` beside the store
    # (Optuna's own schema, which optuna-dashboard reads); here its name, where that file is, its settings
    # (the base run, the space, sampler, pruner, budget) and state, and which run each trial became.
    db.table("studies").create(
        {
            "name": str,
            "storage": str,
            "settings": str,
            "state": str,
            "seconds": float,
            "error": str,
            "created_at": str,
            "finished_at": str,
        },
        pk="name",
        not_null=["storage", "settings", "state", "created_at"],
        defaults={"seconds": 0.0, "settings": "{}"},
    )
    db.table("study_trials").create(
        {"study": str, "number": int, "run": int},
        pk=("study", "number"),
        foreign_keys=[("study", "studies", "name")],  # not the run: deleting a run leaves its trial, runless
        not_null=["study", "number", "run"],
    )
    db.table("study_trials").create_index(["run"], index_name="idx_study_trials_run")


@migration
def m008_label_reviews(db: Database) -> None:
    # Label review (issue 24): a dataset is known by its identity ("cifar10/<hash of its test labels>"), the
    # size and labels hash of each part (train, test), so a review for an index that does not exist or for
    # another dataset's image is refused; one verdict per (dataset, part, index), whoever reviews from which
    # source; cleanlab's per-image results cached per (source, split) and the data they were computed on; the
    # reviews a run trained with (`reviews=` dataset option: its mode, count and fingerprint).
    db.table("review_datasets").create(
        {"dataset": str, "name": str, "part": str, "count": int, "num_classes": int, "labels_hash": str, "files": str},
        pk=("dataset", "part"),
        not_null=["dataset", "name", "part", "count", "num_classes", "labels_hash"],
    )
    db.table("label_reviews").create(
        {
            "dataset": str,
            "part": str,
            "idx": int,
            "verdict": str,
            "label": int,
            "given": int,
            "suggested": int,
            "score": float,
            "reviewed_by": str,
            "reviewed_at": str,
        },
        pk=("dataset", "part", "idx"),
        not_null=["dataset", "part", "idx", "verdict", "given", "reviewed_at"],
    )
    db.table("label_quality").create(
        {"source": str, "split": str, "fingerprint": str, "result": bytes, "created_at": str},
        pk=("source", "split"),
        not_null=["source", "split", "fingerprint", "result", "created_at"],
    )
    db.table("runs").add_column("reviews_used", str)


@migration
def m010_snapshots_lineage(db: Database) -> None:
    # A result derived from another run's training (`workbench.training.snapshots`): a snapshot at the end of a
    # cosine cycle ("snapshot 3") or the weight average of its last epochs ("averaged"). It is a run row of its
    # own (its logits, its checkpoint folder), so every view that picks runs picks it; `parent_run` names the
    # run it came from, `derived` which of its results it is (NULL for a trained run).
    db.table("runs").add_column("parent_run", int)
    db.table("runs").add_column("derived", str)
    db.table("runs").create_index(["parent_run"], index_name="idx_runs_parent_run")


@migration
def m011_trial_verdicts(db: Database) -> None:
    # The study driver's verdict on each trial after its latest reported epoch (`workbench.jobs.study`): the
    # trial's run waits for it at the epoch's end (`workbench.training.verdict`), so a pruned trial stops at the
    # epoch the pruner judged instead of training one more while the driver's poll catches up.
    db.table("study_trials").add_column("judged", int)
    db.table("study_trials").add_column("verdict", str)
