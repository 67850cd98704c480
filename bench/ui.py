"""Server time of the UI's two polling paths with 200 runs in the store: the Runs tab's refresh and the
Train tab's live-panel poll, p50 and p95, idle and while a training job writes to the same store
(measured side by side in one run). Target: p95 under 200 ms while a job runs; exits 1 when missed.

    .venv/bin/python bench/ui.py [--runs 200] [--calls 60]
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from bench.targets import Targets
from store import Store
from workbench.jobs.queue import JobQueue
from workbench.specs.run import RunSpec
from workbench.ui.app import build_app
from workbench.ui.context import AppContext

TARGET_MS = 200
MODELS = ["resnet20", "resnet56", "wrn_28_10", "densenet_bc_100_12", "resnext29_8x64d"]


def fill(store: Store, runs: int, epochs: int = 60):
    """`runs` completed runs with per-epoch rows and val/test logits, written through the Store API."""
    rng = np.random.default_rng(0)
    y_val, y_test = rng.integers(0, 10, 5000), rng.integers(0, 10, 10000)
    for i in range(runs):
        spec = RunSpec(model=MODELS[i % len(MODELS)], loss=("cross_entropy", "focal")[i % 2], epochs=epochs, seed=i)
        run_id = store.create_run(
            f"bench-{i}",
            spec.to_dict(),
            dataset="cifar10",
            split_id="seed0-bench",
            params=int(rng.integers(2e5, 4e7)),
            tags=[f"group{i % 4}"],
        )
        store.set_status(run_id, "running")
        for epoch in range(1, epochs + 1):
            acc = 0.5 + 0.4 * (1 - np.exp(-epoch / 20)) + rng.normal(0, 0.01)
            store.log_epoch(
                run_id,
                epoch,
                lr=0.1 * 0.5 ** (epoch // 20),
                loss=1 / epoch,
                accuracy=acc,
                val_loss=1.2 / epoch,
                val_accuracy=acc - 0.03,
                seconds=30.0,
            )
        for split, y in (("val", y_val), ("test", y_test)):
            logits = rng.normal(0, 1, (len(y), 10)).astype(np.float32)
            logits[np.arange(len(y)), y] += 2.0
            store.save_logits(run_id, split, logits, y)
        store.update_run(run_id, test_accuracy=0.85, train_seconds=1800.0)
        store.set_status(run_id, "completed")


def timed(fn, calls: int) -> np.ndarray:
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return np.array(times) * 1000


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--calls", type=int, default=60)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        store = Store(Path(folder) / "bench.db")
        started = time.perf_counter()
        fill(store, args.runs)
        print(
            f"store: {args.runs} runs x 60 epochs with val/test logits, written in "
            f"{time.perf_counter() - started:.0f} s ({(Path(folder) / 'bench.db').stat().st_size / 1e6:.0f} MB)"
        )
        queue = JobQueue(store, devices=[])
        ctx = AppContext(store=store, queue=queue, device_summary="bench")
        demo = build_app(ctx)
        train, runs = demo.workbench.train, demo.workbench.runs
        polls = {
            "Runs tab refresh": lambda: runs.refresh.fn(),
            "live panel poll": lambda: train.refresh.fn(None, None),
        }
        results = {name: {"idle": timed(fn, args.calls)} for name, fn in polls.items()}
        spec = RunSpec(
            model="resnet20",
            model_kwargs={"depth": 8, "base_width": 4},
            dataset="synthetic",
            dataset_options={"n_train": 2000, "n_test": 200},
            epochs=500,
            batch_size=50,
            schedule="cosine",
            learning_rate=0.05,
        )
        run_id = queue.submit(spec)
        while not store.epochs(run_id):  # measure while it writes epochs and progress
            time.sleep(0.2)
        for name, fn in polls.items():
            results[name]["training"] = timed(fn, args.calls)
        epochs_written = len(store.epochs(run_id))
        queue.shutdown()
        print(f"training job wrote {epochs_written} epochs during the measurement\n")
        print("| poll (server time) | idle p50 | idle p95 | training p50 | training p95 | p95 ratio |")
        print("|---|---|---|---|---|---|")
        for name, r in results.items():
            idle, busy = r["idle"], r["training"]
            print(
                f"| {name}, {args.runs} runs | {np.percentile(idle, 50):.0f} ms | {np.percentile(idle, 95):.0f} ms | "
                f"{np.percentile(busy, 50):.0f} ms | {np.percentile(busy, 95):.0f} ms | "
                f"{np.percentile(busy, 95) / np.percentile(idle, 95):.2f} |"
            )
        store.close()
    print()
    targets = Targets()
    for name, r in results.items():
        targets.below(f"{name} p95 while training", float(np.percentile(r["training"], 95)), TARGET_MS, " ms")
    return targets.exit_code()


if __name__ == "__main__":
    sys.exit(main())
