"""The audit trail as the page shows it (pure: rows from `store.audit` in, table rows out)."""

from __future__ import annotations

COLUMNS = ("When (UTC)", "User", "Action", "Target", "Detail")
SHOWN = 200  # the newest actions the Audit tab lists; its CSV has them all


def when(at: str) -> str:
    """`2026-12-02T00:41:21.123+00:00` -> `2026-12-02 00:41:21`."""
    return at[:19].replace("T", " ")


def audit_table(rows: list[dict]) -> list[list]:
    return [[when(r["at"]), r["user"], r["action"], r["target"], r["detail"]] for r in rows]


def summary(shown: int, user: str | None, action: str | None) -> str:
    what = " · ".join(f for f in (f"user {user}" if user else "", f"action {action}" if action else "") if f)
    if not shown:
        return f"No actions recorded{' for ' + what if what else ''} yet."
    newest = f"the newest {shown}" if shown >= SHOWN else f"{shown} action(s)"
    return f"{newest}{' for ' + what if what else ''}, newest first; **Download CSV** has every one."
