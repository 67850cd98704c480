"""How much the rest of the machine slowed a measurement down, read off the scheduler.

The load average is a poor measure of that on a shared 2-core machine: a one-minute mean that counts the
measuring process's own threads and processes waiting on the disk (a pip install); figures normalised by
it came out about twice too fast. The kernel keeps, for every thread, the CPU time it ran and the time it
spent runnable but waiting for a core (/proc/<pid>/task/<tid>/schedstat). Over the measured work's own
threads, (ran + waited) / ran is how much longer its CPU-bound work took than on cores of its own: a busy
thread given a third of a core shows 3. It counts a wait for the work's own other threads too (more
runnable threads than cores), which an idle machine has as well, so an idle figure brought down by it is
slightly optimistic. The slowdown is said as an effective load, cores x slowdown, the unit
`workbench.jobs.estimate.busy` reads (a load of `cores` or less is an otherwise idle machine).
"""

import os
from pathlib import Path

CORES = os.cpu_count() or 2


def _tasks(pid: int) -> list[tuple[int, int]]:
    """(pid, tid) of every thread of `pid` and of its descendants now alive."""
    found, todo = [], [pid]
    while todo:
        process = todo.pop()
        for task in Path(f"/proc/{process}/task").glob("*"):
            found.append((process, int(task.name)))
            try:
                todo.extend(int(child) for child in (task / "children").read_text().split())
            except OSError:
                continue  # the thread ended while we looked
    return found


def _schedstat(pid: int, tid: int) -> tuple[int, int] | None:
    """(nanoseconds run, nanoseconds waited for a core) of one thread; None once it has ended."""
    try:
        ran, waited, _ = Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()
    except (OSError, ValueError):
        return None
    return int(ran), int(waited)


class Window:
    """`Window(pid).start()`, `sample()` now and then while the work runs (its processes and threads may
    end: each one's last figures are kept), then `stop()`: the effective load the work saw (also `load`).
    `pid`: the work's process (its descendants count too); default this process."""

    def __init__(self, pid: int | None = None):
        self.pid = pid or os.getpid()
        self.load = float(CORES)
        self._first: dict[tuple[int, int], tuple[int, int]] = {}
        self._last: dict[tuple[int, int], tuple[int, int]] = {}

    def _read(self) -> dict[tuple[int, int], tuple[int, int]]:
        return {task: stat for task in _tasks(self.pid) if (stat := _schedstat(*task)) is not None}

    def start(self) -> "Window":
        self._first = self._read()
        self._last = dict(self._first)
        return self

    def sample(self) -> None:
        self._last.update(self._read())

    def stop(self) -> float:
        self.sample()
        ran = waited = 0
        for task, (run_ns, wait_ns) in self._last.items():
            run0, wait0 = self._first.get(task, (0, 0))  # a thread started meanwhile: all of it
            ran, waited = ran + run_ns - run0, waited + wait_ns - wait0
        slowdown = (ran + waited) / ran if ran > 0 else 1.0
        self.load = round(CORES * max(slowdown, 1.0), 2)
        return self.load

    def __enter__(self) -> "Window":
        return self.start()

    def __exit__(self, *_) -> None:
        self.stop()
