"""Optuna studies on the job queue (workbench.jobs.study), with real training of tiny models on synthetic data into a
real store and a real Optuna file: a study runs to its budget, prunes a trial whose learning rate cannot learn (the
run stops after an epoch, *pruned*, its checkpoint kept and resumable by hand), the Optuna file lists the same trials
as the store, a failing trial is told failed with its error, and a killed app's study continues without a trial lost
or run twice (the restart rule)."""

import os
import signal
import subprocess
import sys

import optuna
import pytest
from conftest import ROOT, wait_until
from optuna.trial import TrialState

from store import Store
from workbench.cli.main import main
from workbench.constants import AuditAction, RunStatus, StudyState
from workbench.errors import UserError
from workbench.jobs.queue import JobQueue
from workbench.jobs.study import StudyDriver, driving
from workbench.specs.run import RunSpec
from workbench.specs.search import Search
from workbench.training.checkpoint import checkpoint_epoch
from workbench.views import studies as views

BASE = RunSpec(
    model="lenet",
    dataset="synthetic",
    dataset_options={"n_train": 600, "n_test": 100},
    batch_size=50,
    epochs=4,
    schedule="cosine",
    augment=(),
)
STATES = {
    RunStatus.COMPLETED: TrialState.COMPLETE,
    RunStatus.PRUNED: TrialState.PRUNED,
    RunStatus.FAILED: TrialState.FAIL,
}


@pytest.fixture
def queue(store):
    """Jobs in threads of the test process (the child processes' path: the killed-app test below)."""
    q = JobQueue(store, devices=[], isolate=False)
    yield q
    q.shutdown()


def optuna_trials(store, name):
    return optuna.load_study(study_name=name, storage=store.optuna_url()).get_trials()


def test_a_study_runs_to_its_budget_and_prunes_the_trial_that_cannot_learn(store, queue):
    search = Search.from_values("lr", BASE, space="learning_rate=log(1e-6,0.2)", trials=3, pruner="median", seed=0)
    driver = StudyDriver.create(store, queue, search, by="alice")
    # The first two trials are fixed through Optuna's own queue: one that learns, then one whose rate cannot.
    study = optuna.load_study(study_name="lr", storage=store.optuna_url())
    study.enqueue_trial({"learning_rate": 0.05})
    study.enqueue_trial({"learning_rate": 1e-6})
    driver.poll = 0.1
    driver.start()
    assert driving(store, "lr") is driver
    with pytest.raises(UserError, match="already searching"):
        StudyDriver.resume(store, queue, "lr").start()
    assert driver.wait(300)
    row = store.get_study("lr")
    assert row["state"] == StudyState.FINISHED and row["error"] is None and row["seconds"] > 0

    runs = {r["id"]: r for r in store.list_runs()}
    # The trials are their starter's runs (a member may cancel them), the start in the audit trail.
    assert {r["created_by"] for r in runs.values()} == {"alice"}
    started = store.audit_rows(action=AuditAction.START_STUDY)
    assert [(a["user"], a["target"]) for a in started] == [("alice", "study lr")]
    trials = optuna_trials(store, "lr")
    assert len(trials) == 3 == len(runs) and store.study_trials("lr") == {t.number: t.user_attrs["run"] for t in trials}
    for trial in trials:  # the Optuna file and the store tell the same story
        run = runs[trial.user_attrs["run"]]
        assert run["tags"] == ["study:lr"] and run["name"] == f"lr-t{trial.number}"
        assert trial.state == STATES[run["status"]], (trial, run["status"], run["error"])
        assert run["spec"]["learning_rate"] == pytest.approx(trial.params["learning_rate"])
        logged = {e["epoch"]: e["val_accuracy"] for e in store.epochs(run["id"])}
        assert trial.intermediate_values == pytest.approx(logged)  # every epoch's validation accuracy, reported
    good, hopeless = (runs[trials[i].user_attrs["run"]] for i in (0, 1))
    assert good["status"] == RunStatus.COMPLETED and trials[0].value == pytest.approx(good["final_val_accuracy"])
    assert hopeless["status"] == RunStatus.PRUNED and hopeless["error"] is None
    assert 1 <= hopeless["epochs_done"] < BASE.epochs  # stopped after an epoch, which was kept whole
    # ... the very epoch the median pruner judged, not one later (the run waits for the verdict): the first
    # at which its best value so far is below the learning trial's value at that epoch.
    mine, theirs = trials[1].intermediate_values, trials[0].intermediate_values
    judged = min(e for e in mine if max(mine[s] for s in mine if s <= e) < theirs[e])
    assert hopeless["epochs_done"] == judged
    assert checkpoint_epoch(store.run_dir(hopeless["id"])) == hopeless["epochs_done"]

    # The views: the trials table, the best trial, Train the best as a sweep of its settings over seeds.
    table = views.trial_rows(store, "lr")
    assert [r["State"] for r in table][:2] == ["complete", "pruned"] and table[1]["Run status"] == RunStatus.PRUNED
    best = views.best(store, "lr")
    assert best is not None and best["value"] == max(t.value for t in trials if t.state == TrialState.COMPLETE)
    sweep = views.best_as_sweep(store, "lr", seeds="0-1", epochs=6)
    assert [s.epochs for s in sweep.specs()] == [6, 6] and [s.seed for s in sweep.specs()] == [0, 1]
    assert sweep.specs()[0].learning_rate == pytest.approx(best["params"]["learning_rate"])
    assert views.figure(store, "lr", "history") is not None

    # A pruned run is resumed by hand like a cancelled one: from its checkpoint to its last epoch.
    queue.resume(hopeless["id"])
    assert queue.wait(hopeless["id"], timeout=300)
    resumed = store.get_run(hopeless["id"])
    assert resumed["status"] == RunStatus.COMPLETED and resumed["epochs_done"] == BASE.epochs


