"""The store on real SQLite files: schema, migrations, runs, epochs, logits, ensembles, threads."""

import hashlib
import json
import os
import re
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from store import Store, default_db_path
from store.schema import MIGRATION_NAMES, MIGRATION_SET
from workbench.constants import RUN_STATUSES, RunKind, RunPhase, RunStatus
from workbench.errors import UserError

SPEC = {"model": "resnet20", "epochs": 30, "lr": 0.1, "augment": ["flip", "crop"]}


@pytest.fixture
def fresh_store(tmp_path):
    store = Store(tmp_path / "runs" / "workbench.db")
    yield store
    store.close()


def _epoch(store, run_id, epoch, val_accuracy, loss=1.0):
    store.log_epoch(
        run_id, epoch, lr=0.1, loss=loss, accuracy=0.5, val_loss=loss, val_accuracy=val_accuracy, seconds=1.5
    )


def _raw(path):
    """A plain sqlite3 connection, independent of the Store code."""
    conn = sqlite3.connect(str(path))
    conn.row_factory = sqlite3.Row
    return conn


# -- opening, schema, migrations -------------------------------------------------------------
def test_default_db_path(monkeypatch, tmp_path):
    monkeypatch.delenv("WORKBENCH_DB", raising=False)
    assert str(default_db_path()) == "runs/workbench.db"
    monkeypatch.setenv("WORKBENCH_DB", str(tmp_path / "deep" / "x.db"))
    assert default_db_path() == tmp_path / "deep" / "x.db"
    with Store() as store:
        assert store.path == tmp_path / "deep" / "x.db" and store.path.is_file()


