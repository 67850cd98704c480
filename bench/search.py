"""Search: what pruning saves and what it costs, and TPE against random search, with real studies on the job queue.

    .venv/bin/python bench/search.py [--trials 24] [--epochs 9] [--model lenet] [--data PATH --subset 5000]
                                     [--seeds 0,1,2] [--skip-samplers]

Each study is `workbench.jobs.study.StudyDriver` on a real store in a temporary folder, its trials trained by the
job queue one at a time in this process's threads (JobQueue(isolate=False): no child process start per trial, so
the figures are training, not TensorFlow imports). The space: learning rate log(1e-4, 1), weight decay
log(1e-5, 1e-2), batch size [64, 128, 256], on the model and epochs given. Data: the CIFAR-10 copy given by --data,
by default ../shared/data/cifar10-jpeg.tar.gz where present (a seeded subset of --subset training images: a small
real-data task); `--data synthetic` (or no copy) trains on synthetic stripes (not CIFAR).

For each of --seeds, three studies of the same trials budget: TPE without pruning, TPE with Hyperband, random
search without pruning (the sampler seed is the study's seed).
1. Hyperband against no pruning (TPE): epochs trained in all (a pruned trial counts the epochs it ran) and the
   best validation accuracy found, per seed and as the mean over seeds. Targets on the means: at least 40 % of
   the epochs saved, and the best accuracy within 0.5 point of the unpruned studies'.
2. TPE against random search at equal trials, no pruning: each sampler's best validation accuracy per seed and
   the mean. No target: a figure to read (TPE needs 10 startup trials before it models anything).
Exits 1 if a target of part 1 is missed. --skip-samplers leaves the random studies out.
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
    parser.add_argument("--seeds", default="0,1,2", help="sampler seeds: three studies each")
    parser.add_argument("--skip-samplers", action="store_true", help="only the pruning part")
    args = parser.parse_args(argv)
    args.data = "" if args.data == "synthetic" else args.data
    targets = Targets()
    data = f"CIFAR-10 {args.subset} training images" if args.data else f"synthetic, {args.subset} training images"
    print(f"search bench: {args.model}, {args.epochs} epochs, {args.trials} trials, {data}; space {SPACE}")
    seeds = [int(s) for s in args.seeds.split(",")]
    samplers = ("none", "hyperband") if args.skip_samplers else ("none", "hyperband", "random")
    figures: dict = {kind: [] for kind in samplers}
    with tempfile.TemporaryDirectory() as folder:
        # Seed by seed, so that a run stopped early still has whole seeds to read.
        for seed in seeds:
            for kind in samplers:
                pruner, sampler = ("none", "random") if kind == "random" else (kind, "tpe")
                f = study(Path(folder), f"{kind}-{seed}", args, pruner=pruner, sampler=sampler, seed=seed)
                figures[kind].append(f)
                print(
                    f"  seed {seed}, {sampler:6s} pruner {pruner:9s}: {f['epochs']:4d} epochs trained, "
                    f"best val {f['best']:.2%}, {f['pruned']} pruned, {f['failed']} failed, {f['seconds']:.0f} s",
                    flush=True,
                )
    # Part 1 on the means over seeds: one seed's best is one draw, a point or so apart from the next seed's.
    saved = [1 - h["epochs"] / n["epochs"] for n, h in zip(figures["none"], figures["hyperband"], strict=True)]
    lost = [n["best"] - h["best"] for n, h in zip(figures["none"], figures["hyperband"], strict=True)]
    print(
        "  Hyperband vs no pruning (TPE), per seed: "
        + ", ".join(f"{s:.1%} saved / {d * 100:+.2f} points lost" for s, d in zip(saved, lost, strict=True))
    )
    targets.at_least(
        f"epochs saved by Hyperband (mean of {len(seeds)} seeds)",
        statistics.mean(saved) * 100,
        SAVED_TARGET * 100,
        unit=" %",
    )
    targets.below(
        f"best validation accuracy lost to Hyperband (mean of {len(seeds)} seeds)",
        statistics.mean(lost) * 100,
        ACCURACY_TOLERANCE * 100 + 1e-9,
        unit=" points",
    )
    if "random" in figures:
        for kind, label in (("none", "TPE"), ("random", "random")):
            values = [f["best"] for f in figures[kind]]
            print(
                f"  {label}: best val {', '.join(f'{v:.2%}' for v in values)}; mean {statistics.mean(values):.2%} "
                f"over {len(values)} seeds"
            )
    return targets.exit_code()


if __name__ == "__main__":
    sys.exit(main())
