"""The live panel's data: which jobs to show and how far each has got, read from the store only,
so every page (a reload, a second browser) shows the same state.

What a job is doing comes from `runs.phase` (none while it waits in the queue): rates and remaining
times from its finished epochs, else from the current pass's `step` and `step_seconds` (so they exist
from the first batches); each epoch's validation ("validating", `val_steps` batches) and the final
evaluation (validation and test, plain and mirrored) have their own progress and estimate. Elapsed
time is per attempt (a resume starts a new one) and in total.
"""

import html
import re
import time
from collections.abc import Sequence
from datetime import datetime

from workbench.constants import ACTIVE_STATUSES, RESUMABLE_STATUSES, RunPhase, RunStatus
from workbench.views.runs import run_choice

JOB_COLUMNS = ["id", "name", "status", "epoch", "progress", "images/s", "elapsed", "remaining"]
NODE_COLUMN = "node"  # with jobs on a Ray cluster: where each run trains (runs.node)


def job_columns(nodes: bool = False) -> list:
    return JOB_COLUMNS + ([NODE_COLUMN] if nodes else [])


# Forward passes only: an evaluation batch costs about a third of a training batch (forward + backward).
EVAL_SPEEDUP = 3.0
EVALUATING = (RunPhase.EVAL_VALIDATION, RunPhase.EVAL_TEST)
COLOURS = {
    RunStatus.COMPLETED: "#16a34a",
    RunStatus.FAILED: "#dc2626",
    RunStatus.DIVERGED: "#dc2626",
    RunStatus.CANCELLED: "#a16207",
    RunStatus.INTERRUPTED: "#a16207",
    RunStatus.PRUNED: "#7c3aed",
}


def read_runs(store) -> list:
    """The store's runs as a reader shows them (runs nobody is running any more read as interrupted)."""
    return store.seen_runs()


def _timestamp(text):
    return datetime.fromisoformat(text).timestamp() if text else None


def _in_pass(run: dict):
    """(batches done, seconds per batch) of the current pass, from the last progress write."""
    step, seconds = run.get("step") or 0, run.get("step_seconds")
    return (step, seconds / step) if step and seconds else (step, None)


def _epoch_seconds(run: dict, epochs: list, training: bool):
    """Seconds per epoch: the mean of the last five logged, else (`training`) the current epoch's pace."""
    seconds = [e["seconds"] for e in epochs if e.get("seconds")][-5:]
    if seconds:
        return sum(seconds) / len(seconds)
    _, per_batch = _in_pass(run)
    return per_batch * run["steps_per_epoch"] if training and per_batch and run.get("steps_per_epoch") else None


def _eval_remaining(run: dict, per_epoch):
    """Seconds the final evaluation still needs: its own pace once it runs, else a third of a training
    batch's time for each of its batches."""
    total = run.get("eval_steps")
    if not total:
        return None
    step, per_batch = _in_pass(run)
    if run.get("phase") in EVALUATING and per_batch:
        return per_batch * max(total - step, 0)
    steps = run.get("steps_per_epoch")
    return per_epoch / steps / EVAL_SPEEDUP * total if per_epoch and steps else None


def elapsed(run: dict, now=None) -> tuple:
    """(this attempt's seconds, all attempts' seconds); None where there is nothing to count yet."""
    now = time.time() if now is None else now
    active = run["status"] in ACTIVE_STATUSES
    total = run.get("train_seconds")
    # From before attempts were recorded, never started, or queued again (Resume) until its job clocks the
    # new attempt: no attempt's clock runs.
    if run.get("attempt_started_at") is None:
        start = _timestamp(run.get("started_at"))
        if start is None or run["status"] == RunStatus.QUEUED:
            return None, total
        if active or total is None:
            return None, max(0.0, (now if active else _timestamp(run.get("finished_at")) or now) - start)
        return None, total
    if active and phase_of(run):
        attempt = max(0.0, now - _timestamp(run["attempt_started_at"]))
        return attempt, (total or 0.0) - (run.get("attempt_seconds") or 0.0) + attempt
    if active:  # queued again, not started yet: the attempts so far
        return None, total
    return run.get("attempt_seconds"), total


def _next_epoch(run: dict) -> str:
    """Where a resumed run's job starts: "epoch 2/10", or the final evaluation once every epoch is done."""
    done, total = int(run["epochs_done"] or 0), int(run["spec"].get("epochs") or 1)
    return f"epoch {done + 1}/{total}" if done < total else "the final evaluation"


