"""The one exception type that reaches users.

Anything a user can get wrong (a name, a number, a path, a file) raises `UserError` with a message
that says what is allowed or what to do. The UI and CLI show its text as is; any other exception is
a bug and is shown with its traceback in the run's error field.
"""

import traceback


class UserError(ValueError):
    """Bad input from a user: the message says what is wrong and what is allowed."""


def choose(kind: str, name: str, allowed) -> str:
    """Return `name` if it is one of `allowed`, else raise a UserError listing the choices."""
    allowed = list(allowed)
    if name in allowed:
        return name
    raise UserError(f"unknown {kind} {name!r}; choose one of: {', '.join(allowed)}")


def failure_message(exc: BaseException) -> str:
    """A failed run's error text: a user's mistake or an OS error as its message, anything else (a bug)
    with the end of its traceback."""
    if isinstance(exc, (UserError, OSError)):
        return str(exc)
    return f"{type(exc).__name__}: {exc}\n\n{''.join(traceback.format_exception(exc)[-6:])}"