def test_schema_wal_and_indexes(fresh_store):
    path = fresh_store.path
    assert path.is_file() and path.parent.name == "runs"
    with _raw(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        columns = {
            t: [r["name"] for r in conn.execute(f"PRAGMA table_info({t})")]
            for t in ("runs", "epochs", "predictions", "ensembles")
        }
        indexes = {
            t: {
                r["name"]: [c["name"] for c in conn.execute(f"PRAGMA index_info({r['name']})")]
                for r in conn.execute(f"PRAGMA index_list({t})")
            }
            for t in ("runs", "epochs")
        }
        pks = {
            t: [r["name"] for r in sorted(conn.execute(f"PRAGMA table_info({t})"), key=lambda r: r["pk"]) if r["pk"]]
            for t in ("runs", "epochs", "predictions", "ensembles")
        }
        fks = {
            t: [(r["from"], r["table"], r["to"]) for r in conn.execute(f"PRAGMA foreign_key_list({t})")]
            for t in ("epochs", "predictions")
        }
    assert columns["runs"] == [
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
        "attempt_started_at",
        "attempt_seconds",
        "queued_at",
        "attempt",
        "node",
        "val_steps",
        "created_by",
        "reviews_used",
        "parent_run",
        "derived",
    ]
    assert columns["epochs"] == [
        "run",
        "epoch",
        "lr",
        "loss",
        "accuracy",
        "val_loss",
        "val_accuracy",
        "seconds",
        "logged_at",
    ]
    assert columns["predictions"] == ["run", "split", "logits", "shape", "labels_hash", "created_at"]
    assert columns["ensembles"] == [
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
    ]
    assert pks == {"runs": ["id"], "epochs": ["run", "epoch"], "predictions": ["run", "split"], "ensembles": ["id"]}
    assert fks == {"epochs": [("run", "runs", "id")], "predictions": [("run", "runs", "id")]}
    assert ["status"] in indexes["runs"].values()
    assert ["run"] in indexes["epochs"].values()
    assert fresh_store.integrity_check() == "ok"


def test_migrations_idempotent_on_reopen(tmp_path):
    path = tmp_path / "w.db"
    with Store(path) as store:
        run_id = store.create_run("a", SPEC)
        schema_before = store.db.schema
    for _ in range(2):
        with Store(path) as store:
            assert store.db.schema == schema_before
            assert store.get_run(run_id)["name"] == "a"
    with _raw(path) as conn:
        rows = conn.execute("SELECT migration_set, name FROM _sqlite_migrations ORDER BY id").fetchall()
    assert [tuple(r) for r in rows] == [(MIGRATION_SET, n) for n in MIGRATION_NAMES]


def test_context_manager_closes(tmp_path):
    with Store(tmp_path / "w.db") as store:
        store.create_run("a", {})
    with pytest.raises(sqlite3.ProgrammingError):
        store.list_runs()


def test_not_sqlite_file_is_refused(tmp_path):
    path = tmp_path / "notes.db"
    path.write_text("these are my notes, not a database\n" * 20)
    with pytest.raises(UserError, match="is not a SQLite database; point --db / WORKBENCH_DB"):
        Store(path)
    assert path.read_text().startswith("these are my notes")  # untouched


def test_damaged_sqlite_file_is_refused(tmp_path):
    path = tmp_path / "damaged.db"
    path.write_bytes(b"SQLite format 3\x00" + bytes(range(256)) * 20)
    with pytest.raises(UserError, match=r"is not a SQLite database.*point --db / WORKBENCH_DB"):
        Store(path)


def test_directory_path_is_refused(tmp_path):
    with pytest.raises(UserError, match="is a directory; point --db / WORKBENCH_DB"):
        Store(tmp_path)


def test_unwritable_location_is_refused(tmp_path):
    blocker = tmp_path / "plain-file"
    blocker.write_text("x")
    with pytest.raises(UserError, match="writable location"):
        Store(blocker / "sub" / "w.db")


def test_foreign_sqlite_database_is_refused(tmp_path):
    path = tmp_path / "other.db"
    with _raw(path) as conn:
        conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
    with pytest.raises(UserError, match="not a CIFAR Workbench store"):
        Store(path)
    with _raw(path) as conn:  # nothing was added to it
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert names == {"customers"}


def test_store_from_newer_version_is_refused(tmp_path):
    path = tmp_path / "w.db"
    Store(path).close()
    with _raw(path) as conn:
        conn.execute(
            "INSERT INTO _sqlite_migrations (migration_set, name, applied_at) "
            "VALUES (?, 'm999_from_the_future', '2099-01-01')",
            [MIGRATION_SET],
        )
    with pytest.raises(UserError, match=r"newer version.*m999_from_the_future.*upgrade CIFAR Workbench"):
        Store(path)


# -- runs ------------------------------------------------------------------------------------
def test_create_get_update_list(fresh_store):
    s = fresh_store
    a = s.create_run("a", SPEC, dataset="cifar10", split_id="s45k", params=272474, tags=["x", "y"])
    b = s.create_run("b", {"model": "vit"}, kind="finetune", notes="from imagenet")
    assert (a, b) == (1, 2)
    run = s.get_run(a)
    assert run["spec"] == SPEC and run["tags"] == ["x", "y"]
    assert run["status"] == "queued" and run["kind"] == "scratch" and run["params"] == 272474
    assert run["created_at"].endswith("+00:00") and run["archived"] is False
    assert run["epochs_done"] == 0 and run["best_val_accuracy"] is None

    s.update_run(a, test_accuracy=0.91, device="GPU:0", tags=("z",), spec={"model": "r56"})
    run = s.get_run(a)
    assert run["test_accuracy"] == 0.91 and run["device"] == "GPU:0"
    assert run["tags"] == ["z"] and run["spec"] == {"model": "r56"}
    assert s.get_run(b)["device"] is None  # other runs untouched

    s.set_status(b, "running")
    assert [r["id"] for r in s.list_runs()] == [a, b]
    assert [r["id"] for r in s.list_runs(order="-id")] == [b, a]
    assert [r["id"] for r in s.list_runs(status="running")] == [b]
    assert [r["id"] for r in s.list_runs(status=["queued", "running"])] == [a, b]
    assert [r["id"] for r in s.runs_with_status("queued")] == [a]
    assert s.runs_with_status("failed") == []
    with pytest.raises(UserError, match="unknown order column"):
        s.list_runs(order="bogus; DROP TABLE runs")
    with pytest.raises(UserError, match="unknown run status 'done'"):
        s.list_runs(status="done")


def test_update_rejects_unknown_fields_and_runs(fresh_store):
    run_id = fresh_store.create_run("a", {})
    with pytest.raises(ValueError, match=r"unknown run field.*colour"):
        fresh_store.update_run(run_id, colour="red")
    with pytest.raises(ValueError, match=r"unknown run field.*id"):
        fresh_store.update_run(run_id, id=5)
    with pytest.raises(UserError, match="unknown run status"):
        fresh_store.update_run(run_id, status="sleeping")
    with pytest.raises(UserError, match="unknown run kind"):
        fresh_store.create_run("b", {}, kind="hologram")
    for call in (
        lambda: fresh_store.get_run(99),
        lambda: fresh_store.update_run(99, notes="x"),
        lambda: fresh_store.set_status(99, "running"),
        lambda: _epoch(fresh_store, 99, 1, 0.5),
    ):
        with pytest.raises(UserError, match=r"^no run 99$"):
            call()
    assert fresh_store.epochs(99) == []


def test_set_status_timestamps(fresh_store):
    s = fresh_store
    run_id = s.create_run("a", {})
    with pytest.raises(UserError, match="unknown run status"):
        s.set_status(run_id, "paused")
    s.set_status(run_id, "running")
    started = s.get_run(run_id)["started_at"]
    assert started and s.get_run(run_id)["finished_at"] is None
    s.set_status(run_id, "failed", error="Traceback: boom")
    run = s.get_run(run_id)
    assert run["status"] == "failed" and run["error"] == "Traceback: boom" and run["finished_at"]
    s.set_status(run_id, "running")  # resumed: keeps the first start, clears the finish and error
    run = s.get_run(run_id)
    assert run["started_at"] == started and run["finished_at"] is None and run["error"] is None
    assert set(RUN_STATUSES) == {
        "queued", "running", "completed", "failed", "cancelled", "interrupted", "diverged", "pruned"
    }  # fmt: skip


def test_enum_members_are_stored_and_dumped_as_their_plain_strings(fresh_store):
    """Code passes RunStatus / RunKind / RunPhase members; SQLite stores text, JSON a plain string, and
    what comes back (a plain str) equals the member, hashes like it and finds it in a dict or a tuple."""
    run_id = fresh_store.create_run("enum", {}, kind=RunKind.FINETUNE)
    fresh_store.set_status(run_id, RunStatus.RUNNING)
    fresh_store.update_run(run_id, phase=RunPhase.EVAL_TEST)
    row = _raw(fresh_store.path).execute("SELECT status, typeof(status), kind, phase FROM runs").fetchone()
    assert tuple(row) == ("running", "text", "finetune", "evaluating test")
    run = fresh_store.get_run(run_id)
    assert type(run["status"]) is str and run["status"] == RunStatus.RUNNING
    assert hash(run["status"]) == hash(RunStatus.RUNNING) and {RunStatus.RUNNING: 1}[run["status"]] == 1
    assert run["kind"] in (RunKind.FINETUNE,) and run["phase"] == RunPhase.EVAL_TEST
    assert [r["id"] for r in fresh_store.list_runs(status=RunStatus.RUNNING)] == [run_id]
    assert json.dumps({RunStatus.FAILED: [RunKind.SCRATCH]}) == '{"failed": ["scratch"]}'
    assert f"{RunStatus.QUEUED} {RunPhase.TRAINING}" == "queued training" and str(RunKind.SCRATCH) == "scratch"


def test_failed_write_rolls_back(fresh_store):
    with pytest.raises(RuntimeError), fresh_store._write():
        fresh_store.create_run("half-made", {})
        raise RuntimeError("crash mid-transaction")
    assert fresh_store.list_runs() == []
    fresh_store.create_run("after", {})  # the connection is usable afterwards
    assert [r["name"] for r in fresh_store.list_runs()] == ["after"]


def test_archive_hides_from_default_list(fresh_store):
    a, b = fresh_store.create_run("a", {}), fresh_store.create_run("b", {})
    fresh_store.archive_run(a)
    assert [r["id"] for r in fresh_store.list_runs()] == [b]
    assert [r["id"] for r in fresh_store.list_runs(include_archived=True)] == [a, b]
    assert fresh_store.get_run(a)["archived"] is True
    fresh_store.archive_run(a, archived=False)
    assert [r["id"] for r in fresh_store.list_runs()] == [a, b]


def test_delete_run_removes_rows_and_files(fresh_store):
    s = fresh_store
    keep, gone = s.create_run("keep", {}), s.create_run("gone", {})
    for run_id in (keep, gone):
        _epoch(s, run_id, 1, 0.5)
        s.save_logits(run_id, "val", np.zeros((4, 10)), [0, 1, 2, 3])
    folder = s.run_dir(gone)
    assert folder == s.path.parent / "workbench-files" / f"run-{gone}" and folder.is_dir()
    (folder / "checkpoint.keras").write_bytes(b"weights")
    s.delete_run(gone)
    assert not folder.exists()
    with _raw(s.path) as conn:
        for table, column in (("runs", "id"), ("epochs", "run"), ("predictions", "run")):
            assert conn.execute(f"SELECT count(*) FROM {table} WHERE {column} = ?", [gone]).fetchone()[0] == 0
            assert conn.execute(f"SELECT count(*) FROM {table} WHERE {column} = ?", [keep]).fetchone()[0] == 1
    with pytest.raises(UserError, match=f"no run {gone}"):
        s.delete_run(gone)
    assert s.create_run("next", {}) == gone + 1  # ids are never reused


def test_mark_interrupted(fresh_store):
    s = fresh_store
    ids = {status: s.create_run(status, {}) for status in ("queued", "running", "completed", "failed")}
    s.set_status(ids["running"], "running")
    s.set_status(ids["completed"], "completed")
    s.set_status(ids["failed"], "failed", error="bad")
    assert s.mark_interrupted() == [ids["queued"], ids["running"]]
    statuses = {r["name"]: (r["status"], r["finished_at"] is not None) for r in s.list_runs()}
    assert statuses == {
        "queued": ("interrupted", True),
        "running": ("interrupted", True),
        "completed": ("completed", True),
        "failed": ("failed", True),
    }
    assert s.get_run(ids["failed"])["error"] == "bad"
    assert "running" in s.get_run(ids["running"])["error"]
    assert s.mark_interrupted() == []


# -- epochs ----------------------------------------------------------------------------------
def test_log_epoch_upserts_and_recomputes_summary(fresh_store):
    s = fresh_store
    run_id = s.create_run("a", {})
    for epoch, acc in [(1, 0.40), (2, 0.55), (3, 0.70), (4, 0.60)]:
        _epoch(s, run_id, epoch, acc)
    run = s.get_run(run_id)
    assert (run["epochs_done"], run["best_epoch"], run["best_val_accuracy"], run["final_val_accuracy"]) == (
        4,
        3,
        0.70,
        0.60,
    )

    _epoch(s, run_id, 3, 0.50, loss=0.25)  # resumed run re-logs epoch 3 with worse accuracy
    rows = s.epochs(run_id)
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4]
    assert rows[2]["val_accuracy"] == 0.50 and rows[2]["loss"] == 0.25
    run = s.get_run(run_id)
    assert (run["best_epoch"], run["best_val_accuracy"], run["final_val_accuracy"]) == (4, 0.60, 0.60)

    assert s.truncate_epochs(run_id, 2) == 2
    assert [r["epoch"] for r in s.epochs(run_id)] == [1, 2]
    run = s.get_run(run_id)
    assert (run["epochs_done"], run["best_epoch"], run["final_val_accuracy"]) == (2, 2, 0.55)
    with pytest.raises(ValueError, match="1-based"):
        _epoch(s, run_id, 0, 0.1)