def test_a_failing_trial_is_told_failed_with_its_error(store, queue):
    # lenet takes no option "depth": the spec check passes names it cannot judge without the model to the job,
    # which fails the run; the trial is failed in Optuna with the run's error, and the study goes on.
    search = Search.from_values("bad", BASE.replace(epochs=1), space="batch_size=[50,700]", sampler="grid", trials=2,
                                pruner="none", seed=1)  # fmt: skip
    driver = StudyDriver.create(store, queue, search)
    driver.poll = 0.1
    assert driver.start().wait(300)
    trials = {t.params["batch_size"]: t for t in optuna_trials(store, "bad")}
    assert trials[50].state == TrialState.COMPLETE
    assert trials[700].state == TrialState.FAIL and "batch" in trials[700].user_attrs["error"]
    failed = store.get_run(trials[700].user_attrs["run"])
    assert failed["status"] == RunStatus.FAILED and failed["error"] == trials[700].user_attrs["error"]


def test_a_killed_app_continues_its_study_without_losing_or_repeating_a_trial(tmp_path, capsys):
    db = tmp_path / "w.db"
    cmd = [sys.executable, "-m", "workbench", "--db", str(db), "search", "k", "--space", "learning_rate=log(0.01,0.2)",
           "--trials", "2", "--pruner", "none", "--sampler-seed", "0", "--model", "lenet", "--dataset", "synthetic",
           "--dataset-options", "n_train=600,n_test=100", "--batch-size", "50", "--epochs", "3", "--augment", "none",
           "--schedule", "cosine"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    process = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_until(lambda: _epochs_of_first_run(db) >= 1, "an epoch of the first trial", timeout=240, every=0.2)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    with Store(db) as store:
        assert store.get_study("k")["state"] == StudyState.SEARCHING
        [running] = optuna_trials(store, "k")
        assert running.state == TrialState.RUNNING and store.study_trials("k") == {0: 1}
    # Continue it, as `workbench search k` does after a restart: the same trial, the same run, resumed.
    with Store(db) as store:  # the killed app's job notices and exits, letting the store's job lock go
        wait_until(lambda: not store.runner_alive(), "the orphaned job to exit", timeout=60, every=0.2)
    assert main(["--db", str(db), "search", "k"]) == 0
    out = capsys.readouterr().out
    assert "resumed run 1" in out
    with Store(db) as store:
        trials = optuna_trials(store, "k")
        runs = store.list_runs()
        assert [t.number for t in trials] == [0, 1] and [r["id"] for r in runs] == [1, 2]
        assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.COMPLETE]
        assert store.study_trials("k") == {0: 1, 1: 2} and [r["name"] for r in runs] == ["k-t0", "k-t1"]
        first = store.get_run(1)
        assert first["attempt"] == 2 and [e["epoch"] for e in store.epochs(1)] == [1, 2, 3]
        assert trials[0].params == {"learning_rate": pytest.approx(first["spec"]["learning_rate"])}
        assert store.get_study("k")["state"] == StudyState.FINISHED


