"""The live panel's data: which jobs to show and how far each has got, read from the store only,
so every page (a reload, a second browser) shows the same state."""
import html
import time
from datetime import datetime

from workbench.constants import ACTIVE_STATUSES

JOB_COLUMNS = ["id", "name", "status", "epoch", "progress", "images/s", "elapsed", "remaining"]


def progress(run: dict, epochs: list) -> dict:
    """Epoch x of y, fraction done, images/s, elapsed and remaining seconds for one run."""
    total = int(run["spec"].get("epochs") or 1)
    done = int(run["epochs_done"] or 0)
    steps = run.get("steps_per_epoch") or 0
    step = min(run.get("step") or 0, steps) if run["status"] == "running" else 0
    fraction = min(1.0, (done + (step / steps if steps else 0)) / total)
    seconds = [e["seconds"] for e in epochs if e.get("seconds")]
    per_epoch = sum(seconds[-5:]) / len(seconds[-5:]) if seconds else None
    images = run.get("train_images")
    rate = images / per_epoch if images and per_epoch else None
    elapsed = _elapsed(run)
    remaining = per_epoch * (total - done - (step / steps if steps else 0)) if per_epoch and run["status"] in ACTIVE_STATUSES else None
    return {"epoch": f"{min(done + (run['status'] == 'running'), total)}/{total}", "fraction": fraction,
            "images_per_second": rate, "elapsed": elapsed, "remaining": remaining}


def _elapsed(run: dict):
    start = run.get("started_at")
    if not start:
        return None
    end = run.get("finished_at") if run["status"] not in ACTIVE_STATUSES else None
    end_time = datetime.fromisoformat(end).timestamp() if end else time.time()
    return max(0.0, end_time - datetime.fromisoformat(start).timestamp())


def duration(seconds) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m {seconds % 60:02d}s"


def jobs_rows(store, recent: int = 5) -> list:
    """Queued and running jobs, then the most recently finished ones."""
    runs = store.list_runs(include_archived=False)
    active = [r for r in runs if r["status"] in ACTIVE_STATUSES]
    finished = sorted((r for r in runs if r["status"] not in ACTIVE_STATUSES), key=lambda r: r["id"], reverse=True)[:recent]
    rows = []
    for run in active + finished:
        p = progress(run, store.epochs(run["id"]))
        rate = f"{p['images_per_second']:,.0f}" if p["images_per_second"] else "-"
        rows.append([run["id"], run["name"], run["status"], p["epoch"], f"{100 * p['fraction']:.0f}%", rate,
                     duration(p["elapsed"]), duration(p["remaining"])])
    return rows


def follow_choices(store) -> list:
    """(label, run id) choices for the run the live panel follows, newest first."""
    runs = sorted(store.list_runs(include_archived=False), key=lambda r: r["id"], reverse=True)
    return [(f"{r['id']}: {r['name']} ({r['status']})", r["id"]) for r in runs[:50]]


def default_follow(store):
    """The run a fresh page follows: the newest running one, else the newest queued, else the newest."""
    runs = store.list_runs(include_archived=False)
    for status in ("running", "queued"):
        matching = [r["id"] for r in runs if r["status"] == status]
        if matching:
            return max(matching)
    return max((r["id"] for r in runs), default=None)


def status_html(run: dict, epochs: list) -> str:
    """A progress bar and one line of facts for the followed run."""
    p = progress(run, epochs)
    rate = f"{p['images_per_second']:,.0f} images/s" if p["images_per_second"] else "images/s: after the first epoch"
    colour = {"completed": "#16a34a", "failed": "#dc2626", "diverged": "#dc2626", "cancelled": "#a16207",
              "interrupted": "#a16207"}.get(run["status"], "#2563eb")
    facts = [f"<b>{html.escape(run['name'])}</b> (run {run['id']})", f"<b style='color:{colour}'>{run['status']}</b>",
             f"epoch {p['epoch']}", rate, f"elapsed {duration(p['elapsed'])}"]
    if p["remaining"] is not None:
        facts.append(f"remaining ~{duration(p['remaining'])}")
    if run.get("best_val_accuracy") is not None:
        facts.append(f"best val {100 * run['best_val_accuracy']:.2f}%")
    if run.get("test_accuracy") is not None:
        facts.append(f"test {100 * run['test_accuracy']:.2f}%")
    bar = (f"<div style='background:#e5e7eb;border-radius:6px;height:14px;width:100%'>"
           f"<div style='background:{colour};width:{100 * p['fraction']:.1f}%;height:14px;border-radius:6px'></div></div>")
    error = (f"<pre style='white-space:pre-wrap;color:#b91c1c'>{html.escape(run['error'])}</pre>"
             if run.get("error") else "")
    return f"<div id='live-status'>{bar}<p>{' · '.join(facts)}</p>{error}</div>"
