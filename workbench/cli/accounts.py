"""`hash-password` (a line for `--auth-file`) and `audit` (the store's audit trail, as a table or CSV),
registered on the CLI's parser by `add_commands`."""

import getpass
import sys

from workbench.constants import AUDIT_ACTIONS, ROLES, Role
from workbench.errors import UserError
from workbench.users.accounts import FORMAT, check_name
from workbench.users.passwords import hash_password


def add_commands(sub, *, open_store) -> None:
    """Add `hash-password` and `audit`; `open_store(args)` is the CLI's (the --db store)."""
    hashing = sub.add_parser(
        "hash-password",
        help="print an --auth-file line (user:hash:role) for a password typed twice, or read from stdin",
        description=f"Print one line of an --auth-file ({FORMAT}) for USER. The password is asked for twice "
        "on a terminal, or read from the first line of stdin when it is piped; it is never written anywhere.",
    )
    hashing.add_argument("user", help="the login name (no spaces or ':')")
    hashing.add_argument("--role", choices=ROLES, default=Role.MEMBER.value, help="admin or member (default)")
    hashing.set_defaults(handler=_hash_password)

    audit = sub.add_parser("audit", help="who did what: the store's audit trail, newest first, or as CSV")
    audit.add_argument("--user", default=None, help="only this user's actions")
    audit.add_argument("--action", choices=AUDIT_ACTIONS, default=None, help="only this action")
    audit.add_argument("--limit", type=int, default=50, help="how many of the newest rows (default 50)")
    audit.add_argument("--csv", metavar="FILE", default=None, help="write every matching row to FILE instead")
    audit.set_defaults(handler=lambda args: _audit(args, open_store(args)))


def _read_password(user: str) -> str:
    if not sys.stdin.isatty():
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass(f"password for {user}: ")
        if getpass.getpass("again: ") != password:
            raise UserError("the two passwords differ; run the command again")
    if len(password) < 8:
        raise UserError("give a password of at least 8 characters (a long random one for a shared page)")
    return password


def _hash_password(args) -> int:
    user = check_name(args.user, "hash-password")
    print(f"{user}:{hash_password(_read_password(user))}:{args.role}")
    return 0


def _audit(args, store) -> int:
    filters = {"user": args.user, "action": args.action}
    if args.csv:
        path = store.audit_csv(args.csv, **filters)
        print(f"wrote {path}")
        return 0
    if args.limit < 1:
        raise UserError(f"--limit must be 1 or more, not {args.limit}")
    rows = store.audit_rows(limit=args.limit, **filters)
    print(f"{'when (UTC)':23s}  {'user':12s} {'action':16s} {'target':12s} detail")
    for row in rows:
        who, target = row["user"][:12], row["target"][:12]
        print(f"{row['at'][:23]:23s}  {who:12s} {row['action']:16s} {target:12s} {row['detail']}")
    if not rows:
        print("(no actions recorded yet)")
    return 0