def phase_of(run: dict):
    """What the run's job is doing; None while it waits in the queue or once it has finished."""
    if run["status"] not in ACTIVE_STATUSES:
        return None
    return run.get("phase") or (RunPhase.TRAINING if run["status"] == RunStatus.RUNNING else None)


def progress(run: dict, epochs: list, now=None) -> dict:
    """What the panel shows of one run: phase, epoch x of y, fraction of the current stage (training, or
    the final evaluation), images/s, elapsed (attempt, total) and remaining seconds."""
    total = int(run["spec"].get("epochs") or 1)
    done = int(run["epochs_done"] or 0)
    phase = phase_of(run)
    step, per_batch = _in_pass(run)
    steps = run.get("steps_per_epoch") or 0
    in_epoch = min(step, steps) / steps if steps and phase == RunPhase.TRAINING else 0.0
    validation = None  # seconds the epoch's validation still needs, while it runs
    if phase == RunPhase.EVAL_EPOCH:
        in_epoch = 1.0  # the epoch's batches are trained; its validation runs
        if per_batch and run.get("val_steps"):
            validation = per_batch * max(run["val_steps"] - step, 0)
    per_epoch = _epoch_seconds(run, epochs, training=phase == RunPhase.TRAINING)
    images = run.get("train_images")
    rate = images / per_epoch if images and per_epoch else None
    remaining = evaluation = None
    if phase in EVALUATING:
        remaining = evaluation = _eval_remaining(run, per_epoch)
    elif phase in (RunPhase.TRAINING, RunPhase.EVAL_EPOCH) and per_epoch:
        evaluation = _eval_remaining(run, per_epoch)
        remaining = per_epoch * max(total - done - in_epoch, 0) + (validation or 0.0) + (evaluation or 0.0)
    if phase in EVALUATING and run.get("eval_steps"):
        fraction = min(1.0, step / run["eval_steps"])
    else:
        fraction = min(1.0, (done + in_epoch) / total)
    attempt, total_seconds = elapsed(run, now)
    return {
        "epoch": f"{min(done + (phase in (RunPhase.TRAINING, RunPhase.EVAL_EPOCH)), total)}/{total}",
        "phase": phase,
        "fraction": fraction,
        "images_per_second": rate,
        "attempt_seconds": attempt,
        "elapsed": total_seconds,
        "remaining": remaining,
        "evaluation_remaining": evaluation,
        "validation_remaining": validation,
    }


def duration(seconds) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m {seconds % 60:02d}s"


def waiting(runs: Sequence[dict]) -> list:
    """Queued runs whose job has not started, in queue order (when each was queued)."""
    queued = [r for r in runs if r["status"] == RunStatus.QUEUED and not phase_of(r)]
    return sorted(queued, key=lambda r: (r.get("queued_at") or r["created_at"], r["id"]))


def _ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def queue_note(run: dict, runs: Sequence[dict]) -> str:
    """Where a waiting run stands: its place in the queue and what it waits for."""
    line = [r["id"] for r in waiting(runs)]
    if run["id"] not in line:
        return ""
    busy = [f"run {r['id']}" for r in runs if phase_of(r)]
    behind = f"behind {', '.join(busy)}" if busy else "next to start"
    return f"{_ordinal(line.index(run['id']) + 1)} in the queue, {behind}"


def status_word(run: dict, runs: list) -> str:
    """The jobs table's status: the phase while a job works, the queue place while it waits."""
    if run["status"] == RunStatus.QUEUED and not phase_of(run):
        line = [r["id"] for r in waiting(runs)]
        return f"queued #{line.index(run['id']) + 1}" if run["id"] in line else RunStatus.QUEUED.value
    if phase_of(run) == RunPhase.PREPARING:
        return "starting"
    if phase_of(run) == RunPhase.EVAL_EPOCH:
        return "validating"
    return "evaluating" if phase_of(run) in EVALUATING else run["status"]


def jobs_rows(store, runs: list, recent: int = 5, nodes: bool = False) -> list:
    """Running jobs, then waiting ones in queue order, then the most recently finished ones; with `nodes`, the
    node each ran on last."""
    line = waiting(runs)
    waiting_ids = {r["id"] for r in line}
    started = [r for r in runs if r["status"] in ACTIVE_STATUSES and r["id"] not in waiting_ids]
    finished = sorted((r for r in runs if r["status"] not in ACTIVE_STATUSES), key=lambda r: r["id"], reverse=True)
    rows = []
    for run in sorted(started, key=lambda r: r["id"]) + line + finished[:recent]:
        p = progress(run, store.epochs(run["id"]))
        rate = f"{p['images_per_second']:,.0f}" if p["images_per_second"] else "-"
        rows.append(
            [
                run["id"],
                run["name"],
                status_word(run, runs),
                p["epoch"],
                f"{100 * p['fraction']:.0f}%",
                rate,
                duration(p["elapsed"]),
                duration(p["remaining"]),
            ]
            + ([run.get("node") or "-"] if nodes else [])
        )
    return rows