def test_epochs_of_runs_are_separate(fresh_store):
    a, b = fresh_store.create_run("a", {}), fresh_store.create_run("b", {})
    _epoch(fresh_store, a, 1, 0.3)
    _epoch(fresh_store, b, 1, 0.9)
    assert fresh_store.get_run(a)["best_val_accuracy"] == 0.3
    assert [r["val_accuracy"] for r in fresh_store.epochs(b)] == [0.9]


# -- predictions -----------------------------------------------------------------------------
def test_logits_round_trip_exactly(fresh_store):
    s = fresh_store
    run_id = s.create_run("a", {})
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(1000, 10)).astype(np.float32)
    labels = rng.integers(0, 10, size=1000).astype(np.uint8)
    s.save_logits(run_id, "val", logits, labels)
    s.save_logits(run_id, "test_flip", logits[:7].astype(np.float64), labels[:7])
    back = s.load_logits(run_id, "val")
    assert back.dtype == np.float32 and back.shape == (1000, 10)
    np.testing.assert_array_equal(back, logits)
    assert s.load_logits(run_id, "test_flip").dtype == np.float32
    assert s.prediction_splits(run_id) == ["test_flip", "val"]

    expected = hashlib.sha256(labels.astype(np.int64).tobytes()).hexdigest()
    assert Store.labels_hash(labels) == expected == s.labels_hash(labels.tolist())
    info = s.prediction_info(run_id, "val")
    assert info["labels_hash"] == expected and info["shape"] == [1000, 10]
    with _raw(s.path) as conn:
        row = conn.execute("SELECT shape, labels_hash FROM predictions WHERE split = 'val'").fetchone()
    assert row["shape"] == "[1000, 10]" and row["labels_hash"] == expected

    s.save_logits(run_id, "val", logits * 2, labels)  # replaced, not duplicated
    np.testing.assert_array_equal(s.load_logits(run_id, "val"), logits * 2)
    assert s.prediction_splits(run_id) == ["test_flip", "val"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    logits=hnp.arrays(
        np.float32,
        hnp.array_shapes(min_dims=1, max_dims=3, max_side=6),
        elements=st.floats(width=32, allow_nan=True, allow_infinity=True),
    ),
    split=st.sampled_from(["val", "test", "val_flip", "test_flip"]),
)
def test_any_float32_logits_round_trip_bit_for_bit(fresh_store, logits, split):
    run_id = (
        fresh_store.runs_with_status("queued")[0]["id"]
        if fresh_store.list_runs()
        else fresh_store.create_run("prop", {})
    )
    labels = np.arange(logits.shape[0]) % 10
    fresh_store.save_logits(run_id, split, logits, labels)
    back = fresh_store.load_logits(run_id, split)
    assert back.dtype == np.float32 and back.shape == logits.shape
    assert back.tobytes() == logits.tobytes()  # NaNs and signed zeros included
    assert fresh_store.prediction_info(run_id, split)["labels_hash"] == Store.labels_hash(labels)


