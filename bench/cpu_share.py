"""How much the rest of the machine slowed a measurement down, by sampling the scheduler's run queue.

The load average is a poor measure of that on a shared 2-core machine: a one-minute mean that counts the
measured work's own threads and processes waiting on the disk (a pip install); figures normalised by it
came out about twice too fast. So a thread samples, a few times a second, how many threads the whole
machine has runnable (/proc/loadavg's fourth field, the run queue now) and how many of them are the
measured work's own (state R in /proc/<pid>/task/*/stat, its descendants included). With `mine` of
`total` runnable threads sharing the cores, the work's threads get cores / max(cores, total) of a core
each, where alone they would get cores / max(cores, mine): the moment's slowdown is the ratio, and the
window's is its mean over the samples when the work had a thread runnable. A wait for the work's own
other threads (more of them runnable than cores) is not counted: an idle machine has it too.
The slowdown is said as an effective load, cores x slowdown, the unit `workbench.jobs.estimate.busy`
reads (a load of `cores` or less is an otherwise idle machine).
"""

import os
import threading
from pathlib import Path

CORES = os.cpu_count() or 2
EVERY = 0.2  # seconds between samples: enough for minutes-long windows, cheap for the cores measured


def _runnable(pid: int, skip: int) -> int:
    """Threads of `pid` and its descendants that are runnable now, but the thread `skip` (the sampler)."""
    count, todo = 0, [pid]
    while todo:
        process = todo.pop()
        for task in Path(f"/proc/{process}/task").glob("*"):
            try:
                state = (task / "stat").read_text().rsplit(")", 1)[1].split()[0]
                todo.extend(int(child) for child in (task / "children").read_text().split())
            except (OSError, IndexError):
                continue  # the thread ended while we looked
            count += state == "R" and int(task.name) != skip
    return count


def _run_queue() -> int:
    """Threads runnable on the whole machine now (the sampler, reading this, among them)."""
    return int(Path("/proc/loadavg").read_text().split()[3].split("/")[0])


class Window:
    """`Window(pid).start()`, the work, then `stop()`: the effective load the work saw (also `load`).
    `pid`: the work's process (its descendants count too); default this process."""

    def __init__(self, pid: int | None = None):
        self.pid = pid or os.getpid()
        self.load = float(CORES)
        self._slowdowns: list[float] = []
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        me = threading.get_native_id()
        while not self._done.wait(EVERY):
            mine = _runnable(self.pid, skip=me)
            if mine:
                total = max(_run_queue() - 1, mine)  # less the sampler itself
                self._slowdowns.append(max(CORES, total) / max(CORES, mine))

    def start(self) -> "Window":
        self._thread.start()
        return self

    def stop(self) -> float:
        self._done.set()
        self._thread.join()
        if self._slowdowns:
            self.load = round(CORES * sum(self._slowdowns) / len(self._slowdowns), 2)
        return self.load

    def __enter__(self) -> "Window":
        return self.start()

    def __exit__(self, *_) -> None:
        self.stop()
