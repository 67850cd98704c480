"""Data quality (issue 24): how long each step of the label and data checks takes, one section per function.

    .venv/bin/python bench/data_quality.py [--db STORE --source run:7] [--repeats 5]

Sections (each a function `name(args, targets) -> [(what, figure, unit)]`, checking its targets with
`bench.targets.Targets`, listed in SECTIONS; a section that needs
something absent says so instead of a figure):

- label quality: cleanlab's label quality scores and confident learning's issues
  (`workbench.inspect.label_quality.quality`) for 10,000 images x 10 classes, in ms (median of --repeats).
  With --db and --source: that source's stored test probabilities (a completed run or saved ensemble of the
  real CIFAR-10 test set); otherwise synthetic logits of that shape (a model of about 85 % accuracy with 5 %
  of the labels flipped).

Targets: label quality of 10,000 images below 2,000 ms (a review page must not wait on it). Exits 1 if one
is missed.

Further sections (features of the 60,000 images, nearest neighbours 10,000 x 50,000, UMAP of 10,000 points, a
map click's server time) are added as functions beside `label_quality` and named in SECTIONS.
"""

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.targets import Targets
from workbench.inspect.label_quality import quality

N_IMAGES, N_CLASSES = 10_000, 10
LABEL_QUALITY_TARGET_MS = 2000


def synthetic_probs(n: int = N_IMAGES, classes: int = N_CLASSES, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Softmax probabilities of a model of about 85 % accuracy, and labels of which 5 % are flipped."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, classes, n)
    logits = rng.normal(0, 1, (n, classes))
    logits[np.arange(n), truth] += 2.5
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    labels = truth.copy()
    flipped = rng.choice(n, n // 20, replace=False)
    labels[flipped] = (labels[flipped] + rng.integers(1, classes, len(flipped))) % classes
    return probs, labels


def stored_probs(db: str, source: str) -> tuple[np.ndarray, np.ndarray]:
    from store import Store
    from workbench.ensemble.lab import Lab
    from workbench.inspect.sources import load_source

    with Store(db) as store:
        found = load_source(store, Lab(store), source, "test")
    return found.probs, found.labels


def label_quality(args, targets: Targets) -> list:
    if args.db:
        probs, labels = stored_probs(args.db, args.source)
        what = f"{args.source}'s stored test probabilities"
    else:
        probs, labels = synthetic_probs()
        what = "synthetic probabilities"
    quality(probs, labels)  # the imports (cleanlab, scikit-learn, pandas) are not the figure
    times, flagged = [], 0
    for _ in range(args.repeats):
        start = time.perf_counter()
        _, flags = quality(probs, labels)
        times.append(1000 * (time.perf_counter() - start))
        flagged = int(flags.sum())
    targets.below(f"label quality of {len(labels):,} images", statistics.median(times), LABEL_QUALITY_TARGET_MS, " ms")
    return [
        (f"label quality, {len(labels):,} images x {probs.shape[1]} classes ({what})", statistics.median(times), "ms"),
        (f"  of which flagged by confident learning (of {len(labels):,})", flagged, "images"),
    ]


SECTIONS: dict[str, Callable] = {"label quality": label_quality}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", default=None, help="a store with a completed run or saved ensemble on CIFAR-10")
    parser.add_argument("--source", default=None, help="its source key: run:ID or ensemble:ID (with --db)")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats per figure (the median is shown)")
    parser.add_argument("--only", default=None, help="one section by name: " + ", ".join(SECTIONS))
    args = parser.parse_args(argv)
    if bool(args.db) != bool(args.source):
        parser.error("--db and --source go together (or give neither for synthetic logits)")
    if args.only and args.only not in SECTIONS:
        parser.error(f"no section {args.only!r}; sections: {', '.join(SECTIONS)}")
    rows, targets = [], Targets()
    for name, section in SECTIONS.items():
        if args.only in (None, name):
            rows += section(args, targets)
    width = max(len(what) for what, _, _ in rows)
    print(f"{'what':{width}s}  {'figure':>10s}  unit")
    for what, figure, unit in rows:
        shown = f"{figure:,.1f}" if isinstance(figure, float) else f"{figure:,}"
        print(f"{what:{width}s}  {shown:>10s}  {unit}")
    return targets.exit_code()


if __name__ == "__main__":
    sys.exit(main())