def test_missing_logits_and_bad_labels(fresh_store):
    run_id = fresh_store.create_run("a", {})
    with pytest.raises(UserError, match=f"run {run_id} has no stored logits for split test"):
        fresh_store.load_logits(run_id, "test")
    with pytest.raises(ValueError, match="one label per row"):
        fresh_store.save_logits(run_id, "val", np.zeros((5, 10)), [1, 2, 3])
    assert Store.labels_hash([1, 2]) != Store.labels_hash([2, 1])


# -- ensembles -------------------------------------------------------------------------------
def test_ensembles_crud(fresh_store):
    s = fresh_store
    e1 = s.save_ensemble(
        "top3",
        "weighted",
        [1, 2, 3],
        np.array([0.5, 0.3, 0.2]),
        temperatures=[1.0, 1.5, 2.0],
        val_accuracy=0.93,
        options={"tta": True},
    )
    e2 = s.save_ensemble("mean", "mean", [1, 2], [0.5, 0.5])
    got = s.get_ensemble(e1)
    assert got["members"] == [1, 2, 3] and got["weights"] == [0.5, 0.3, 0.2]
    assert got["temperatures"] == [1.0, 1.5, 2.0] and got["options"] == {"tta": True}
    assert got["val_accuracy"] == 0.93 and got["test_accuracy"] is None and got["created_at"]
    assert s.get_ensemble(e2)["temperatures"] is None and s.get_ensemble(e2)["options"] == {}
    assert [e["name"] for e in s.list_ensembles()] == ["top3", "mean"]
    s.delete_ensemble(e1)
    assert [e["id"] for e in s.list_ensembles()] == [e2]
    with pytest.raises(UserError, match=f"no ensemble {e1}"):
        s.get_ensemble(e1)
    with pytest.raises(UserError, match=f"no ensemble {e1}"):
        s.delete_ensemble(e1)


