"""Soak: a mixed load for a bounded time, local only, through the app's own server-side code.

A stream of tiny training runs (submitted, some cancelled, some resumed), two UI pollers calling the
Train tab's live poll and the Runs tab's refresh as a page would, and an ensemble thread scoring the
finished runs with random weights. At the end: runs completed / cancelled / failed, errors seen by
clients, peak memory and file handles (start, after warm-up, end), and the store's consistency (no
run left running, epochs 1..N without gaps or duplicates, logits for every completed run,
`PRAGMA integrity_check`). Targets: zero lost runs, zero client-visible errors, an intact store, and
memory flat after warm-up (a least-squares slope under 2 MB/min, judged from 5 minutes on: shorter
soaks are too short to tell); the script exits 1 when one is missed. Memory is the app process's (each
job trains in its own child process, reported apart).

    .venv/bin/python bench/soak.py [--seconds 300] [--in-process]
"""

import argparse
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from workbench.jobs.malloc_tuning import limit_arenas

limit_arenas()  # as app.py does, before TensorFlow starts its threads
from bench.targets import Targets
from store import Store
from workbench.ensemble import lab
from workbench.errors import UserError
from workbench.jobs.queue import JobQueue
from workbench.specs.run import RunSpec
from workbench.ui.app import build_app
from workbench.ui.context import AppContext

SLOPE_TARGET = 2.0  # MB/min after warm-up
SLOPE_JUDGED_FROM = 300  # seconds of soak


def rss_mb(pid="self") -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:  # the process ended between listing and reading
        pass
    return 0.0


def open_files() -> int:
    return len(os.listdir("/proc/self/fd"))


