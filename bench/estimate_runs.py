"""The small real runs bench/estimate.py times against the estimate (and `--calibrate` fits each family's
job factor on, at half their training images: the check then runs sizes the calibration did not see)."""

import os
import sqlite3
import subprocess
import sys
import tempfile
from datetime import datetime
from pathlib import Path

from bench.cpu_share import Window

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "cifar10-jpeg.tar.gz"
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


def command(family: str, db: Path, half: bool = False) -> list[str]:
    """The run's command line; `half`: half its training images (the calibration's run)."""
    flags, real = RUNS[family]
    if half:
        at = flags.index("--train-subset") + 1
        flags = (*flags[:at], str(int(flags[at]) // 2), *flags[at + 1 :])
    data = ("--data", str(SHARED), *CIFAR) if real and SHARED.exists() else ()
    if not data and "--dataset" not in flags:
        data = SYNTHETIC
    return [sys.executable, "-m", "workbench", "--db", str(db), *flags, *data, "--gpus", "0"]


def estimated(argv: list[str], load: float | None, fresh: bool = False) -> float:
    """The estimate without any run in the store, of the run `argv` (a train or finetune command) would queue,
    at `load` (`fresh`: speeds.json read again)."""
    from workbench.cli.main import build_parser
    from workbench.jobs.estimate import estimate, speeds
    from workbench.specs.flags import spec_from_args

    if fresh:  # speeds.json was just written
        speeds.cache_clear()
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


def timed(family: str, half: bool = False) -> tuple[list[str], float, float, str]:
    """Run `family`'s small run as the product runs it (`python -m workbench --db TMP ...`, its job in a child
    process): (its command, seconds from queueing to the end of its final evaluation, the effective load it
    saw, its output's end when it failed, else "")."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    with tempfile.TemporaryDirectory() as tmp:
        argv = command(family, Path(tmp) / "runs.db", half)
        with subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT
        ) as job:
            window = Window(job.pid).start()  # how much the rest of the machine slows it (cpu_share.py)
            stdout, stderr = job.communicate()
        load = window.stop()
        if job.returncode:
            return argv, 0.0, load, stdout[-2000:] + "\n" + stderr[-2000:]
        return argv, measured(Path(tmp) / "runs.db"), load, ""