# -- sharing between threads and processes ---------------------------------------------------
def _writer_and_reader(writer_store, reader_store, run_id, epochs=200):
    errors, polls, done = [], [0], threading.Event()
    labels = np.arange(500) % 10

    def write():
        try:
            for epoch in range(1, epochs + 1):
                _epoch(writer_store, run_id, epoch, epoch / (epochs + 1))
                if epoch % 20 == 0:
                    writer_store.save_logits(run_id, "val", np.full((500, 10), epoch, np.float32), labels)
            writer_store.set_status(run_id, "completed")
        except BaseException as exc:
            errors.append(("writer", exc))
        finally:
            done.set()

    def read():
        try:
            while not done.is_set():
                reader_store.list_runs()
                rows = reader_store.epochs(run_id)
                assert [r["epoch"] for r in rows] == list(range(1, len(rows) + 1))
                if reader_store.prediction_splits(run_id):
                    logits = reader_store.load_logits(run_id, "val")
                    assert logits.shape == (500, 10) and np.all(logits == logits[0, 0])
                polls[0] += 1
        except BaseException as exc:
            errors.append(("reader", exc))

    threads = [threading.Thread(target=write), threading.Thread(target=read), threading.Thread(target=read)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    assert polls[0] > 0
    return reader_store.get_run(run_id)


def test_one_store_shared_by_writer_and_reader_threads(fresh_store):
    run_id = fresh_store.create_run("a", {})
    run = _writer_and_reader(fresh_store, fresh_store, run_id)
    assert run["epochs_done"] == 200 and run["status"] == "completed"
    assert len(fresh_store.epochs(run_id)) == 200


def test_two_stores_like_two_processes(tmp_path):
    path = tmp_path / "w.db"
    with Store(path) as trainer, Store(path) as ui:
        run_id = trainer.create_run("a", SPEC)
        assert ui.get_run(run_id)["spec"] == SPEC  # sees the other connection's commit
        ui.update_run(run_id, notes="looks good")
        assert trainer.get_run(run_id)["notes"] == "looks good"
        run = _writer_and_reader(trainer, ui, run_id)
        assert run["epochs_done"] == 200 and run["status"] == "completed"
        assert ui.load_logits(run_id, "val")[0, 0] == 200
        assert ui.integrity_check() == "ok"


def test_two_stores_writing_at_once(tmp_path):
    path = tmp_path / "w.db"
    stores = [Store(path), Store(path)]
    run_ids = [s.create_run(f"r{i}", {}) for i, s in enumerate(stores)]
    errors = []

    def train(store, run_id):
        try:
            for epoch in range(1, 101):
                _epoch(store, run_id, epoch, 0.5)
                store.update_run(run_id, train_seconds=time.perf_counter())
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=train, args=pair) for pair in zip(stores, run_ids)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert [stores[0].get_run(r)["epochs_done"] for r in run_ids] == [100, 100]
    for s in stores:
        s.close()


