"""Optuna studies on the job queue: a thread asks Optuna for trials, queues each as a run tagged `study:NAME`,
reports every epoch's validation accuracy to Optuna as the trial's intermediate value, passes the pruner's
decision to the run (a verdict in `study_trials` the run waits for at each epoch's end, so a pruned run stops at
the epoch judged; `JobQueue.prune` too, for a run that cannot read the store), and tells Optuna how each run
ended. The study lives in `<store>-optuna.db` (Optuna's schema; `optuna-dashboard` opens it), named in the
store (`store.studies`) with its settings, so any later process can continue it.

    driver = StudyDriver.create(store, queue, search)   # validated; the study's rows written
    driver.start(); driver.wait()                        # or StudyDriver.resume(store, queue, name)

Budget: `trials` (the trials that got a run) and/or `timeout` (seconds this study has been driven, summed over
processes); once spent no trial is asked, and those running finish and are told.

The restart rule (`resume`, also what the app does at start for every study still searching): each trial Optuna
still has running is the same trial when the study continues. Its run, interrupted or cancelled when the last
process stopped, resumes from its last checkpoint (its epochs already reported stay reported); a run that had
ended is told as it ended (completed: its final validation accuracy; pruned: pruned; failed, diverged: failed);
a trial asked but never queued (the process stopped in between) is told failed and not counted. No trial is
asked twice and no run is trained twice.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import optuna
from optuna.trial import TrialState

from store import utc_now
from workbench.constants import ACTIVE_STATUSES, AuditAction, RunStatus, StudyState, TrialVerdict
from workbench.errors import UserError, failure_message
from workbench.jobs.study_setup import distributions, open_study
from workbench.specs.search import Search
from workbench.users import os_user

if TYPE_CHECKING:
    from store import Store
    from workbench.jobs.queue import JobQueue

POLL_SECONDS = 0.5
NOT_QUEUED = "the process stopped after Optuna asked this trial and before its run was queued"
MAX_REFUSED = 3  # trials in a row whose run the queue refused: the study stops with the reason
_DRIVING: dict[str, StudyDriver] = {}  # "<store path>:<study>" -> its driver in this process
_DRIVING_LOCK = threading.Lock()


@dataclass
class LiveTrial:
    trial: optuna.Trial
    run_id: int
    reported: int = 0  # the last epoch reported to Optuna
    prune_sent: bool = False


class StudyDriver:
    def __init__(
        self, store: Store, queue: JobQueue, search: Search, *, tags: Iterable[str] = (), by: str | None = None
    ) -> None:
        self.store, self.queue, self.search = store, queue, search
        self.by = by or os_user()  # who started the study: its trials are theirs (runs.created_by)
        self.tags = list(dict.fromkeys([*tags, search.tag]))
        self.live: dict[int, LiveTrial] = {}
        self.resumed: list[int] = []  # runs resumed by the restart rule (read by tests and the CLI)
        self.poll = POLL_SECONDS
        self.done = threading.Event()
        self._stopping = threading.Event()  # the user stopped it: no new trial, the running ones finish
        self._halt = threading.Event()  # the process is leaving: stop at once, tell nothing more
        self._thread: threading.Thread | None = None
        self._key = f"{store.path.resolve()}:{search.name}"
        self._continuing = False
        self._study: optuna.Study | None = None
        self.distributions: dict = {}
        self.last_refusal = ""

    # --- creating, continuing, stopping -------------------------------------------------------------
    @classmethod
    def create(
        cls, store: Store, queue: JobQueue, search: Search, *, tags: Iterable[str] = (), by: str | None = None
    ) -> StudyDriver:
        """Check the search (the space on the base run, the sampler), then write the study's row and create
        its Optuna study, started by `by` (default: the OS user). Nothing is written when it is refused."""
        search.check(available_gpus=len(queue.gpus))
        by = by or os_user()
        settings = {**search.to_settings(), "by": by}
        store.create_study(search.name, settings, state=StudyState.SEARCHING, created_at=_now())
        store.record(by, AuditAction.START_STUDY, f"study {search.name}", str(settings["space"]))
        driver = cls(store, queue, search, tags=tags, by=by)
        open_study(store, search, continuing=False)
        return driver

    @classmethod
    def resume(cls, store: Store, queue: JobQueue, name: str) -> StudyDriver:
        """The stored study `name`, to continue by the restart rule (module docstring)."""
        row = store.get_study(name)
        driver = cls(store, queue, Search.from_settings(name, row["settings"]), by=row["settings"].get("by"))
        driver._continuing = True
        if row["state"] != StudyState.SEARCHING:
            store.update_study(name, state=StudyState.SEARCHING, finished_at=None, error=None)
        return driver

    def start(self) -> StudyDriver:
        with _DRIVING_LOCK:
            other = _DRIVING.get(self._key)
            if other is not None and not other.done.is_set():
                raise UserError(f"study {self.search.name} is already searching in this process")
            _DRIVING[self._key] = self
        self._thread = threading.Thread(target=self._drive, name=f"study-{self.search.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Ask no more trials; those running finish and are told; the study is then *stopped*."""
        self._stopping.set()

    def halt(self, timeout: float = 10.0) -> None:
        """The process is leaving: stop driving now. Running trials stay running in Optuna, their runs are
        cancelled by the queue's shutdown, and the next `resume` continues them."""
        self._halt.set()
        self.done.wait(timeout)

    def wait(self, timeout: float | None = None) -> bool:
        return self.done.wait(timeout)

    # --- the loop ------------------------------------------------------------------------------------
    def _drive(self) -> None:
        name = self.search.name
        started, used = time.monotonic(), float(self.store.get_study(name)["seconds"] or 0.0)
        saved = started
        try:
            self._study = open_study(self.store, self.search, continuing=True)
            self.distributions = distributions(self.search.space)
            if self._continuing:
                self._recover()
            refused = 0
            while not self._halt.is_set():
                self._poll()
                now = time.monotonic()
                while self._budget_left(used + now - started) and len(self.live) < self.width():
                    refused = 0 if self._start_trial() else refused + 1
                    if refused >= MAX_REFUSED:
                        raise UserError(f"{MAX_REFUSED} trials in a row were refused; the last: {self.last_refusal}")
                if not self.live and not self._budget_left(used + now - started):
                    self.store.update_study(
                        name,
                        state=StudyState.STOPPED if self._stopping.is_set() else StudyState.FINISHED,
                        finished_at=_now(),
                        seconds=used + now - started,
                    )
                    break
                if now - saved > 2.0:
                    self.store.update_study(name, seconds=used + now - started)
                    saved = now
                self._halt.wait(self.poll)
            else:
                self.store.update_study(name, seconds=used + time.monotonic() - started)
        except BaseException as exc:  # the study carries the reason; its trials stay as Optuna has them
            traceback.print_exc()
            try:
                self.store.update_study(name, state=StudyState.STOPPED, error=failure_message(exc), finished_at=_now())
            except Exception:
                traceback.print_exc()
        finally:
            self.done.set()

    @property
    def study(self) -> optuna.Study:
        assert self._study is not None, "the study opens when its thread starts"
        return self._study

    def width(self) -> int:
        """Trials at once: as asked, else one per GPU of this machine (one on a CPU), two on a cluster."""
        if self.search.parallel:
            return self.search.parallel
        if not self.queue.backend.leases_devices:
            return 2
        return max(1, len(self.queue.gpus))

    def counted(self) -> int:
        return len(self.store.study_trials(self.search.name))

    def _budget_left(self, seconds: float) -> bool:
        if self._stopping.is_set() or self._halt.is_set():
            return False
        if self.search.timeout and seconds >= self.search.timeout:
            return False
        return self.counted() < self.search.budget()

    def _start_trial(self) -> bool:
        """Ask a trial and queue its run; False when the queue refused it (the trial is told failed)."""
        trial = self.study.ask(self.distributions)
        spec = self.search.space.apply(self.search.base, trial.params).replace(
            name=self.search.trial_name(trial.number)
        )
        shown = ", ".join(f"{k}={_shown(v)}" for k, v in trial.params.items())
        try:
            run_id = self.queue.submit(
                spec, tags=self.tags, notes=f"trial {trial.number} of study {self.search.name}: {shown}", by=self.by
            )
        except UserError as exc:
            self.last_refusal = str(exc)
            trial.set_user_attr("error", str(exc))
            self.study.tell(trial, state=TrialState.FAIL)
            return False
        self.store.add_study_trial(self.search.name, trial.number, run_id)
        trial.set_user_attr("run", run_id)
        self.live[trial.number] = LiveTrial(trial, run_id)
        return True

    def _poll(self) -> None:
        for number, live in list(self.live.items()):
            run = self.store.get_run(live.run_id)
            fresh = self._report(live)
            if run["status"] in ACTIVE_STATUSES:
                if fresh and not live.prune_sent:
                    live.prune_sent = live.trial.should_prune()
                    # The run waits for this verdict at the epoch's end (workbench.training.verdict); the
                    # queue's prune is the fallback where it cannot read the store (a Ray node) or gave up.
                    verdict = TrialVerdict.PRUNE if live.prune_sent else TrialVerdict.CONTINUE
                    self.store.judge_trial(live.run_id, live.reported, verdict)
                    if live.prune_sent:
                        try:
                            self.queue.prune(live.run_id)
                        except UserError:  # it ended meanwhile: the next poll tells it
                            pass
                continue
            self._tell(number, live, run)

    def _report(self, live: LiveTrial) -> bool:
        """Report the run's new epochs' validation accuracy; whether there were any."""
        fresh = False
        for row in self.store.epochs(live.run_id):
            if row["epoch"] > live.reported and row["val_accuracy"] is not None:
                live.trial.report(float(row["val_accuracy"]), int(row["epoch"]))
                live.reported, fresh = int(row["epoch"]), True
        return fresh

    def _tell(self, number: int, live: LiveTrial, run: dict) -> None:
        status = run["status"]
        if status == RunStatus.COMPLETED and run["final_val_accuracy"] is not None:
            self.study.tell(number, float(run["final_val_accuracy"]))
        elif status == RunStatus.PRUNED:
            self.study.tell(number, state=TrialState.PRUNED)
        else:
            why = run["error"] or (
                f"its run was {status}" if status != RunStatus.CANCELLED else "its run was cancelled"
            )
            live.trial.set_user_attr("error", str(why)[:500])
            self.study.tell(number, state=TrialState.FAIL)
        self.store.judge_trial(live.run_id, live.reported, TrialVerdict.TOLD)
        del self.live[number]

    # --- the restart rule ------------------------------------------------------------------------------
    def _recover(self) -> None:
        """Take up the trials Optuna still has running (the module docstring's rule)."""
        runs = self.store.study_trials(self.search.name)
        by_name = {
            r["name"]: r["id"]
            for r in self.store.list_runs(include_archived=True)
            if self.search.tag in (r["tags"] or ())
        }
        storage = optuna.storages.RDBStorage(self.store.optuna_url())
        study_id = storage.get_study_id_from_name(self.search.name)
        for frozen in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, frozen.number)
            trial = optuna.Trial(self.study, trial_id)
            run_id = runs.get(frozen.number) or by_name.get(self.search.trial_name(frozen.number))
            if run_id is None:
                trial.set_user_attr("error", NOT_QUEUED)
                self.study.tell(frozen.number, state=TrialState.FAIL)
                continue
            self.store.add_study_trial(self.search.name, frozen.number, run_id)
            live = LiveTrial(trial, run_id, reported=max(frozen.intermediate_values, default=0))
            self.live[frozen.number] = live
            status = self.store.get_run(run_id)["status"]
            if status in (RunStatus.INTERRUPTED, RunStatus.CANCELLED) and run_id not in self.queue.active():
                self.queue.resume(run_id, by=self.by)
                self.resumed.append(run_id)


def resume_searching(store: Store, queue: JobQueue) -> list[StudyDriver]:
    """Continue every study the store has still searching (the app does this at start); started drivers."""
    drivers = []
    for row in store.list_studies():
        if row["state"] == StudyState.SEARCHING:
            try:
                drivers.append(StudyDriver.resume(store, queue, row["name"]).start())
            except UserError as exc:
                store.update_study(row["name"], state=StudyState.STOPPED, error=str(exc))
    return drivers


def driving(store: Store, name: str) -> StudyDriver | None:
    """This process's live driver of study `name`, if any."""
    with _DRIVING_LOCK:
        driver = _DRIVING.get(f"{store.path.resolve()}:{name}")
    return driver if driver is not None and not driver.done.is_set() else None


def _shown(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _now() -> str:
    return utc_now()