def follow_choices(runs: list) -> list:
    """(label, run id) choices for the run the live panel follows, newest first."""
    newest = sorted(runs, key=lambda r: r["id"], reverse=True)
    return [run_choice(r, f" ({r['status']})") for r in newest[:50]]


def default_follow(runs: list):
    """The run a fresh page follows: the newest whose job works, else the next to start, else the newest."""
    working = [r["id"] for r in runs if phase_of(r)]
    if working:
        return max(working)
    line = waiting(runs)
    return line[0]["id"] if line else max((r["id"] for r in runs), default=None)


def _rate_text(p: dict) -> str:
    if p["images_per_second"]:
        return f"{p['images_per_second']:,.0f} images/s"
    return "images/s: after the first batches" if p["phase"] == RunPhase.TRAINING else ""


def _phase_text(run: dict, p: dict, runs: Sequence[dict]) -> str:
    if p["phase"] == RunPhase.PREPARING:
        if run["epochs_done"]:
            return f"resuming from {_next_epoch(run)}: loading the data and its checkpoint"
        return "starting: loading the data and building the model"
    if p["phase"] in EVALUATING:
        step = min(run.get("step") or 0, run.get("eval_steps") or 0)
        return f"{p['phase']} ({step:,} of {run['eval_steps']:,} batches)"
    if p["phase"] == RunPhase.EVAL_EPOCH:
        total = run.get("val_steps")
        done = f" ({min(run.get('step') or 0, total):,} of {total:,} batches)" if total else "…"
        return f"epoch {p['epoch']} · validating{done}"
    note = queue_note(run, runs) if run["status"] == RunStatus.QUEUED else ""
    if note and run["epochs_done"]:
        return f"resuming from {_next_epoch(run)}; waiting: {note}"
    return f"waiting: {note}" if note else f"epoch {p['epoch']}"


def progress_facts(run: dict, epochs: list, runs: Sequence[dict] = ()) -> list:
    """What the followed run is doing, in plain words: phase, rate, elapsed, remaining and its scores,
    as the live panel shows them and `python -m workbench train` prints them."""
    p = progress(run, epochs)
    facts = [_phase_text(run, p, runs or [run]), _rate_text(p)]
    attempts = run.get("attempt") or 0
    if p["attempt_seconds"] is not None and attempts > 1:
        facts.append(
            f"elapsed {duration(p['attempt_seconds'])} this attempt (#{attempts}), {duration(p['elapsed'])} in all"
        )
    elif p["attempt_seconds"] is None and run["status"] == RunStatus.QUEUED and attempts and p["elapsed"] is not None:
        # queued again (Resume): the new attempt's clock has not begun
        facts.append(f"elapsed 0m 00s this attempt (#{attempts + 1}), {duration(p['elapsed'])} in all")
    elif p["elapsed"] is not None:
        facts.append(f"elapsed {duration(p['elapsed'])}")
    if p["remaining"] is not None:
        after = p["evaluation_remaining"] if p["phase"] not in EVALUATING else None
        facts.append(
            f"remaining ~{duration(p['remaining'])}"
            + (f" (incl. ~{duration(after)} final evaluation)" if after else "")
        )
    if run.get("best_val_accuracy") is not None:
        facts.append(f"best val {100 * run['best_val_accuracy']:.2f}%")
    if run.get("test_accuracy") is not None:
        facts.append(f"test {100 * run['test_accuracy']:.2f}%")
    return [f for f in facts if f]


def status_html(run: dict, epochs: list, runs: Sequence[dict] = ()) -> str:
    """A progress bar and one line of facts for the followed run (`runs`: all of them, to place a
    waiting one in the queue)."""
    fraction = progress(run, epochs)["fraction"]
    colour = COLOURS.get(run["status"], "#2563eb")
    facts = [
        f"<b>{html.escape(run['name'])}</b> (run {run['id']})",
        f"<b style='color:{colour}'>{run['status']}</b>",
        *(html.escape(f) for f in progress_facts(run, epochs, runs)),
    ]
    bar = (
        f"<div style='background:#e5e7eb;border-radius:6px;height:14px;width:100%'>"
        f"<div style='background:{colour};width:{100 * fraction:.1f}%;height:14px;border-radius:6px'></div></div>"
    )
    error = (
        f"<pre style='white-space:pre-wrap;color:#b91c1c'>{html.escape(run['error'])}</pre>" if run.get("error") else ""
    )
    return f"<div id='live-status'>{bar}<p>{' · '.join(facts)}</p>{error}</div>"


