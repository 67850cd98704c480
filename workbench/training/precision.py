"""Build models under a precision policy without disturbing other jobs in the same process."""

import threading
from collections.abc import Callable
from typing import TypeVar

import keras

T = TypeVar("T")

# Mixed-precision policies are process-global in Keras; a layer takes the policy in force when it is
# built, so building under this lock lets side-by-side jobs (threads) use different precisions.
_policy_lock = threading.Lock()


def under_policy(precision: str, build: Callable[[], T]) -> T:
    """build() with the Keras dtype policy `precision` in force, restoring the previous one after."""
    with _policy_lock:
        previous = keras.config.dtype_policy()
        keras.config.set_dtype_policy(precision)
        try:
            return build()
        finally:
            keras.config.set_dtype_policy(previous)