def _epochs_of_first_run(db):
    if not db.exists():
        return 0
    with Store(db) as store:
        runs = store.list_runs()
        return runs[0]["epochs_done"] if runs else 0


def test_the_time_budget_stops_asking_and_lets_the_running_trial_finish(store, queue):
    search = Search.from_values("t", BASE.replace(epochs=2), space="learning_rate=log(0.01,0.2)", trials=5,
                                timeout="1s", pruner="none")  # fmt: skip
    driver = StudyDriver.create(store, queue, search)
    driver.poll = 0.1
    assert driver.start().wait(300)
    [trial] = optuna_trials(store, "t")  # asked at once; by its end the second was gone
    assert trial.state == TrialState.COMPLETE and store.get_run(trial.user_attrs["run"])["epochs_done"] == 2
    row = store.get_study("t")
    assert row["state"] == StudyState.FINISHED and row["seconds"] >= 1


def test_the_app_at_start_continues_the_studies_still_searching_and_no_other(store, queue):
    from workbench.jobs.study import resume_searching

    for name in ("left", "stopped"):  # created as a start would, then the process went away
        StudyDriver.create(store, queue, Search.from_values(name, BASE.replace(epochs=1), space="seed=[0,1]", trials=1))
    store.update_study("stopped", state=StudyState.STOPPED)
    [driver] = resume_searching(store, queue)
    assert driver.search.name == "left" and driver.wait(300)
    assert store.get_study("left")["state"] == StudyState.FINISHED and len(store.study_trials("left")) == 1
    assert store.get_study("stopped")["state"] == StudyState.STOPPED and store.study_trials("stopped") == {}


def test_a_stopped_study_asks_no_more_trials_and_its_running_one_is_told(store, queue):
    search = Search.from_values("s", BASE.replace(epochs=2), space="learning_rate=log(0.01,0.2)", trials=3)
    driver = StudyDriver.create(store, queue, search)
    driver.poll = 0.1
    driver.start()
    wait_until(lambda: store.study_trials("s"), "the first trial queued", timeout=60, every=0.1)
    driver.stop()
    assert driver.wait(300)
    [trial] = optuna_trials(store, "s")
    assert trial.state == TrialState.COMPLETE and store.get_study("s")["state"] == StudyState.STOPPED


def test_a_trials_run_waits_for_the_verdict_on_its_epoch_and_never_for_long(store):
    import threading
    import time

    from workbench.constants import TrialVerdict
    from workbench.training.verdict import pruned_by_study

    stop = threading.Event()
    run_id = store.create_run("t0", {})
    assert pruned_by_study(store, run_id, 1, stop) is False  # no trial: no wait
    store.create_study("s", {}, state=StudyState.SEARCHING, created_at="2026-12-02T00:00:00")
    store.add_study_trial("s", 0, run_id)
    store.judge_trial(run_id, 1, TrialVerdict.CONTINUE)
    assert pruned_by_study(store, run_id, 1, stop) is False  # judged: go on
    started = time.monotonic()
    assert pruned_by_study(store, run_id, 2, stop, patience=0.3) is False  # no driver judges: it gives up
    assert 0.3 <= time.monotonic() - started < 5
    threading.Timer(0.2, store.judge_trial, (run_id, 2, TrialVerdict.PRUNE)).start()
    assert pruned_by_study(store, run_id, 2, stop) is True  # the verdict that came while it waited
    store.judge_trial(run_id, 2, TrialVerdict.TOLD)  # told to Optuna; a resume by hand trains freely
    assert pruned_by_study(store, run_id, 3, stop, patience=30) is False
