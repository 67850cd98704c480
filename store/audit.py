"""The audit trail: who did what to the store's runs and ensembles, and when; append-only (the `audit` table's
triggers refuse UPDATE and DELETE, `store.schema.m006_owners_and_audit`). `Store` inherits these methods.

    store.record("alice", AuditAction.CANCEL, "run 3")
    store.audit_rows(limit=200, user="alice")       # newest first
    store.audit_csv(path)                             # every row, oldest first

A row holds a user name, an action (`workbench.constants.AuditAction`), its target ("run 3", "ensemble 2",
a file name) and a detail line; never a password (a failed login records the name typed, and nothing else).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from workbench.constants import AUDIT_ACTIONS
from workbench.errors import choose

from .clock import utc_now
from .rows import StoreRows
from .schema import AUDIT_COLUMNS

MAX_DETAIL = 500  # characters of a detail line: enough for a reason, never a whole traceback


class AuditTrail(StoreRows):
    """Mixed into `Store`, which gives it `_write` (one transaction) and `_query`."""

    def record(self, user: str, action: str, target: str = "", detail: str = "") -> int:
        """Append one action; returns its row id."""
        row = {
            "at": utc_now(),
            "user": str(user or "?"),
            "action": choose("audit action", action, AUDIT_ACTIONS),
            "target": str(target or ""),
            "detail": str(detail or "").replace("\n", " ")[:MAX_DETAIL],
        }
        with self._write() as db:
            pk = db.table("audit").insert(row).last_pk
            assert pk is not None, "an insert into audit sets last_pk"
            return int(pk)

    def audit_rows(self, *, limit: int | None = 500, user: str | None = None, action: str | None = None) -> list[dict]:
        """The newest `limit` actions (None: all), optionally of one user or one action, newest first."""
        where, params = [], []
        if user:
            where.append("user = ?")
            params.append(user)
        if action:
            where.append("action = ?")
            params.append(choose("audit action", action, AUDIT_ACTIONS))
        sql = "SELECT * FROM audit" + (f" WHERE {' AND '.join(where)}" if where else "") + " ORDER BY id DESC"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return self._query(sql, params)

    def audit_users(self) -> list[str]:
        return [r["user"] for r in self._query("SELECT DISTINCT user FROM audit ORDER BY user")]

    def audit_csv(self, path: str | os.PathLike[str], **filters: Any) -> Path:
        """Write the (filtered) trail, oldest first, as CSV with a header row; returns the path."""
        rows = list(reversed(self.audit_rows(limit=None, **filters)))
        out = Path(path)
        with out.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(AUDIT_COLUMNS)
            writer.writerows(_values(rows))
        return out


def _values(rows: list[dict]) -> Iterator[list]:
    for row in rows:
        yield [row[c] for c in AUDIT_COLUMNS]