def can_cancel(run) -> bool:
    return bool(run) and run["status"] in ACTIVE_STATUSES


def can_resume(run) -> bool:
    return bool(run) and run["status"] in RESUMABLE_STATUSES


def _kept(run: dict) -> str:
    done, total = int(run["epochs_done"] or 0), int(run["spec"].get("epochs") or 1)
    if not done:
        return "No epoch has finished, so nothing is kept: Resume would start it over from epoch 1."
    if done >= total:
        return f"All {total} epochs are kept: Resume would run the final evaluation only."
    kept = "Epoch 1 is kept" if done == 1 else f"Epochs 1-{done} are kept"
    return f"{kept} (its checkpoint): Resume would continue from epoch {done + 1} of {total}."


def cancel_message(run: dict, started: bool) -> str:
    """What a cancel does to `run` (as it was when cancelled): `started` False if it was waiting."""
    if not started:
        return f"Run {run['id']} cancelled: it was waiting in the queue and had not started."
    phase = phase_of(run)
    if phase == RunPhase.PREPARING:
        how = "it is still loading its data and building its model, and stops before its first batch"
    elif phase in EVALUATING:
        how = "it is in its final evaluation, stops after the current batch and stores no predictions"
    elif phase == RunPhase.EVAL_EPOCH:
        how = (
            f"it is validating epoch {int(run['epochs_done'] or 0) + 1}, stops after the current batch and "
            "drops that epoch, unvalidated"
        )
    else:
        _, per_batch = _in_pass(run)
        pace = f" (about {per_batch:.1f} s each here)" if per_batch else ""
        how = f"it stops after its current batch{pace}, without validating the unfinished epoch"
    return f"Cancelling run {run['id']}: {how}. {_kept(run)}"


def settled_notice(notice: str, runs: list):
    """The Cancel / Resume line once what it announced is over: "Cancelling run N: ..." becomes what the
    run kept, once its job has stopped; None: leave the line as it is."""
    match = re.match(r"Cancelling run (\d+):", notice or "")
    if not match:
        return None
    run = next((r for r in runs if r["id"] == int(match.group(1))), None)
    if run is None:
        return ""
    if run["status"] in ACTIVE_STATUSES:
        return None
    return f"Run {run['id']} has stopped ({run['status']}). {_kept(run)}"


def resume_message(run: dict, epoch: int, runs: list) -> str:
    """What a resume of `run` from its checkpoint after `epoch` (0: none) will do, and where it waits."""
    total = int(run["spec"].get("epochs") or 1)
    if not epoch:
        what = f"queued again: it has no checkpoint (no epoch finished), so it starts over from epoch 1 of {total}"
    elif epoch >= total:
        what = f"queued to finish: all {total} epochs are done, so it runs the final evaluation only"
    else:
        what = f"queued to resume from its checkpoint after epoch {epoch}: epochs {epoch + 1}-{total} to go"
    note = queue_note(run, runs)
    return f"Run {run['id']} {what}." + (f" It waits: {note}." if "behind" in note else "")


QUICK_HINT = "**Quick CPU recipe** fills one that finishes in minutes."
SHORTER_HINT = "fewer epochs or a training subset make it shorter."


def estimate_text(est, *, hint: str = "", markdown: bool = True) -> str:
    """A `workbench.jobs.estimate.Estimate` as the form shows it, with what its figure rests on
    (`markdown=False`: plain text, as the command line prints it). `hint`: the advice for a run long for a
    CPU, in the words of where it shows (a tab names only its own buttons, never the recipe it has)."""
    if est.seconds is None:
        text = f"**Estimated time:** unknown — {est.source}."
    else:
        text = (
            f"**Time on this {est.device}: ~{duration(est.seconds)}{' (rough)' if est.rough else ''}** — "
            f"~{duration(est.start)} to start, {est.epochs} epoch{'s' if est.epochs != 1 else ''} of "
            f"{est.images:,} images at ~{1 / est.per_image:,.0f} images/s (with each epoch's validation), then "
            f"~{duration(est.evaluation)} of final evaluation. {est.source}."
        )
        if est.device == "CPU" and est.seconds > 3600 and hint:
            text += f" That is long for a CPU: {hint}"
    return text if markdown else text.replace("**", "")
