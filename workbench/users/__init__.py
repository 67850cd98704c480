"""Who uses a shared workbench: accounts from `--auth`/`--auth-file` with their roles, password hashes, and who
may change what (`permissions`). A leaf beside `store`: it imports only `workbench.errors` and `constants`."""

from workbench.users.accounts import Accounts, User, load_auth_file, os_user
from workbench.users.passwords import hash_password, verify_password
from workbench.users.permissions import check_may_change, may_change

__all__ = [
    "Accounts",
    "User",
    "check_may_change",
    "hash_password",
    "load_auth_file",
    "may_change",
    "os_user",
    "verify_password",
]