class Soak:
    def __init__(self, folder: Path, seconds: float, seed: int = 0, isolate: bool = True):
        self.store = Store(folder / "soak.db")
        self.queue = JobQueue(self.store, devices=[], isolate=isolate)
        ctx = AppContext(store=self.store, queue=self.queue, device_summary="soak")
        self.app = build_app(ctx).workbench
        self.deadline = time.monotonic() + seconds
        self.random = random.Random(seed)
        self.client_errors = []
        self.counts = {"submitted": 0, "cancel requests": 0, "resumes": 0, "polls": 0, "ensemble scores": 0}
        self.memory = []  # (seconds since start, app RSS MB, open files)
        self.job_rss = []  # RSS MB of each job process sampled
        self.lock = threading.Lock()

    def running(self) -> bool:
        return time.monotonic() < self.deadline

    def client(self, name, fn):
        """Call a server-side handler as a page would; any exception is an error the user would see."""
        try:
            fn()
        except Exception as exc:
            with self.lock:
                self.client_errors.append(f"{name}: {type(exc).__name__}: {exc}")

    def jobs(self):
        while self.running():
            if len(self.queue.active()) >= 3:  # keep a short backlog: on a CPU jobs run one at a time
                time.sleep(1)
                continue
            spec = RunSpec(
                model="resnet20",
                model_kwargs={"depth": 8, "base_width": 4},
                dataset="synthetic",
                dataset_options={"n_train": 400, "n_test": 100},
                batch_size=50,
                schedule="cosine",
                learning_rate=0.05,
                epochs=self.random.randint(2, 6),
                seed=self.random.randint(0, 9),
            )
            self.queue.submit(spec)
            self.counts["submitted"] += 1
            runs = self.store.list_runs()
            # Training now: status running, or a job process still starting (its run is queued until then).
            running = sorted({r["id"] for r in runs if r["status"] == "running"} | set(self.queue.process_ids()))
            if running and self.random.random() < 0.3:
                try:
                    self.queue.cancel(self.random.choice(running))
                    self.counts["cancel requests"] += 1
                except UserError:
                    pass  # it finished in between: fine
            cancelled = [r["id"] for r in runs if r["status"] == "cancelled"]
            if cancelled and self.random.random() < 0.5:
                self.queue.resume(self.random.choice(cancelled))
                self.counts["resumes"] += 1
            time.sleep(3)

    def poller(self):
        train, runs = self.app.train, self.app.runs
        while self.running():
            self.client("live poll", lambda: train.refresh.fn(None, None))
            self.client("runs refresh", lambda: runs.refresh.fn())
            self.counts["polls"] += 1
            time.sleep(0.2)

    def ensembles(self):
        room = lab.Lab(self.store)
        while self.running():
            done = [r["id"] for r in self.store.list_runs(status="completed")]
            if len(done) >= 2:
                members = self.random.sample(done, min(3, len(done)))
                self.client(
                    "ensemble",
                    lambda members=members: lab.score(
                        room.load(members), [self.random.random() + 0.01 for _ in members], lab.Settings()
                    ),
                )
                self.counts["ensemble scores"] += 1
            time.sleep(2)

    def sample_memory(self, started):
        while self.running():
            self.memory.append((time.monotonic() - started, rss_mb(), open_files()))
            self.job_rss += [rss_mb(pid) for pid in self.queue.process_ids().values()]
            time.sleep(1)

    def run(self):
        started = time.monotonic()
        threads = [
            threading.Thread(target=t, daemon=True) for t in (self.jobs, self.poller, self.poller, self.ensembles)
        ]
        threads.append(threading.Thread(target=self.sample_memory, args=(started,), daemon=True))
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.queue.shutdown(timeout=120)  # whatever still runs is cancelled (resumable), not lost
        return self.report(time.monotonic() - started)

    def report(self, seconds) -> int:
        runs = self.store.list_runs()
        statuses = {}
        for run in runs:
            statuses[run["status"]] = statuses.get(run["status"], 0) + 1
        problems = [f"run {r['id']} left {r['status']}" for r in runs if r["status"] in ("queued", "running")]
        problems += [f"run {r['id']} failed: {r['error']}" for r in runs if r["status"] in ("failed", "diverged")]
        for run in runs:
            epochs = [e["epoch"] for e in self.store.epochs(run["id"])]
            if epochs != list(range(1, len(epochs) + 1)):
                problems.append(f"run {run['id']} has epochs {epochs}")
            if run["status"] == "completed" and len(self.store.prediction_splits(run["id"])) != 4:
                problems.append(f"run {run['id']} completed without its logits")
        integrity = self.store.integrity_check()
        warm = [m for m in self.memory if m[0] >= min(60, seconds / 3)] or self.memory
        slope = None
        print(f"soak for {seconds:.0f} s: {self.counts}")
        print(f"runs by status: {statuses}")
        print(f"client-visible errors: {len(self.client_errors)}" + "".join(f"\n  {e}" for e in self.client_errors[:5]))
        print(f"lost or inconsistent runs: {len(problems)}" + "".join(f"\n  {p}" for p in problems[:5]))
        print(f"store integrity_check: {integrity}")
        if self.memory:
            minutes = {}
            for t, rss, _ in self.memory:
                minutes.setdefault(int(t // 60), []).append(rss)
            print(
                "RSS median per minute: "
                + ", ".join(f"min {m + 1}: {statistics.median(v):.0f} MB" for m, v in sorted(minutes.items()))
            )
            if len(warm) > 2:  # least-squares slope after warm-up: garbage collection makes RSS saw-tooth
                times, values = [m[0] for m in warm], [m[1] for m in warm]
                slope = statistics.linear_regression(times, values).slope * 60
                print(f"RSS slope after warm-up: {slope:+.1f} MB/min")
            print(
                f"memory: start {self.memory[0][1]:.0f} MB, after warm-up {warm[0][1]:.0f} MB, "
                f"end {self.memory[-1][1]:.0f} MB, peak {max(m[1] for m in self.memory):.0f} MB; "
                f"open files: start {self.memory[0][2]}, "
                f"end {self.memory[-1][2]}, peak {max(m[2] for m in self.memory)}"
            )
            if self.job_rss:
                print(
                    "job processes (each run's own, gone when it ends): "
                    f"median {statistics.median(self.job_rss):.0f} MB, peak {max(self.job_rss):.0f} MB"
                )
            mode = " --in-process" if not self.queue.isolate else ""
            print(
                f"| soak, {seconds / 60:.0f} min{', jobs in-process' if mode else ''} "
                f"| {statuses.get('completed', 0)} runs completed, {statuses.get('cancelled', 0)} cancelled, "
                f"{len(problems)} lost, {len(self.client_errors)} client errors; "
                f"RSS {warm[0][1]:.0f} -> {self.memory[-1][1]:.0f} MB after warm-up "
                f"| `python bench/soak.py --seconds {seconds:.0f}{mode}` |"
            )
        self.store.close()
        targets = Targets()
        targets.holds("no lost or inconsistent runs", not problems, f"{len(problems)} found")
        targets.holds("no client-visible errors", not self.client_errors, f"{len(self.client_errors)} seen")
        targets.holds("store integrity_check ok", integrity == "ok", integrity)
        if slope is not None and seconds >= SLOPE_JUDGED_FROM:
            targets.below("app RSS slope after warm-up", slope, SLOPE_TARGET, " MB/min")
        return targets.exit_code()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="train in threads of this process, not one child process per job (the old way)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        return Soak(Path(folder), args.seconds, args.seed, isolate=not args.in_process).run()


if __name__ == "__main__":
    sys.exit(main())
