"""One job-running process per store.

Two processes that both run jobs on one store would each mark the other's running runs as
`interrupted` when they start, and could resume the same run twice. So the process that runs jobs
(the app, `python -m workbench train`/`resume`/`train-all`) holds an exclusive lock on
`<store>.lock`; a second one is refused with a message naming the holder. Readers (`runs`, `export`)
need no lock: SQLite's WAL mode lets them read while the holder writes. The operating system drops
the lock when the holder dies, even by SIGKILL, so a crash never leaves the store locked.
"""
import fcntl
import os
from pathlib import Path

from workbench.errors import UserError


class StoreLock:
    def __init__(self, store_path):
        self.path = Path(f"{store_path}.lock")
        self._handle = None

    def acquire(self) -> "StoreLock":
        handle = open(self.path, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise UserError(f"another CIFAR Workbench process (pid {holder}) is running jobs on this store "
                            f"({self.path.with_suffix('')}); use that one, stop it first, or give this one "
                            "another store with --db") from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._handle = handle
        return self

    def fileno(self) -> int:
        """The locked file's descriptor: a child process that inherits it holds the lock while it lives."""
        return self._handle.fileno()

    def release(self) -> None:
        if self._handle is not None:
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None
