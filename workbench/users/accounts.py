"""The accounts of a shared page: `--auth user:password` (one admin, the person who started the app) and
`--auth-file FILE` (one `user:hash[:role]` a line, hashes from `python -m workbench hash-password`), and the
`User` each action is done as. Without either the page has one user: the OS user who started it, an admin."""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass
from pathlib import Path

from workbench.constants import ROLES, Role
from workbench.errors import UserError
from workbench.users.passwords import hash_password, is_hash, verify_password

HASH_COMMAND = "python -m workbench hash-password"
FORMAT = "user:hash or user:hash:role (role admin or member, default member)"


@dataclass(frozen=True)
class User:
    name: str
    role: Role = Role.MEMBER

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN


def os_user() -> str:
    """Who runs this process (the CLI's runs and audit lines are theirs)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers): the uid says who
        return f"uid-{os.getuid()}"


def check_name(name: str, where: str) -> str:
    if not name or name != name.strip() or any(c.isspace() or c == ":" for c in name):
        raise UserError(f"{where}: the user name {name!r} must be non-empty, without spaces or ':'")
    return name


class Accounts:
    """Name -> (password hash, role). `check(name, password)` is what Gradio's login calls."""

    def __init__(self) -> None:
        self._hashes: dict[str, str] = {}
        self._roles: dict[str, Role] = {}

    def add(self, name: str, password_hash: str, role: Role, where: str) -> None:
        if name in self._hashes:
            raise UserError(f"{where}: the user {name} is given twice; keep one line per user")
        self._hashes[name], self._roles[name] = password_hash, role

    def __len__(self) -> int:
        return len(self._hashes)

    def names(self) -> list[str]:
        return sorted(self._hashes)

    def check(self, name: str, password: str) -> bool:
        """Whether the login is right (an unknown user costs the same hash, so timing tells nothing)."""
        stored = self._hashes.get(name)
        ok = verify_password(password, stored or _DUMMY)
        return ok and stored is not None

    def user(self, name: str | None) -> User:
        """The page's user for Gradio's `request.username` (None: no login on this page, the OS user, admin)."""
        if name is None or not self._hashes:
            return User(os_user(), Role.ADMIN)
        return User(name, self._roles.get(name, Role.MEMBER))


_DUMMY = hash_password("not a password anyone has")


def parse_auth(text: str) -> tuple[str, str]:
    """`--auth user:password` -> (user, password)."""
    user, sep, password = text.partition(":")
    if not sep or not user or not password:
        raise UserError("--auth must be user:password (both non-empty)")
    return check_name(user, "--auth"), password


def load_auth_file(path: str | os.PathLike[str], accounts: Accounts | None = None) -> Accounts:
    """Read `--auth-file` into `accounts` (a new one by default). Every mistake is refused with its line and
    the fix; a plain password is refused without repeating it."""
    accounts = accounts if accounts is not None else Accounts()
    file = Path(path).expanduser()
    if not file.is_file():
        raise UserError(
            f"--auth-file {path} is not a file; write one line per user ({FORMAT}), "
            f"each hash from `{HASH_COMMAND} USER`"
        )
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"--auth-file {path} cannot be read ({exc}); give a readable UTF-8 text file") from None
    before = len(accounts)
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        where = f"--auth-file {path}, line {number}"
        fields = text.split(":")
        if len(fields) not in (2, 3):
            raise UserError(f"{where}: expected {FORMAT}")
        name = check_name(fields[0], where)
        if not is_hash(fields[1]):
            raise UserError(
                f"{where} (user {name}): the second field is not a password hash, and plain passwords are never "
                f"kept on disk; replace the line with the output of `{HASH_COMMAND} {name}`"
            )
        role_text = fields[2].strip() if len(fields) == 3 else Role.MEMBER.value
        if role_text not in ROLES:
            raise UserError(f"{where} (user {name}): unknown role {role_text!r}; choose admin or member")
        accounts.add(name, fields[1], Role(role_text), where)
    if len(accounts) == before:
        raise UserError(f"--auth-file {path} names no user; add lines ({FORMAT}) from `{HASH_COMMAND} USER`")
    return accounts


def build_accounts(auth: str | None, auth_file: str | None) -> Accounts | None:
    """The page's accounts from `--auth` (its user an admin) and `--auth-file`; None: no login."""
    if not auth and not auth_file:
        return None
    accounts = Accounts()
    if auth:
        name, password = parse_auth(auth)
        accounts.add(name, hash_password(password), Role.ADMIN, "--auth")
    if auth_file:
        load_auth_file(auth_file, accounts)
    return accounts
