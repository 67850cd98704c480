"""Are the time estimates right here? For a small run of each zoo family on the CPU: the estimate before
any run is in the store (`workbench.jobs.estimate`, the shipped constants), then the run as the product
runs it (`python -m workbench --db TMP train ...`, its job in a child process) and its measured time, from
queueing to the end of its final evaluation (the store's created_at and finished_at). Exits 1 when any
estimate is outside 0.67-1.5 of the measured time.

This machine's 2 cores are shared with other work, which no estimate can foresee: the estimate checked is
the one at the effective load the run saw (from the CPU the rest of the machine used meanwhile,
bench/cpu_share.py; `estimate(..., load=)`), and the one for an otherwise idle machine (what the product
shows) is printed beside it.

Real CIFAR-10 (../shared/data/cifar10-jpeg.tar.gz) for the cheap families when present; the synthetic
dataset (small test set) for the costly ones, whose final evaluation over 10,000 test images would take
many minutes here, and for every family when the archive is missing.

    python bench/estimate.py [--families lenet,resnet,airbench,vgg]   # about 10 minutes for all
    python bench/estimate.py --calibrate [--families resnet,finetune:mobilenet_v2,start,pipeline] [--write]
        measures the constants (bench/estimate_calibrate.py) and prints them; --write stores them in
        workbench/jobs/speeds.json
"""

import argparse
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.cpu_share import Window
from bench.estimate_calibrate import calibrate
from bench.targets import Targets

SHARED = ROOT.parent / "shared" / "data" / "cifar10-jpeg.tar.gz"
LOW, HIGH = 0.67, 1.5
CIFAR = ("--val-size", "1000")  # smaller validation than the default 5,000: shorter epochs and evaluation
SYNTHETIC = ("--dataset", "synthetic", "--dataset-options", "n_train=1200,n_test=200")
# family -> (flags of its small run, whether it reads real CIFAR-10 when the archive is there)
RUNS = {
    "lenet": (("train", "--model", "lenet", "--epochs", "2", "--train-subset", "4992"), True),
    "airbench": (("train", "--model", "airbench_cpu", "--epochs", "1", "--train-subset", "3000"), True),
    "resnet": (("train", "--model", "resnet20", "--epochs", "1", "--train-subset", "2000"), True),
    "vgg": (("train", "--model", "vgg11_bn", "--epochs", "1", "--batch-size", "64", "--train-subset", "1024"), False),
    "nin": (("train", "--model", "nin", "--epochs", "1", "--train-subset", "1024"), False),
    "densenet_bc": (
        ("train", "--model", "densenet_bc_100_12", "--epochs", "1", "--batch-size", "64", "--train-subset", "640"),
        False,
    ),
    "wide_resnet": (
        (
            "train",
            "--model",
            "wrn_16_8",
            "--epochs",
            "1",
            "--batch-size",
            "32",
            "--train-subset",
            "320",
            "--val-size",
            "100",
        ),
        False,
    ),
    "resnext": (  # grouped convolutions: seconds per training image on this CPU, so a handful of images
        (
            *("train", "--model", "resnext29_4x64d", "--epochs", "1", "--batch-size", "8", "--train-subset", "16"),
            *("--val-size", "16", "--dataset", "synthetic", "--dataset-options", "n_train=1200,n_test=32"),
        ),
        False,
    ),
    # The fine-tune backbones at the form's 96x96, random weights (no download here): the default
    # InceptionV3 and the light MobileNetV2, one epoch of each phase on a few hundred images.
    **{
        f"finetune:{backbone}": (
            (
                *("finetune", "--backbone", backbone, "--weights", "none", "--head-epochs", "1"),
                *("--finetune-epochs", "1", "--batch-size", "32", "--train-subset", "256", "--val-size", "64"),
                *("--dataset", "synthetic", "--dataset-options", "n_train=1200,n_test=128"),
            ),
            False,
        )
        for backbone in ("mobilenet_v2", "inception_v3")
    },
}
CHEAP = ("lenet", "resnet", "airbench", "vgg")


def command(family: str, db: Path) -> list[str]:
    flags, real = RUNS[family]
    data = ("--data", str(SHARED), *CIFAR) if real and SHARED.exists() else ()
    if not data and "--dataset" not in flags:
        data = SYNTHETIC
    return [sys.executable, "-m", "workbench", "--db", str(db), *flags, *data, "--gpus", "0"]


def estimated(argv: list[str], load: float | None) -> float:
    """The estimate without any run in the store, of the run `argv` (a train or finetune command) would queue,
    at `load`."""
    from workbench.cli.main import build_parser
    from workbench.jobs.estimate import estimate
    from workbench.specs.flags import spec_from_args

    subcommand = "finetune" if "finetune" in argv else "train"
    args = build_parser().parse_args(argv[argv.index(subcommand) :])
    spec = spec_from_args(args, args.spec_class).validate()
    figure = estimate(spec, None, 0, load=load)
    assert figure.seconds is not None, figure.source
    return figure.seconds


def measured(db: Path) -> float:
    """Seconds from the run's queueing to its end, as the store has them."""
    row = sqlite3.connect(db).execute("SELECT created_at, finished_at, status FROM runs").fetchone()
    assert row[2] == "completed", row
    return (datetime.fromisoformat(row[1]) - datetime.fromisoformat(row[0])).total_seconds()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--families", default=",".join(RUNS), help=f"comma-separated (default: all; cheap: {','.join(CHEAP)})"
    )
    parser.add_argument("--calibrate", action="store_true", help="measure the constants instead")
    parser.add_argument(
        "--write", action="store_true", help="with --calibrate: store them in workbench/jobs/speeds.json"
    )
    args = parser.parse_args()
    names = [f.strip() for f in args.families.split(",") if f.strip()]
    if args.calibrate:
        calibrate([] if args.families == parser.get_default("families") else names, args.write)
        return 0
    targets = Targets()
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    with tempfile.TemporaryDirectory() as tmp:
        for family in names:
            db = Path(tmp) / f"{family}.db"
            argv = command(family, db)
            idle = estimated(argv, None)
            started = time.perf_counter()
            with subprocess.Popen(
                argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT
            ) as job:
                window = Window(job.pid).start()  # how much the rest of the machine slows it (cpu_share.py)
                stdout, stderr = job.communicate()
            load = window.stop()
            if job.returncode:
                print(stdout[-2000:], stderr[-2000:], sep="\n")
                targets.holds(f"{family}: the run completes", False)
                continue
            seconds = measured(db)
            guess = estimated(argv, load)
            ratio = guess / seconds
            print(
                f"{family:12s} estimated {guess:7.1f} s  measured {seconds:7.1f} s  ratio {ratio:4.2f}  at effective "
                f"load {load:.1f} (idle machine: estimated {idle:.1f} s; "
                f"command {time.perf_counter() - started:.0f} s)",
                flush=True,
            )
            targets.holds(f"{family}: estimate within {LOW}-{HIGH} of measured", LOW <= ratio <= HIGH, f"{ratio:.2f}")
    return targets.exit_code()


if __name__ == "__main__":
    sys.exit(main())
