"""Search: what pruning saves and what it costs, and TPE against random search, with real studies on the job queue.

    .venv/bin/python bench/search.py [--trials 24] [--epochs 9] [--model lenet] [--data PATH --subset 5000]
                                     [--seeds 0,1,2] [--skip-samplers]

Each study is `workbench.jobs.study.StudyDriver` on a real store in a temporary folder, its trials trained by the
job queue one at a time in this process's threads (JobQueue(isolate=False): no child process start per trial, so
the figures are training, not TensorFlow imports). The space: learning rate log(1e-4, 1), weight decay
log(1e-5, 1e-2), batch size [64, 128, 256], on the model and epochs given. Data: the CIFAR-10 copy given by --data,
by default ../shared/data/cifar10-jpeg.tar.gz where present (a seeded subset of --subset training images: a small
real-data task); `--data synthetic` (or no copy) trains on synthetic stripes (not CIFAR).

1. Hyperband against no pruning: the same trials budget, the same TPE seed (0). Epochs trained in all (a pruned
   trial counts the epochs it ran) and the best validation accuracy found. Targets: at least 40 % of the epochs
   saved, and the best accuracy within 0.5 point of the unpruned study's.
2. TPE against random search at equal trials, no pruning, over --seeds: each sampler's best validation accuracy
   per seed and the mean. No target: a figure to read (TPE needs 10 startup trials before it models anything).
Exits 1 if a target of part 1 is missed.
"""

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.targets import Targets
from store import Store
from workbench.constants import RunStatus
from workbench.jobs.queue import JobQueue
from workbench.jobs.study import StudyDriver
from workbench.specs.run import RunSpec
from workbench.specs.search import Search

SHARED_CIFAR = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10-jpeg.tar.gz"
SPACE = "learning_rate=log(1e-4,1) weight_decay=log(1e-5,1e-2) batch_size=[64,128,256]"
SAVED_TARGET = 0.40
ACCURACY_TOLERANCE = 0.005


def base_spec(args) -> RunSpec:
    data = (
        dict(dataset="cifar10", data_path=args.data, train_subset=args.subset)
        if args.data
        else dict(dataset="synthetic", dataset_options={"n_train": args.subset, "n_test": 200})
    )
    return RunSpec(model=args.model, epochs=args.epochs, schedule="cosine", augment=("flip_crop",), gpus=0, **data)


def study(folder: Path, name: str, args, *, pruner: str, sampler: str, seed: int) -> dict:
    """Run one study to its budget; its epochs trained, best validation accuracy, trials' states, seconds."""
    started = time.monotonic()
    with Store(folder / f"{name}.db") as store:
        queue = JobQueue(store, devices=[], isolate=False)
        try:
            search = Search.from_values(
                name, base_spec(args), space=SPACE, trials=args.trials, pruner=pruner, sampler=sampler, seed=seed
            )
            driver = StudyDriver.create(store, queue, search).start()
            driver.wait()
        finally:
            queue.shutdown()
        runs = store.list_runs()
        row = store.get_study(name)
        if row["error"]:
            raise SystemExit(f"study {name} stopped: {row['error']}")
    completed = [r["final_val_accuracy"] or 0.0 for r in runs if r["status"] == RunStatus.COMPLETED]
    return {
        "epochs": sum(r["epochs_done"] for r in runs),
        "best": max(completed, default=0.0),
        "pruned": sum(r["status"] == RunStatus.PRUNED for r in runs),
        "failed": sum(r["status"] == RunStatus.FAILED for r in runs),
        "seconds": time.monotonic() - started,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=24)
    parser.add_argument("--epochs", type=int, default=9)
    parser.add_argument("--model", default="lenet")
    parser.add_argument(
        "--data",
        default=str(SHARED_CIFAR) if SHARED_CIFAR.exists() else "",
        help="a CIFAR-10 copy (archive or folder; default: the bundled one where present); 'synthetic' for stripes",
    )
    parser.add_argument("--subset", type=int, default=5000, help="training images (a seeded subset of CIFAR)")
    parser.add_argument("--seeds", default="0,1,2", help="sampler seeds of the TPE-vs-random part")
    parser.add_argument("--skip-samplers", action="store_true", help="only the pruning part")
    args = parser.parse_args(argv)
    args.data = "" if args.data == "synthetic" else args.data
    targets = Targets()
    data = f"CIFAR-10 {args.subset} training images" if args.data else f"synthetic, {args.subset} training images"
    print(f"search bench: {args.model}, {args.epochs} epochs, {args.trials} trials, {data}; space {SPACE}")
    with tempfile.TemporaryDirectory() as folder:
        figures = {}
        for pruner in ("none", "hyperband"):
            figures[pruner] = study(Path(folder), f"prune-{pruner}", args, pruner=pruner, sampler="tpe", seed=0)
            f = figures[pruner]
            print(
                f"  TPE seed 0, pruner {pruner:9s}: {f['epochs']:4d} epochs trained, best val {f['best']:.2%}, "
                f"{f['pruned']} pruned, {f['failed']} failed, {f['seconds']:.0f} s"
            )
        saved = 1 - figures["hyperband"]["epochs"] / figures["none"]["epochs"]
        loss = figures["none"]["best"] - figures["hyperband"]["best"]
        targets.at_least("epochs saved by Hyperband", saved * 100, SAVED_TARGET * 100, unit=" %")
        targets.below(
            "best validation accuracy lost to Hyperband", loss * 100, ACCURACY_TOLERANCE * 100 + 1e-9, unit=" points"
        )
        if not args.skip_samplers:
            bests: dict = {"tpe": [], "random": []}
            for seed in (int(s) for s in args.seeds.split(",")):
                for sampler in bests:
                    f = study(Path(folder), f"{sampler}-{seed}", args, pruner="none", sampler=sampler, seed=seed)
                    bests[sampler].append(f["best"])
                    print(f"  {sampler:6s} seed {seed}: best val {f['best']:.2%} ({f['seconds']:.0f} s)")
            for sampler, values in bests.items():
                print(f"  {sampler}: mean best val {statistics.mean(values):.2%} over {len(values)} seeds")
    return targets.exit_code()


if __name__ == "__main__":
    sys.exit(main())
