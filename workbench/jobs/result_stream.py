"""The app's side of remote jobs' writes: one thread takes the messages every `TrainingJob` sends (a
`ray.util.queue.Queue`) and applies them, in order, with the real Store, the same methods a local job calls.

Each attempt of a run has a number; the thread applies only the messages of the attempt the backend says is
current, so a message a dead attempt left in flight cannot land after its successor started. `fence(run)`
waits until everything queued before it has been applied: the backend calls it when an attempt ends, before
it writes the run's status itself.
"""

from __future__ import annotations

import collections
import threading
import time
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING

from workbench.jobs.remote_job import FORWARDED

if TYPE_CHECKING:
    from ray.util.queue import Queue

    from store import Store

FENCE = "fence"
CHECKPOINT = "checkpoint"


class ResultStream:
    def __init__(
        self,
        store: Store,
        messages: Queue,
        on_checkpoint: Callable[[int, int], None] | None = None,
        poll_seconds: float = 0.2,
    ) -> None:
        """messages: the Ray queue jobs write to; on_checkpoint(run_id, epoch): a checkpoint is in storage
        (the backend mirrors it into the store's run folder)."""
        self.store, self.messages, self.on_checkpoint = store, messages, on_checkpoint
        self.poll_seconds = poll_seconds
        self._current: dict = {}  # run id -> the attempt whose messages apply
        self._errors: dict = {}  # (run id, attempt) -> the first write that failed, as text
        self._fences: dict = {}  # fence token -> Event
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self.applied = 0
        self.epoch_delays: collections.deque[float] = collections.deque(
            maxlen=1000
        )  # seconds from a job's epoch row to the store
        self._thread = threading.Thread(target=self._loop, name="ray-results", daemon=True)
        self._thread.start()

    def expect(self, run_id: int, attempt: int) -> None:
        """Messages of `attempt` of the run apply from now on (older attempts' are dropped)."""
        with self._lock:
            self._current[int(run_id)] = int(attempt)
            self._errors.pop((int(run_id), int(attempt)), None)

    def forget(self, run_id: int) -> None:
        with self._lock:
            self._current.pop(int(run_id), None)

    def error(self, run_id: int, attempt: int) -> str | None:
        with self._lock:
            return self._errors.get((int(run_id), int(attempt)))

    def fence(self, run_id: int, timeout: float = 60.0) -> bool:
        """Wait until every message queued before now has been applied (or dropped)."""
        token = object()
        done = threading.Event()
        with self._lock:
            self._fences[id(token)] = done
        try:
            self.messages.put((int(run_id), -1, FENCE, (id(token),), {}, time.time()))
            return done.wait(timeout)
        finally:
            with self._lock:
                self._fences.pop(id(token), None)

    def close(self, timeout: float = 120.0) -> bool:
        """Stop the thread and wait until it has left Ray: its call in flight returns within `poll_seconds` on
        an idle machine, but seconds to minutes on a loaded one, and a Ray call made after `ray.shutdown()`
        starts a new Ray (auto-init). Returns whether it ended within `timeout`."""
        self._closed.set()
        self._thread.join(timeout=timeout)
        return not self._thread.is_alive()

    # --- the thread ------------------------------------------------------------------------------

    def _loop(self) -> None:
        from ray.util.queue import Empty  # noqa: PLC0415 - Ray: only --ray imports it (a second at import)

        while not self._closed.is_set():
            try:
                batch = [self.messages.get(timeout=self.poll_seconds)]
                if not self._closed.is_set():  # no further Ray call once close() was asked for
                    batch += self.messages.get_nowait_batch(max(0, min(100, self.messages.qsize())))
            except Empty:
                continue
            except Exception:  # the queue's actor is gone (the cluster went away): nothing more will come
                if not self._closed.is_set():
                    traceback.print_exc()
                    self._closed.wait(1.0)
                continue
            for message in batch:
                self._apply(*message)

    def _apply(self, run_id: int, attempt: int, method: str, args: tuple, kwargs: dict, sent_at: float) -> None:
        if method == FENCE:
            with self._lock:
                done = self._fences.get(args[0])
            if done is not None:
                done.set()
            return
        with self._lock:
            if self._current.get(run_id) != attempt or (run_id, attempt) in self._errors:
                return  # a finished or superseded attempt, or one whose writes already failed
        try:
            if method == CHECKPOINT:
                if self.on_checkpoint is not None:
                    self.on_checkpoint(run_id, *args)
            elif method in FORWARDED:
                getattr(self.store, method)(run_id, *args, **kwargs)
                if method == "log_epoch":
                    self.epoch_delays.append(time.time() - sent_at)
            else:
                raise ValueError(f"unknown message {method!r}")
            self.applied += 1
        except Exception as exc:  # the store refused a write (disk full...): the backend fails the run with it
            with self._lock:
                self._errors[(run_id, attempt)] = (
                    f"the app could not record the job's {method}: {type(exc).__name__}: {exc}"
                )
