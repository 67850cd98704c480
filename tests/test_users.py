"""Accounts of a shared page (`workbench.users`): password hashes, the --auth-file and its refusals, who may
change what; the store's append-only audit trail; `hash-password` and `audit` on the command line."""

import csv
import sqlite3
import subprocess
import sys

import pytest
from conftest import ROOT

from store import Store
from workbench.constants import AuditAction, Role
from workbench.errors import UserError
from workbench.users import User, check_may_change, hash_password, load_auth_file, may_change, verify_password
from workbench.users.accounts import build_accounts


def test_a_hash_is_salted_and_checks_only_its_password():
    first, second = hash_password("correct horse"), hash_password("correct horse")
    assert first != second and first.startswith("scrypt$")  # a new salt each time
    assert "correct horse" not in first
    assert verify_password("correct horse", first) and verify_password("correct horse", second)
    assert not verify_password("correct horsf", first)
    assert not verify_password("correct horse", "correct horse")  # a plain password is no hash


def _file(tmp_path, *lines):
    path = tmp_path / "users.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_an_auth_file_gives_each_user_a_role(tmp_path):
    path = _file(
        tmp_path,
        "# the lab",
        f"alice:{hash_password('alice-password')}:admin",
        "",
        f"bob:{hash_password('bob-password')}",
    )
    accounts = load_auth_file(path)
    assert accounts.names() == ["alice", "bob"]
    assert accounts.check("alice", "alice-password") and accounts.check("bob", "bob-password")
    assert not accounts.check("bob", "alice-password") and not accounts.check("carol", "x")
    assert accounts.user("alice") == User("alice", Role.ADMIN)
    assert accounts.user("bob") == User("bob", Role.MEMBER)  # the default role


def test_a_plain_password_in_the_auth_file_is_refused_with_the_fix_and_without_repeating_it(tmp_path):
    path = _file(tmp_path, f"alice:{hash_password('alice-password')}:admin", "bob:hunter2-plain")
    with pytest.raises(UserError) as refused:
        load_auth_file(path)
    text = str(refused.value)
    assert "line 2" in text and "user bob" in text and "not a password hash" in text
    assert "python -m workbench hash-password bob" in text
    assert "hunter2" not in text


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (["alice"], r"line 1: expected user:hash"),
        ([f"alice:{hash_password('pw-pw-pw-pw')}:boss"], r"unknown role 'boss'; choose admin or member"),
        ([f"alice:{hash_password('a-password')}", f"alice:{hash_password('b-password')}"], r"alice is given twice"),
        (["# nobody yet", ""], r"names no user"),
        ([f"al ice:{hash_password('a-password')}"], r"without spaces or ':'"),
    ],
)
def test_every_mistake_in_the_auth_file_is_refused_with_its_line(tmp_path, lines, message):
    with pytest.raises(UserError, match=message):
        load_auth_file(_file(tmp_path, *lines))


def test_auth_and_auth_file_together_and_a_missing_file(tmp_path):
    path = _file(tmp_path, f"bob:{hash_password('bob-password')}")
    accounts = build_accounts("root:root-password", str(path))
    assert accounts.names() == ["bob", "root"] and accounts.user("root").is_admin
    with pytest.raises(UserError, match=r"--auth-file .* is not a file; .*hash-password USER"):
        build_accounts(None, str(tmp_path / "missing.txt"))
    with pytest.raises(UserError, match="user root is given twice"):
        build_accounts("root:x-password", str(_file(tmp_path, f"root:{hash_password('other-pass')}")))
    assert build_accounts(None, None) is None


def test_members_change_only_what_they_made_admins_anything():
    alice, bob, admin = User("alice"), User("bob"), User("root", Role.ADMIN)
    assert may_change(alice, "alice") and not may_change(bob, "alice") and may_change(admin, "alice")
    assert not may_change(alice, None) and may_change(admin, None)  # rows from before owners: the admins'
    with pytest.raises(UserError) as refused:
        check_may_change(bob, "alice", "cancel", "run 3")
    assert str(refused.value) == (
        "run 3 was made by alice: as a member, bob may cancel only what they made; ask alice or an admin to "
        "cancel it. Nothing was changed"
    )


def test_the_audit_trail_is_append_only_in_the_file_itself(store):
    first = store.record("alice", AuditAction.QUEUE, "run 1", "lenet")
    store.record("bob", AuditAction.CANCEL, "run 1", "while running")
    store.record("mallory", AuditAction.LOGIN_FAILED, "page", "wrong password")
    assert [(r["user"], r["action"]) for r in store.audit_rows()] == [
        ("mallory", "login failed"),
        ("bob", "cancel"),
        ("alice", "queue"),
    ]
    assert [r["target"] for r in store.audit_rows(user="bob")] == ["run 1"]
    assert [r["user"] for r in store.audit_rows(action=AuditAction.QUEUE)] == ["alice"]
    with pytest.raises(UserError, match="unknown audit action"):
        store.record("alice", "rename", "run 1")
    conn = sqlite3.connect(store.path)  # not through the Store: any writer of the file is refused
    for sql in ("UPDATE audit SET user = 'eve' WHERE id = ?", "DELETE FROM audit WHERE id = ?"):
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute(sql, [first])
    conn.close()
    assert len(store.audit_rows()) == 3


def test_the_audit_trail_as_csv_oldest_first(store, tmp_path):
    store.record("alice", AuditAction.QUEUE, "run 1", "a detail, with a comma")
    store.record("bob", AuditAction.DELETE, "run 1", "lenet")
    with (store.audit_csv(tmp_path / "audit.csv")).open() as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["id", "at", "user", "action", "target", "detail"]
    assert [r[2:] for r in rows[1:]] == [
        ["alice", "queue", "run 1", "a detail, with a comma"],
        ["bob", "delete", "run 1", "lenet"],
    ]


def _cli(*argv, stdin=""):
    return subprocess.run(
        [sys.executable, "-m", "workbench", *argv], input=stdin, capture_output=True, text=True, cwd=ROOT, timeout=120
    )


def test_hash_password_writes_a_line_the_auth_file_takes_and_audit_lists_the_trail(tmp_path):
    made = _cli("hash-password", "carol", "--role", "admin", stdin="a-long-password\n")
    assert made.returncode == 0, made.stderr
    line = made.stdout.strip()
    assert line.startswith("carol:scrypt$") and line.endswith(":admin") and "a-long-password" not in line
    accounts = load_auth_file(_file(tmp_path, line))
    assert accounts.check("carol", "a-long-password") and accounts.user("carol").is_admin
    short = _cli("hash-password", "carol", stdin="short\n")
    assert short.returncode == 2 and "at least 8 characters" in short.stderr and not short.stdout

    db = tmp_path / "w.db"
    with Store(db) as store:
        store.record("alice", AuditAction.QUEUE, "run 1", "lenet")
        store.record("bob", AuditAction.EXPORT, "leaderboard", "3 rows as CSV")
    listed = _cli("audit", "--db", str(db))
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert "bob" in lines[1] and "export" in lines[1] and "alice" in lines[2] and "queue" in lines[2]
    exported = _cli("audit", "--db", str(db), "--user", "alice", "--csv", str(tmp_path / "a.csv"))
    assert exported.returncode == 0 and len((tmp_path / "a.csv").read_text().splitlines()) == 2
