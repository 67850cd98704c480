"""`Store`: every run, epoch, stored prediction and ensemble of the workbench in one SQLite file.

Here: opening the file, its transactions, runs and epochs. The other tables' methods are mixins on `StoreRows`
(`store.rows`), one module each: predictions.py (logits and labels), ensembles.py, lineage.py (derived runs),
reviews.py, studies.py, audit.py.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, SupportsFloat

from sqlite_utils import Database

from workbench.constants import ACTIVE_STATUSES, FINISHED_STATUSES, RUN_KINDS, RUN_STATUSES, RunKind, RunStatus
from workbench.errors import UserError, choose

from . import blobs, lock, schema
from .audit import AuditTrail
from .clock import utc_now
from .ensembles import EnsembleRows
from .lineage import DerivedRows
from .predictions import PredictionRows
from .reviews import QualityCache, ReviewRows
from .schema import RUN_COLUMNS
from .studies import StudyRows

NOBODY_RUNNING = (
    "no process is running this store's jobs: the one that ran this run stopped (killed or "
    "crashed). The next app or train command marks it interrupted for good; Resume continues it"
)


def default_db_path() -> Path:
    """The store used when none is named: `$WORKBENCH_DB`, else `runs/workbench.db`."""
    return Path(os.environ.get("WORKBENCH_DB", "runs/workbench.db"))


class Store(AuditTrail, StudyRows, ReviewRows, QualityCache, DerivedRows, PredictionRows, EnsembleRows):
    """One workbench store: a SQLite file (WAL mode) plus a `<stem>-files/` folder beside it (and, for
    Optuna studies, `<stem>-optuna.db`: `store.studies`).

    Threading model: one Store holds ONE sqlite3 connection (`check_same_thread=False`) and every
    public method runs under the Store's `threading.RLock`, so a Store can be shared by training
    threads and the UI thread; each operation (including a whole write transaction) is atomic with
    respect to the other threads, and no two threads ever interleave statements on the connection.
    Operations are short (milliseconds), so a polling reader only waits for the statement in
    flight. Separate Store objects (other processes, or a second Store in this one) use their own
    connections: WAL lets their readers run while a writer commits, and writers wait for each
    other up to `timeout` seconds (busy timeout) instead of failing with "database is locked".
    Write transactions start with `BEGIN IMMEDIATE`, taking the write lock up front, so a
    read-then-write transaction can't fail midway because another connection wrote first.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, *, timeout: float = 30.0) -> None:
        self.path = Path(path) if path is not None else default_db_path()
        self.files_root = self.path.parent / f"{self.path.stem}-files"
        self._lock = threading.RLock()
        schema.check_path(self.path)
        try:
            conn = sqlite3.connect(str(self.path), timeout=timeout, check_same_thread=False)
        except sqlite3.Error as exc:
            raise schema.open_error(self.path, exc) from exc
        try:
            self.db = Database(conn, execute_plugins=False)
            self.db.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
            self.db.execute("PRAGMA foreign_keys = ON")
            self.db.enable_wal()
            self.db.execute("PRAGMA synchronous = NORMAL")
            with self._write():
                schema.check_known_migrations(self.db, self.path)
                schema.MIGRATIONS.apply(self.db)
        except BaseException as exc:
            conn.close()
            if isinstance(exc, sqlite3.Error):
                raise schema.open_error(self.path, exc) from exc
            raise

    # -- plumbing ---------------------------------------------------------------------------
    @contextlib.contextmanager
    def _write(self) -> Iterator[Database]:
        """Hold the lock and one `BEGIN IMMEDIATE` transaction; commit, or roll back on error."""
        with self._lock:
            conn = self.db.conn
            if conn.in_transaction:  # nested: sqlite-utils turns this into a savepoint
                with self.db.atomic():
                    yield self.db
                return
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
                conn.execute("COMMIT")
            except BaseException:
                self.db.rollback()
                raise

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[dict]:
        with self._lock:
            return list(self.db.query(sql, params))

    def _run_row(self, run_id: int) -> dict:
        rows = self._query("SELECT * FROM runs WHERE id = ?", [int(run_id)])
        if not rows:
            raise UserError(f"no run {run_id}")
        return rows[0]

    @staticmethod
    def _decode_run(row: dict) -> dict:
        return {**blobs.decode_json(row, ("spec", "tags", "reviews_used")), "archived": bool(row["archived"])}

    def run_dir(self, run_id: int) -> Path:
        """The run's files folder, `<db folder>/<db stem>-files/run-<id>/` (created here)."""
        self._run_row(run_id)
        folder = self.files_root / f"run-{int(run_id)}"
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    # -- runs -------------------------------------------------------------------------------
    def create_run(
        self,
        name: str,
        spec: dict,
        *,
        kind: str = RunKind.SCRATCH,
        dataset: str | None = None,
        split_id: str | None = None,
        params: int | None = None,
        tags: Iterable[str] = (),
        notes: str = "",
        created_by: str | None = None,
    ) -> int:
        """Add a `queued` run (made by `created_by`) and return its id."""
        if not isinstance(spec, dict):
            raise ValueError(f"spec must be a dict, not {type(spec).__name__}")
        now = utc_now()
        row = {
            "name": str(name),
            "kind": choose("run kind", kind, RUN_KINDS),
            "spec": blobs.dumps(spec),
            "status": RunStatus.QUEUED,
            "queued_at": now,
            "dataset": dataset,
            "split_id": split_id,
            "params": None if params is None else int(params),
            "created_at": now,
            "tags": blobs.dumps(list(tags)),
            "notes": notes or "",
            "archived": 0,
            "epochs_done": 0,
            "created_by": created_by,
        }
        with self._write() as db:
            run_id = db.table("runs").insert(row).last_pk
            assert run_id is not None, "an insert into runs sets last_pk"
            return int(run_id)

    def update_run(self, run_id: int, **fields: Any) -> None:
        """Set columns of a run; unknown column names raise ValueError."""
        fields = schema.encode_run_fields(fields)
        with self._write() as db:
            self._run_row(run_id)
            db.table("runs").update(int(run_id), fields)

    def get_run(self, run_id: int) -> dict:
        """The run's row as a dict, with `spec` and `tags` decoded and `archived` a bool."""
        return self._decode_run(self._run_row(run_id))

    def list_runs(
        self, *, status: str | Iterable[str] | None = None, include_archived: bool = False, order: str = "id"
    ) -> list[dict]:
        """Runs, optionally only those with `status` (a name or a list of names).

        `order` is a run column, prefixed with `-` for descending (e.g. `-best_val_accuracy`).
        """
        column = order[1:] if order.startswith("-") else order
        choose("order column", column, RUN_COLUMNS)
        where, params = [], []
        if status is not None:
            statuses = [status] if isinstance(status, str) else list(status)
            for s in statuses:
                choose("run status", s, RUN_STATUSES)
            where.append(f"status IN ({', '.join('?' * len(statuses))})")
            params += statuses
        if not include_archived:
            where.append("archived = 0")
        sql = "SELECT * FROM runs" + (f" WHERE {' AND '.join(where)}" if where else "")
        sql += f" ORDER BY [{column}] {'DESC' if order.startswith('-') else 'ASC'}, id"
        return [self._decode_run(r) for r in self._query(sql, params)]

    def runs_with_status(self, *statuses: str) -> list[dict]:
        """Runs (archived ones too) whose status is one of `statuses`, by id."""
        return self.list_runs(status=list(statuses), include_archived=True)

    def set_status(self, run_id: int, status: str, error: str | None = None) -> None:
        """Set status and error; stamps started_at on first `running`, finished_at when terminal,
        queued_at (its place in line) when queued; a finished or newly queued run has no phase, and a
        newly queued one no attempt under way (its job clocks the next: `attempt_started_at`)."""
        choose("run status", status, RUN_STATUSES)
        with self._write():
            row = self._run_row(run_id)
            fields = {"status": status, "error": error}
            if status == RunStatus.RUNNING and not row["started_at"]:
                fields["started_at"] = utc_now()
            if status == RunStatus.QUEUED:
                fields.update(queued_at=utc_now(), phase=None, attempt_started_at=None)
            if status in FINISHED_STATUSES:
                fields["phase"] = None
            fields["finished_at"] = utc_now() if status in FINISHED_STATUSES else None
            self.db.table("runs").update(int(run_id), fields)

    def archive_run(self, run_id: int, archived: bool = True) -> None:
        self.update_run(run_id, archived=archived)

    def delete_run(self, run_id: int) -> list[int]:
        """Delete the run and the results derived from it (its snapshots and average: runs whose `parent_run`
        it is), their rows in every table in one transaction, then their files folders; returns the derived
        runs' ids. A folder left by a delete killed after its commit (no row names it: ids are never reused)
        is removed by the next delete."""
        with self._write() as db:
            self._run_row(run_id)
            derived = [int(r["id"]) for r in db.query("SELECT id FROM runs WHERE parent_run = ?", [int(run_id)])]
            for gone in (*derived, int(run_id)):
                for table in ("predictions", "epochs"):
                    db.execute(f"DELETE FROM {table} WHERE run = ?", [gone])
                db.execute("DELETE FROM runs WHERE id = ?", [gone])
            db.execute("DELETE FROM labels WHERE hash NOT IN (SELECT labels_hash FROM predictions)")
        for gone in (*derived, int(run_id)):
            shutil.rmtree(self.files_root / f"run-{gone}", ignore_errors=True)
        self._remove_orphan_folders()
        return derived

    def _remove_orphan_folders(self) -> None:
        """Remove `run-<id>` folders whose run no longer exists (a delete killed between its commit and its
        folders); `run_dir` makes a folder only for an existing row, so such a folder is nobody's."""
        if not self.files_root.is_dir():
            return
        folders = {p: p.name.removeprefix("run-") for p in self.files_root.glob("run-*") if p.is_dir()}
        ids = {str(r["id"]) for r in self._query("SELECT id FROM runs")}
        for path, run_id in folders.items():
            if run_id.isdigit() and run_id not in ids:
                shutil.rmtree(path, ignore_errors=True)

    def mark_interrupted(self, statuses: Iterable[str] = ACTIVE_STATUSES) -> list[int]:
        """Mark runs left `running`/`queued` by a process that is gone as `interrupted`.

        Call it once at startup, before this process queues or starts anything.
        """
        with self._write() as db:
            rows = self.runs_with_status(*statuses)
            for row in rows:
                db.execute(
                    "UPDATE runs SET status = ?, phase = NULL, finished_at = ?, error = coalesce(error, ?) "
                    "WHERE id = ?",
                    [
                        RunStatus.INTERRUPTED.value,
                        utc_now(),
                        f"the process stopped while this run was {row['status']}",
                        row["id"],
                    ],
                )
        return [row["id"] for row in rows]

    def runner_alive(self) -> bool:
        """Whether a process runs this store's jobs (holds its job lock: `store.lock.held`)."""
        return lock.held(self.path)

    def seen_runs(self, *, status: str | Iterable[str] | None = None, include_archived: bool = False) -> list[dict]:
        """`list_runs` as a reader shows them: while no process holds the store's job lock, a run still
        marked queued or running has nobody working on it and reads as interrupted, saying why (the store
        is left as it is: the next job runner marks it for good, `mark_interrupted`). `status` filters on
        the status shown."""
        runs = self.list_runs(include_archived=include_archived)
        if any(r["status"] in ACTIVE_STATUSES for r in runs) and not self.runner_alive():
            runs = [
                {**r, "status": RunStatus.INTERRUPTED.value, "phase": None, "error": r["error"] or NOBODY_RUNNING}
                if r["status"] in ACTIVE_STATUSES
                else r
                for r in runs
            ]
        if status is None:
            return runs
        wanted = [choose("run status", s, RUN_STATUSES) for s in ([status] if isinstance(status, str) else status)]
        return [r for r in runs if r["status"] in wanted]

    # -- epochs -----------------------------------------------------------------------------
    def log_epoch(
        self,
        run_id: int,
        epoch: int,
        *,
        lr: SupportsFloat | None = None,
        loss: SupportsFloat | None = None,
        accuracy: SupportsFloat | None = None,
        val_loss: SupportsFloat | None = None,
        val_accuracy: SupportsFloat | None = None,
        seconds: SupportsFloat | None = None,
    ) -> None:
        """Record epoch `epoch` (1-based; re-logging replaces it) and refresh the run's summary.

        (SQLite stores NaN as NULL, so a diverged loss reads back as None.)
        """
        if int(epoch) < 1:
            raise ValueError(f"epochs are 1-based, got {epoch}")
        row = dict(
            run=int(run_id),
            epoch=int(epoch),
            lr=blobs.optional_float(lr),
            loss=blobs.optional_float(loss),
            accuracy=blobs.optional_float(accuracy),
            val_loss=blobs.optional_float(val_loss),
            val_accuracy=blobs.optional_float(val_accuracy),
            seconds=blobs.optional_float(seconds),
            logged_at=utc_now(),
        )
        with self._write() as db:
            self._run_row(run_id)
            db.table("epochs").upsert(row, pk=("run", "epoch"))
            self._refresh_summary(run_id)

    def _refresh_summary(self, run_id: int) -> None:
        run_id = int(run_id)
        last = self._query("SELECT epoch, val_accuracy FROM epochs WHERE run = ? ORDER BY epoch DESC LIMIT 1", [run_id])
        best = self._query(
            "SELECT epoch, val_accuracy FROM epochs WHERE run = ? AND val_accuracy "
            "IS NOT NULL ORDER BY val_accuracy DESC, epoch ASC LIMIT 1",
            [run_id],
        )
        self.db.table("runs").update(
            run_id,
            {
                "epochs_done": last[0]["epoch"] if last else 0,
                "final_val_accuracy": last[0]["val_accuracy"] if last else None,
                "best_val_accuracy": best[0]["val_accuracy"] if best else None,
                "best_epoch": best[0]["epoch"] if best else None,
            },
        )

    def epochs(self, run_id: int) -> list[dict]:
        """The run's epoch rows, ordered by epoch."""
        return self._query("SELECT * FROM epochs WHERE run = ? ORDER BY epoch", [int(run_id)])

    def truncate_epochs(self, run_id: int, after_epoch: int) -> int:
        """Delete epochs after `after_epoch` (resuming an older checkpoint); returns how many."""
        with self._write() as db:
            self._run_row(run_id)
            cursor = db.execute("DELETE FROM epochs WHERE run = ? AND epoch > ?", [int(run_id), int(after_epoch)])
            self._refresh_summary(run_id)
            return cursor.rowcount

    # -- maintenance ------------------------------------------------------------------------
    def integrity_check(self) -> str:
        """`PRAGMA integrity_check` result: `ok`, or the problems found, one per line."""
        rows = self._query("PRAGMA integrity_check")
        return "\n".join(str(next(iter(r.values()))) for r in rows)

    def close(self) -> None:
        with self._lock:
            self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"