def test_open_reader_does_not_block_the_writer(tmp_path):
    """WAL: a reader in the middle of a read transaction must not stop the trainer's commits."""
    path = tmp_path / "w.db"
    with Store(path, timeout=0.5) as store:
        run_id = store.create_run("a", {})
        reader = sqlite3.connect(str(path), isolation_level=None)
        reader.execute("BEGIN")
        assert reader.execute("SELECT count(*) FROM epochs").fetchone()[0] == 0  # holds a snapshot
        for epoch in range(1, 4):
            _epoch(store, run_id, epoch, 0.5)  # would raise "database is locked" without WAL
        assert reader.execute("SELECT count(*) FROM epochs").fetchone()[0] == 0  # its snapshot
        reader.execute("COMMIT")
        assert reader.execute("SELECT count(*) FROM epochs").fetchone()[0] == 3
        reader.close()


WRITER_SCRIPT = """
import sys, numpy as np
from store import Store
with Store(sys.argv[1]) as s:
    run_id = int(sys.argv[2])
    s.set_status(run_id, "running")
    for epoch in range(1, 101):
        s.log_epoch(run_id, epoch, lr=0.1, loss=1.0, accuracy=0.5, val_loss=1.0,
                    val_accuracy=epoch / 100, seconds=0.1)
    s.save_logits(run_id, "test", np.ones((50, 10)), np.arange(50) % 10)
    s.set_status(run_id, "completed")
"""


