"""Peak memory of fine-tuning at 96x96 on the CPU: the workbench pipeline (uint8 32x32 images in memory,
augmented and resized per batch inside tf.data) against the naive approach (tf.image.resize of the
whole set to 96x96 float32 held in memory, then model.fit on the arrays).

Each side runs in a fresh subprocess and reports the operating system's accounting: the resident set
after the imports (VmRSS) and the peak (`resource.getrusage(RUSAGE_SELF).ru_maxrss`). Both train the
same model the same way: VGG19 built with weights=None (the ImageNet weights would only fill the same
arrays: same memory), phase-2 setup (block5 and the head trainable, BatchNorm-free VGG, SGD + Nesterov),
batch 64, 2,000 training images. On 2 CPU cores one VGG19 epoch at 96x96 takes minutes, so by default
each side runs a fixed number of steps (--steps; 0 = the whole epoch): the peak is reached in the first
steps (the per-step working set does not grow), and images/s leaves out the first (tracing) step.
Target: the workbench pipeline under 4 GB (the script exits 1 above it). The naive side's memory is
extrapolated to 50,000 images.

    .venv/bin/python bench/finetune_memory.py [--images 2000] [--steps 12] [--size 96] [--batch-size 64]
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared" / "data" / "cifar10-jpeg.tar.gz"
GB = 1024**3
TARGET_GB = 4

from bench.targets import Targets


def vm_rss() -> int:
    """Current resident set in bytes (Linux /proc)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def child(args) -> dict:
    """One measurement in this (fresh) process; prints one JSON line."""
    import keras
    import numpy as np
    import tensorflow as tf

    from workbench.data.pipeline import BatchOptions, make_dataset
    from workbench.training import backbones as finetune

    after_imports = vm_rss()
    result = {"side": args.child, "after_imports": after_imports}
    if args.child == "baseline":
        return {**result, "peak": peak_rss()}
    data = np.load(args.data)
    x, y = data["x"], data["y"]
    spec = finetune.FinetuneSpec(
        backbone="vgg19", weights="none", image_size=args.size, batch_size=args.batch_size, augment=()
    ).validate()
    keras.utils.set_random_seed(0)
    model, backbone = finetune.build_model(spec, 10)
    finetune.set_phase(backbone, 2, finetune.unfreeze_index(spec, backbone))
    finetune.compile_phase(model, spec, 2)
    steps = args.steps or len(x) // args.batch_size
    if args.child == "pipeline":  # what finetune.fit feeds: 0..255 pixels resized per batch in tf.data
        batches = BatchOptions(
            num_classes=10, batch_size=args.batch_size, mean=np.zeros(3), std=np.ones(3), resize_to=args.size
        )
        train = make_dataset(x, y, batches, training=True, augment=("flip_crop",))
        feed = dict(x=train)
    else:  # naive: the resized float32 set materialised, then model.fit on arrays
        resized = tf.image.resize(tf.cast(x, tf.float32), (args.size, args.size)).numpy()
        result["materialised_bytes"] = resized.nbytes
        feed = dict(x=resized, y=np.eye(10, dtype=np.float32)[y], batch_size=args.batch_size, shuffle=True)
    clock = []

    class Clock(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            clock.append(time.perf_counter())

    model.fit(**feed, epochs=1, steps_per_epoch=steps, verbose=0, callbacks=[Clock()])
    timed = len(clock) - 1
    result.update(
        peak=peak_rss(),
        steps=len(clock),
        images_per_s=timed * args.batch_size / (clock[-1] - clock[0]) if timed else None,
    )
    return result


def measure(side: str, args, data_file: str) -> dict:
    command = [
        sys.executable,
        __file__,
        "--child",
        side,
        "--data",
        data_file,
        "--steps",
        str(args.steps),
        "--size",
        str(args.size),
        "--batch-size",
        str(args.batch_size),
    ]
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode or not lines:
        raise SystemExit(f"{side} measurement failed:\n{done.stderr[-3000:]}")
    return json.loads(lines[-1])


def load_images(n: int):
    """n training images: a seeded random subset of real CIFAR-10 when this checkout has it, else synthetic."""
    import numpy as np

    from workbench.data.datasets import load_dataset

    if SHARED.exists():
        dataset, what = load_dataset("cifar10", str(SHARED)), "real CIFAR-10"
    else:
        dataset, what = load_dataset("synthetic", n_train=n, n_test=10), "synthetic CIFAR-sized data"
    keep = np.sort(np.random.default_rng(0).permutation(len(dataset.x_train))[:n])
    return dataset.x_train[keep].copy(), dataset.y_train[keep].copy(), what


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=2000, help="training images held in memory")
    parser.add_argument("--steps", type=int, default=12, help="training steps per side (0: one whole epoch)")
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--child", choices=("baseline", "pipeline", "naive"), help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args)), flush=True)
        return 0
    import numpy as np

    started = time.perf_counter()
    x, y, what = load_images(args.images)
    steps = args.steps or args.images // args.batch_size
    print(
        f"vgg19 (weights=None: same memory as ImageNet weights), {args.size}x{args.size}, batch {args.batch_size}, "
        f"{args.images} {what} images held, {steps} training steps per side "
        f"({'a whole epoch' if not args.steps else 'a fixed number of steps, not a whole epoch'}), "
        f"{os.cpu_count()} CPU cores; each side in a fresh process"
    )
    with tempfile.TemporaryDirectory() as folder:
        data_file = str(Path(folder) / "images.npz")
        np.savez(data_file, x=x, y=y)
        results = {side: measure(side, args, data_file) for side in ("baseline", "pipeline", "naive")}
    base, pipe, naive = results["baseline"], results["pipeline"], results["naive"]
    print(f"\nafter imports (TensorFlow, Keras, workbench): {base['after_imports'] / GB:.2f} GB resident")
    for name, r in (
        ("workbench pipeline (resize per batch in tf.data)", pipe),
        ("naive (materialised float32 96x96, model.fit)", naive),
    ):
        print(
            f"{name:52s} peak {r['peak'] / GB:5.2f} GB (+{(r['peak'] - r['after_imports']) / GB:.2f} GB over "
            f"imports), {r['images_per_s']:.1f} img/s over {r['steps'] - 1} timed steps"
        )
    print(
        "(img/s here comes from separate processes on shared cores and is noisy; measured in one process, "
        "alternating, both sides train at the same speed: the per-batch resize is not the bottleneck)"
    )
    ratio = naive["peak"] / pipe["peak"]
    per_image = (naive["peak"] - pipe["peak"]) / args.images  # what materialising costs per image, measured
    array_50k = 50_000 * args.size * args.size * 3 * 4
    naive_50k = pipe["peak"] + per_image * 50_000
    print(
        f"naive / pipeline peak: {ratio:.2f}x; the materialised array alone is "
        f"{naive['materialised_bytes'] / GB:.2f} GB for {args.images} images"
    )
    print(
        f"50,000 images: the float32 {args.size}x{args.size} array alone is {array_50k / GB:.2f} GB "
        f"({array_50k / 1e9:.1f} GB decimal); at the measured {per_image / 1024**2:.3f} MiB per image the naive "
        f"peak would be ~{naive_50k / GB:.1f} GB, while the pipeline holds 50,000 uint8 32x32 images in "
        f"{50_000 * 32 * 32 * 3 / GB:.2f} GB"
    )
    print(f"bench took {time.perf_counter() - started:.0f} s")
    print(
        f"| fine-tune memory (vgg19, {args.size}px, batch {args.batch_size}, {args.images} images, CPU, {steps} steps) "
        f"| pipeline peak {pipe['peak'] / GB:.2f} GB, {pipe['images_per_s']:.1f} img/s; naive materialised "
        f"{naive['peak'] / GB:.2f} GB ({ratio:.2f}x), ~{naive_50k / GB:.1f} GB at 50k images | "
        "`python bench/finetune_memory.py` |"
    )
    targets = Targets()
    targets.below("workbench pipeline peak memory", pipe["peak"] / GB, TARGET_GB, " GB")
    return targets.exit_code()


if __name__ == "__main__":
    sys.exit(main())
