"""Following runs from the command line until they end: each new epoch, what a run is doing between epochs (as the
live panel says it), Ctrl-C cancelling them (resumable), and the exit status theirs (`follow`)."""

import sys
import time

from workbench.cli.common import prog
from workbench.cli.presets import percent
from workbench.constants import RunPhase, RunStatus
from workbench.views.live import phase_of, progress_facts

PROGRESS_EVERY = 30.0  # seconds between progress lines inside a long epoch or the final evaluation


def follow(queue, store, run_ids, prefix="", every=PROGRESS_EVERY):
    """Print each new epoch until the runs end, and what a run is doing (its phase, rate and remaining
    time, as the live panel says it) when that changes or every `every` seconds inside a long epoch or
    the final evaluation; Ctrl-C cancels them (resumable later). 0 when every run completed, 1 when one failed,
    130 after Ctrl-C."""
    shown = {run_id: 0 for run_id in run_ids}
    said: dict[int, tuple[str | None, float]] = {
        run_id: (None, 0.0) for run_id in run_ids
    }  # (phase, when) of each run's last progress line
    try:
        while True:
            for run_id in run_ids:
                epochs = store.epochs(run_id)
                for row in epochs[shown[run_id] :]:
                    shown[run_id] = row["epoch"]
                    total = store.get_run(run_id)["spec"]["epochs"]
                    print(
                        f"{prefix}run {run_id} epoch {row['epoch']}/{total}: loss {number(row['loss'])} "
                        f"acc {percent(row['accuracy'])} val_acc {percent(row['val_accuracy'])} "
                        f"lr {number(row['lr'], 5)} ({row['seconds']:.1f}s)",
                        flush=True,
                    )
                    said[run_id] = (said[run_id][0], time.monotonic())  # an epoch line says enough for now
                run = store.get_run(run_id)
                phase, last = phase_of(run), said[run_id]
                # Each epoch's validation counts as training here: said every `every` s, not at each switch.
                phase = RunPhase.TRAINING if phase == RunPhase.EVAL_EPOCH else phase
                if phase and (phase != last[0] or time.monotonic() - last[1] >= every):
                    print(f"{prefix}run {run_id}: {' · '.join(progress_facts(run, epochs))}", flush=True)
                    said[run_id] = (phase, time.monotonic())
            if all(queue.wait(r, timeout=0) for r in run_ids):
                break
            time.sleep(0.5)
    except KeyboardInterrupt:
        for run_id in run_ids:
            if run_id in queue.active():
                queue.cancel(run_id)
        queue.shutdown()
        print(f"cancelled; continue with: {prog()} resume {' '.join(map(str, run_ids))}", file=sys.stderr)
        return 130
    failed = 0
    for run_id in run_ids:
        run = store.get_run(run_id)
        line = f"{prefix}run {run_id} {run['status']}"
        if run["status"] == RunStatus.COMPLETED:
            line += (
                f": best val {percent(run['best_val_accuracy'])} (epoch {run['best_epoch']}), "
                f"test {percent(run['test_accuracy'])}"
            )
        elif run["error"]:
            line += f": {run['error'].splitlines()[0]}"
            failed += 1
        print(line, flush=True)
    return 1 if failed else 0


def number(value, digits=4):
    """A loss or learning rate in a progress line; "-" where the epoch has none."""
    return "-" if value is None else f"{value:.{digits}f}"
