"""Keep the C heap from growing run after run in a long-lived process (glibc only; elsewhere no-ops).

Every job trains in a new thread, and glibc gives busy threads their own malloc arenas (up to 8 per
core); TensorFlow's many short-lived native allocations then fragment each arena, so the process kept
~20 MB more per minute of back-to-back tiny runs in `bench/soak.py` (jobs only) although no Python or
TensorFlow object survived a run. Two arenas cut that to ~7 MB/min, and handing free pages back
after each job does the rest. There is no Python API for either: glibc's `mallopt` and
`malloc_trim` through ctypes.
"""

import ctypes
import ctypes.util
import logging
import os
from typing import Literal

log = logging.getLogger(__name__)

M_ARENA_MAX = -8  # glibc's malloc.h
_libc: ctypes.CDLL | Literal[False] | None = None  # False: not glibc


def _glibc() -> ctypes.CDLL | Literal[False]:
    global _libc
    if _libc is None:
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            _libc = libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else False
        except OSError:
            _libc = False
    return _libc


def limit_arenas(count: int = 2) -> bool:
    """At most `count` malloc arenas for threads started from now on (call it before TensorFlow
    starts its threads, like MALLOC_ARENA_MAX does); returns whether glibc took it. An arena limit the
    user set in MALLOC_ARENA_MAX is left alone."""
    libc = _glibc()
    if not libc or "MALLOC_ARENA_MAX" in os.environ:
        return False
    return bool(libc.mallopt(M_ARENA_MAX, int(count)))


def release_free_memory() -> bool:
    """Give the C heap's free pages back to the system (between jobs); returns whether any was."""
    libc = _glibc()
    return bool(libc and libc.malloc_trim(0))
