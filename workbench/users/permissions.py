"""Who may change what: an admin anything, a member only what they made (`created_by`). Rows made before
owners were recorded (no `created_by`) are the admins'."""

from __future__ import annotations

from workbench.errors import UserError
from workbench.users.accounts import User


def may_change(user: User, owner: str | None) -> bool:
    return user.is_admin or (owner is not None and owner == user.name)


def check_may_change(user: User, owner: str | None, action: str, what: str) -> None:
    """Refuse `user` doing `action` ("cancel", "delete", ...) on `what` ("run 3") that someone else made."""
    if may_change(user, owner):
        return
    made = f"was made by {owner}" if owner else "was made before owners were recorded"
    raise UserError(
        f"{what} {made}: as a member, {user.name} may {action} only what they made; "
        f"ask {owner + ' or ' if owner else ''}an admin to {action} it. Nothing was changed"
    )
