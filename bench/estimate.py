"""Are the time estimates right here? For a small run of each zoo family on the CPU: the estimate before
any run is in the store (`workbench.jobs.estimate`, the shipped constants), then the run as the product
runs it (`python -m workbench --db TMP train ...`, its job in a child process) and its measured time, from
queueing to the end of its final evaluation (the store's created_at and finished_at). Exits 1 when any
estimate is outside 0.67-1.5 of the measured time.

This machine's 2 cores are shared with other work, which no estimate can foresee: the estimate checked is
the one at the effective load the run saw (the run queue sampled through it, bench/cpu_share.py;
`estimate(..., load=)`), and the one for an otherwise idle machine (what the product
shows) is printed beside it.

Real CIFAR-10 (../shared/data/cifar10-jpeg.tar.gz) for the cheap families when present; the synthetic
dataset (small test set) for the costly ones, whose final evaluation over 10,000 test images would take
many minutes here, and for every family when the archive is missing.

    python bench/estimate.py [--families lenet,resnet,airbench,vgg]   # about 10 minutes for all
    python bench/estimate.py --calibrate [--families resnet,finetune:mobilenet_v2,start,pipeline|job|job:vgg] [--write]
        measures the constants (bench/estimate_calibrate.py) and prints them; --write stores them in
        workbench/jobs/speeds.json. Then, per family, the job factor: a real run at half the checked run's
        training images, measured over what the constants say (what a real job adds to the timed steps:
        checkpoints, the store's writes, each view's dataset); the check above runs sizes it did not see.
"""

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.estimate_calibrate import calibrate
from bench.estimate_runs import CHEAP, RUNS, estimated, timed
from bench.targets import Targets

LOW, HIGH = 0.67, 1.5


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
    for family in names:
        started = time.perf_counter()
        argv, seconds, load, failure = timed(family)
        if failure:
            print(failure)
            targets.holds(f"{family}: the run completes", False)
            continue
        guess, idle = estimated(argv, load), estimated(argv, None)
        ratio = guess / seconds
        print(
            f"{family:12s} estimated {guess:7.1f} s  measured {seconds:7.1f} s  ratio {ratio:4.2f}  at effective "
            f"load {load:.1f} (idle machine: estimated {idle:.1f} s; command {time.perf_counter() - started:.0f} s)",
            flush=True,
        )
        targets.holds(f"{family}: estimate within {LOW}-{HIGH} of measured", LOW <= ratio <= HIGH, f"{ratio:.2f}")
    return targets.exit_code()


if __name__ == "__main__":
    sys.exit(main())