def test_separate_process_writes_while_this_one_reads(tmp_path):
    path = tmp_path / "w.db"
    root = Path(__file__).resolve().parents[1]
    with Store(path) as ui:
        run_id = ui.create_run("a", {})
        env = {**os.environ, "PYTHONPATH": str(root)}
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER_SCRIPT, str(path), str(run_id)],
            cwd=root,
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        while proc.poll() is None:  # poll like the UI does, while the other process commits
            rows = ui.epochs(run_id)
            assert [r["epoch"] for r in rows] == list(range(1, len(rows) + 1))
            ui.list_runs()
        assert proc.returncode == 0, proc.stderr.read()
        proc.stderr.close()
        run = ui.get_run(run_id)
        assert run["status"] == "completed" and run["epochs_done"] == 100
        assert run["best_epoch"] == 100 and ui.load_logits(run_id, "test").shape == (50, 10)


def test_labels_are_stored_once_and_cleaned_up_with_their_last_run(fresh_store):
    labels = np.arange(12) % 3
    first = fresh_store.create_run("a", {})
    second = fresh_store.create_run("b", {})
    for run_id in (first, second):
        fresh_store.save_logits(run_id, "val", np.zeros((12, 3)), labels)
    np.testing.assert_array_equal(fresh_store.load_labels(first, "val"), labels)
    assert fresh_store.load_labels(second, "val").dtype == np.int64

    def count():
        return fresh_store._query("SELECT COUNT(*) AS n FROM labels")[0]["n"]

    assert count() == 1
    fresh_store.delete_run(first)
    assert count() == 1
    fresh_store.delete_run(second)
    assert count() == 0


def test_every_migration_function_is_registered_in_order():
    # a migration whose decorator is lost (a merge) would silently never run: its columns then fail at use
    from store import schema

    defined = sorted(name for name in vars(schema) if re.fullmatch(r"m\d{3}_\w+", name))
    assert defined == schema.MIGRATION_NAMES
