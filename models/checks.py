"""Argument checkers of the model builders, and the one checker of each option families share.

A checker takes the argument's name and value and returns the value to build with (an int, float or
tuple), or raises `workbench.errors.UserError` with a message that says what is allowed. Checkers
with settings are bound with `functools.partial`, e.g. `partial(check_fraction, high_closed=True)`.

`register_family` (registry.py) wraps every builder so that each argument passes its checker before
the builder runs: the checker of `SHARED_CHECKS` for an option several families share (dropout means
the same everywhere), else the family's own from `register_family(checks=...)`. Builders therefore
hold no checks except those that tie options together (DenseNet's depth depends on `bottleneck`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from workbench.errors import UserError, choose

Checker = Callable[[str, Any], Any]


def check_num_classes(name: str, value) -> int:
    """Return `value` as int; it must be an integer >= 2."""
    if isinstance(value, bool) or not _is_int(value) or value < 2:
        raise UserError(f"{name} must be an integer >= 2, got {value!r}")
    return int(value)


def check_input_shape(name: str, value, min_size: int = 8) -> tuple[int, int, int]:
    """Return `value` as an (H, W, C) tuple; H and W must be >= `min_size` and C >= 1."""
    message = (
        f"{name} must be (height, width, channels) with height and width >= {min_size} and channels >= 1, got {value!r}"
    )
    try:
        shape = tuple(value)
    except TypeError:
        raise UserError(message) from None
    if len(shape) != 3 or not all(_is_int(v) and not isinstance(v, bool) for v in shape):
        raise UserError(message)
    h, w, c = (int(v) for v in shape)
    if h < min_size or w < min_size or c < 1:
        raise UserError(message)
    return h, w, c


def check_positive_int(name: str, value) -> int:
    """Return `value` as int; it must be an integer >= 1."""
    if isinstance(value, bool) or not _is_int(value) or value < 1:
        raise UserError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def check_positive(name: str, value) -> float:
    """Return `value` as float; it must be a number > 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise UserError(f"{name} must be a positive number, got {value!r}")
    return float(value)


def check_non_negative(name: str, value) -> float:
    """Return `value` as float; it must be a number >= 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise UserError(f"{name} must be a number >= 0, got {value!r}")
    return float(value)


def check_fraction(name: str, value, *, low_open: bool = False, high_closed: bool = False) -> float:
    """Return `value` as float within [0, 1) (or (0, 1] / [0, 1] as asked)."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok:
        ok = (value > 0 if low_open else value >= 0) and (value <= 1 if high_closed else value < 1)
    if not ok:
        interval = f"{'(' if low_open else '['}0, 1{']' if high_closed else ')'}"
        raise UserError(f"{name} must be a number in {interval}, got {value!r}")
    return float(value)


def check_bool(name: str, value) -> bool:
    """Return `value`; it must be True or False."""
    if not isinstance(value, bool):
        raise UserError(f"{name} must be true or false, got {value!r}")
    return value


def check_choice(name: str, value, choices) -> str:
    """Return `value`; it must be one of `choices` (the message lists them)."""
    return choose(name, value, choices)


def check_depth(name: str, value, *, step: int, offset: int, family: str, examples=(1, 2, 3)) -> int:
    """Return `value` as int; it must be step*n + offset with n >= 1 (n = units per stage).

    `family`: the family's name as the message writes it; `examples`: the n whose depths it lists.
    """
    if isinstance(value, bool) or not _is_int(value) or value < step + offset or (value - offset) % step:
        examples = ", ".join(str(step * n + offset) for n in examples)
        raise UserError(f"{family} {name} must be {step}n+{offset} with n >= 1 ({examples}, ...), got {value!r}")
    return int(value)


# The options that mean the same in every family that has them, each checked here and only here.
# (`width`, `widen_factor` and `depth` are not: their kinds and allowed values differ by family.)
SHARED_CHECKS: dict[str, Checker] = {
    "num_classes": check_num_classes,
    "weight_decay": check_non_negative,
    "dropout": check_fraction,
    "batch_norm": check_bool,
    "se": check_bool,
    "se_reduction": check_positive_int,
    "base_width": check_positive_int,
}


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer))
