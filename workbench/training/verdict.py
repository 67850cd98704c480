"""A study trial's run waits at each epoch's end for its study's verdict on that epoch (issue 27).

The study driver (`workbench.jobs.study`) polls the store, reports each new epoch to Optuna and writes the
pruner's verdict into `study_trials`. Without this wait the run had already begun its next epoch when the
driver's prune arrived, so every pruned trial trained one epoch past the rung that pruned it (at the first
rung: twice the epochs Hyperband meant to spend) and how many it trained depended on the poll's timing.
The wait is bounded: a driver that is gone (its process killed) costs each epoch `PATIENCE`, not the run.
"""

import threading
import time

from workbench.constants import StudyState, TrialVerdict
from workbench.training.run_store import RunStore

PATIENCE = 10.0  # seconds; the driver judges within its poll (0.5 s) of the epoch's row
EVERY = 0.05


def pruned_by_study(
    store: RunStore, run_id: int, epoch: int, stop: threading.Event, *, patience: float = PATIENCE
) -> bool:
    """Whether the study this run is a trial of prunes it after `epoch`: False at once for a run that is no
    trial, whose study is not searching, or whose trial is already told (resumed by hand); else once judged."""
    deadline = time.monotonic() + patience
    while True:
        row = store.trial_verdict(run_id)
        if row is None or row["state"] != StudyState.SEARCHING or row["verdict"] == TrialVerdict.TOLD:
            return False
        judged = row["judged"] or 0
        if judged >= epoch:
            return row["verdict"] == TrialVerdict.PRUNE
        if stop.is_set() or time.monotonic() >= deadline:
            return False
        time.sleep(EVERY)
