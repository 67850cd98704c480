"""Errors tab server time: one gallery page, and a change of source, on 10,000 test images.

    .venv/bin/python bench/errors.py [--images 10000] [--calls 30] [--data auto|synthetic|PATH]

Images: the real CIFAR-10 test set from `../shared/data/cifar10-jpeg.tar.gz` when it is there (`--data auto`),
else (or with `--data synthetic`) generated uint8 images of the same shape; timings do not depend on the
pixels. Logits: random but realistic (about 90 % accurate, over-confident, with a per-image difficulty),
seed 0, for two runs written to a temporary Store through the real API. Measured (wall clock, p50/p95
over `--calls` calls, after one warm-up call):

  page     the tab's gallery update: `analysis.misclassified` (sort and filter vary call by call) over all
           images, then `gallery.page` of 64 (upscaled 96x96 PIL images and captions); images come from the
           `sources_view` cache, as they do after the first view
  switch   what changes when the source changes: softmax of the [N, 10] logits, confusion matrix and the
           per-class table
  load     the whole `sources_view.load_source` of a run (SQLite read, softmax, labels, the images' hash
           check against the warm cache), then confusion matrix and per-class table

Target: p95 under 300 ms each; the script exits 1 when one is missed.
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np

from bench.targets import Targets
from store import Store
from workbench.data.datasets import load_dataset
from workbench.ensemble.calibration import softmax
from workbench.ensemble.lab import Lab
from workbench.inspect import analysis, gallery
from workbench.inspect import sources as sources_view
from workbench.specs.run import RunSpec

SHARED_CIFAR10 = ROOT.parent / "shared" / "data" / "cifar10-jpeg.tar.gz"
TARGET_MS = 300


def realistic_logits(y: np.ndarray, classes: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    difficulty = rng.gamma(2.0, 0.6, len(y))[:, None]
    z = rng.normal(0, 1, (len(y), classes)) * difficulty * 0.9
    z[np.arange(len(y)), y] += 4.0
    return (1.5 * z).astype(np.float32)


def spec_for(data: str, images: int) -> dict:
    if data == "synthetic":
        return RunSpec(dataset="synthetic", dataset_options={"n_train": 1000, "n_test": images}).to_dict()
    return RunSpec(dataset="cifar10", data_path=data).to_dict()


def measure(fn, calls: int) -> np.ndarray:
    fn(0)  # warm-up
    times = []
    for i in range(calls):
        start = time.perf_counter()
        fn(i + 1)
        times.append((time.perf_counter() - start) * 1000)
    return np.array(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=10000, help="test images (synthetic data only)")
    parser.add_argument("--calls", type=int, default=30)
    parser.add_argument("--data", default="auto", help="auto (real CIFAR-10 when present), synthetic, or a path")
    args = parser.parse_args()
    data = args.data
    if data == "auto":
        data = str(SHARED_CIFAR10) if SHARED_CIFAR10.exists() else "synthetic"

    started = time.perf_counter()
    dataset = (
        load_dataset("synthetic", None, n_train=1000, n_test=args.images)
        if data == "synthetic"
        else load_dataset("cifar10", data)
    )
    y, classes = dataset.y_test, dataset.num_classes
    print(f"data: {dataset.source}, {len(y)} test images, loaded in {time.perf_counter() - started:.1f} s")

    with tempfile.TemporaryDirectory() as folder, Store(Path(folder) / "bench.db") as store:
        runs = []
        for seed in (0, 1):
            run_id = store.create_run(f"bench-{seed}", spec_for(data, args.images))
            store.save_logits(run_id, "test", realistic_logits(y, classes, seed), y)
            store.set_status(run_id, "completed")
            runs.append(run_id)
        lab, cache = Lab(store), {}
        started = time.perf_counter()
        sources = [sources_view.load_source(store, lab, sources_view.source_key("run", r), "test", cache) for r in runs]
        print(f"first view (dataset load, split images, hash check): {time.perf_counter() - started:.2f} s")
        assert all(s.images_error is None for s in sources), sources[0].images_error
        accuracy = np.mean(sources[0].probs.argmax(1) == y)
        print(f"source accuracy {accuracy:.1%}, {len(analysis.misclassified(sources[0].probs, y))} errors\n")
        logits = [store.load_logits(r, "test") for r in runs]
        sorts = analysis.SORTS

        def page(i):
            source = sources[i % 2]
            images = sources_view.split_images(store, source.image_run, "test", cache)
            true_class = None if i % 3 else i % classes
            picked = analysis.misclassified(
                source.probs, source.labels, true_class=true_class, sort=sorts[i % len(sorts)], seed=i
            )
            shown = gallery.page(
                images, picked, source.probs, source.labels, source.class_names, page=i % 3, per_page=64
            )
            assert len(shown) <= 64

        def switch(i):
            probs = softmax(logits[i % 2])
            matrix = analysis.confusion_matrix(y, analysis.predictions(probs), classes)
            table = analysis.per_class(y, probs, dataset.class_names)
            assert matrix.sum() == len(y) and len(table) == classes

        def load(i):
            source = sources_view.load_source(store, lab, sources_view.source_key("run", runs[i % 2]), "test", cache)
            analysis.confusion_matrix(source.labels, analysis.predictions(source.probs), classes)
            analysis.per_class(source.labels, source.probs, source.class_names)

        results = {name: measure(fn, args.calls) for name, fn in (("page", page), ("switch", switch), ("load", load))}

    p = {name: (np.percentile(t, 50), np.percentile(t, 95)) for name, t in results.items()}
    print("| step (server time) | p50 | p95 |")
    print("|---|---|---|")
    labels = {
        "page": "gallery page of 64 (selection + page)",
        "switch": "source change: softmax + confusion matrix + per-class table",
        "load": "source change incl. store read (`load_source`)",
    }
    for name, (p50, p95) in p.items():
        print(f"| {labels[name]} | {p50:.1f} ms | {p95:.1f} ms |")
    print()
    targets = Targets()
    for step, (_, p95) in p.items():
        targets.below(f"{step} p95", p95, TARGET_MS, " ms")
    name = "CIFAR-10" if data != "synthetic" else "synthetic"
    print("\nREADME row:")
    p50s = " / ".join(f"{p[n][0]:.1f}" for n in p)
    p95s = " / ".join(f"{p[n][1]:.1f}" for n in p)
    print(
        f"| Errors tab, {len(y):,} {name} test images: gallery page of 64 (selection + page) / source change "
        f"(softmax + confusion matrix + per-class) / with store read | p50 {p50s} ms, p95 {p95s} ms "
        f"(target < {TARGET_MS} ms) | `python bench/errors.py` |"
    )
    return targets.exit_code()


if __name__ == "__main__":
    sys.exit(main())
