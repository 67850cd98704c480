"""One job-running process per store.

Two processes that both run jobs on one store would each mark the other's running runs as
`interrupted` when they start, and could resume the same run twice. So the process that runs jobs
(the app, `python -m workbench train`/`resume`/`train-all`) holds an exclusive lock on
`<store>.lock`; a second one is refused with a message naming the holder. Readers (`runs`, `export`)
need no lock: SQLite's WAL mode lets them read while the holder writes. The operating system drops
the lock when the holder dies, even by SIGKILL, so a crash never leaves the store locked; so a reader
can tell whether anyone is still running the store's jobs (`held`).
"""

import fcntl
import os
import time
from pathlib import Path
from typing import IO

from workbench.errors import UserError

ACQUIRE_PATIENCE = 0.5  # seconds: a reader's probe (`held`) holds the lock for microseconds


class StoreLock:
    def __init__(self, store_path: Path | str) -> None:
        self.path = Path(f"{store_path}.lock")
        self._handle: IO[str] | None = None

    def acquire(self) -> "StoreLock":
        handle = open(self.path, "a+")  # noqa: SIM115 - kept open while the lock is held (closed by `release`)
        if not _try_lock(handle, fcntl.LOCK_EX, patience=ACQUIRE_PATIENCE):
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise UserError(
                f"another CIFAR Workbench process (pid {holder}) is running jobs on this store "
                f"({self.path.with_suffix('')}); use that one, stop it first, or give this one "
                "another store with --db"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._handle = handle
        return self

    def fileno(self) -> int:
        """The locked file's descriptor: a child process that inherits it holds the lock while it lives."""
        assert self._handle is not None, "fileno() of a lock not acquired"
        return self._handle.fileno()

    def release(self) -> None:
        if self._handle is not None:
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None


def held(store_path: Path | str) -> bool:
    """Whether a process holds `<store>.lock`, i.e. runs this store's jobs (an app, a training command,
    or a job process one of them left behind). Probed with a shared lock taken and dropped at once;
    True where it cannot tell, so runs then read as stored."""
    try:
        handle = open(f"{store_path}.lock")  # noqa: SIM115 - closed by the `with` below, past the open's own errors
    except FileNotFoundError:  # no job runner ever opened this store
        return False
    except OSError:
        return True
    with handle:
        if not _try_lock(handle, fcntl.LOCK_SH):
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False


def _try_lock(handle: IO[str], mode: int, patience: float = 0.0) -> bool:
    deadline = time.monotonic() + patience
    while True:
        try:
            fcntl.flock(handle, mode | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)
