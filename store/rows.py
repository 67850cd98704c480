"""`StoreRows`: what the Store's mixins (audit trail, studies, reviews, predictions, ensembles...) use of
`store.Store` itself, declared once here for the type checker: its write transaction, its queries and a run's row.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any

from sqlite_utils import Database


class StoreRows:
    """The base of the Store's mixins; `Store` defines each of these (its lock, its one connection)."""

    def _write(self) -> AbstractContextManager[Database]:  # the Store's: the lock and one BEGIN IMMEDIATE
        raise NotImplementedError

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[dict]:  # the Store's, under its lock
        raise NotImplementedError

    def _run_row(self, run_id: int) -> dict:  # the Store's: the run's row, or UserError("no run N")
        raise NotImplementedError
