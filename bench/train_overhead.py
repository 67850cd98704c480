"""What the workbench path costs: training images/s through `workbench.training.fit.fit` (tf.data with
flip_crop, store callbacks writing every epoch, a .keras checkpoint every epoch) against plain
`model.fit` on the same model, batch and validation data, fed already-augmented in-memory tensors.

Both sides are built in one process and trained epoch by epoch in turn; each side's first epoch
(tracing and warm-up) is left out. Target: ratio >= 0.95; the script exits 1 when it is missed.

    .venv/bin/python bench/train_overhead.py [--model resnet20] [--images 4000] [--epochs 6]
"""

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import keras
import numpy as np
import tensorflow as tf

from bench.targets import Targets
from store import Store
from workbench.data.augment.ops import build_augmenter
from workbench.data.pipeline import BatchOptions, make_dataset
from workbench.data.split import prepare_data
from workbench.specs.run import RunSpec
from workbench.training.checkpoint import StoreCallback
from workbench.training.runners import build_model, compile_model

TARGET_RATIO = 0.95
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10-jpeg.tar.gz"


def build_sides(spec: RunSpec, store: Store):
    """Two identical models: one fed pre-augmented tensors, one fed by the workbench pipeline + callbacks."""
    data = prepare_data(spec)
    classes = data.dataset.num_classes
    steps = len(data.x_train) // spec.batch_size
    augment = build_augmenter(spec.augment, 32)
    one_hot = tf.one_hot(data.y_train, classes)
    x, _ = augment(tf.cast(data.x_train, tf.float32), one_hot, tf.constant([1, 2], tf.int64))
    plain_x = ((x - data.mean) / data.std).numpy()[: steps * spec.batch_size]
    plain_y = one_hot.numpy()[: steps * spec.batch_size]
    plain_val = ((data.x_val.astype(np.float32) - data.mean) / data.std, tf.one_hot(data.y_val, classes).numpy())
    models = []
    for _ in range(2):
        keras.utils.set_random_seed(spec.seed)
        model = build_model(spec, classes, data.dataset.image_shape)
        compile_model(model, spec, steps)
        models.append(model)
    batches = BatchOptions(num_classes=classes, batch_size=spec.batch_size, mean=data.mean, std=data.std)
    train_ds = make_dataset(data.x_train, data.y_train, batches, training=True, augment=spec.augment, seed=spec.seed)
    val_ds = make_dataset(data.x_val, data.y_val, batches)
    run_id = store.create_run("bench", spec.to_dict())
    callback = StoreCallback(store, run_id, store.run_dir(run_id), threading.Event())

    def plain_epoch(epoch):
        models[0].fit(
            plain_x,
            plain_y,
            batch_size=spec.batch_size,
            epochs=epoch + 1,
            initial_epoch=epoch,
            shuffle=True,
            validation_data=plain_val,
            verbose=0,
        )

    def workbench_epoch(epoch):
        models[1].fit(
            train_ds,
            validation_data=val_ds,
            epochs=epoch + 1,
            initial_epoch=epoch,
            callbacks=[callback],
            verbose=0,
            shuffle=False,
        )

    return plain_epoch, workbench_epoch, steps * spec.batch_size


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="resnet20")
    parser.add_argument("--images", type=int, default=4000, help="training images per epoch")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args()
    real = SHARED.exists()
    source = (
        dict(dataset="cifar10", data_path=str(SHARED))
        if real
        else dict(dataset="synthetic", dataset_options={"n_train": int(args.images * 1.25), "n_test": 500})
    )
    spec = RunSpec.from_dict(
        {
            **source,
            "model": args.model,
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "augment": ["flip_crop"],
            "train_subset": args.images if real else 0,
            "val_size": 1000 if real else 0,
            "schedule": "cosine",
        }
    )
    print(
        f"model {args.model}, {args.images} training images, batch {args.batch_size}, {args.epochs} epochs, "
        f"{'real CIFAR-10' if real else 'synthetic data'}, {os.cpu_count()} CPU cores, TF {tf.__version__}"
    )
    # Epochs alternate between the two sides, so the machine's noise falls on both alike; each side's
    # first epoch (tracing, warm-up) is left out.
    with tempfile.TemporaryDirectory() as folder, Store(Path(folder) / "bench.db") as store:
        plain_epoch, workbench_epoch, images = build_sides(spec, store)
        times = {"plain": [], "workbench": []}
        for epoch in range(args.epochs):
            for side, run_epoch in (("plain", plain_epoch), ("workbench", workbench_epoch)):
                started = time.perf_counter()
                run_epoch(epoch)
                times[side].append(time.perf_counter() - started)
            if epoch:
                print(
                    f"epoch {epoch + 1}: plain {images / times['plain'][-1]:7.1f} img/s | workbench "
                    f"{images / times['workbench'][-1]:7.1f} img/s",
                    flush=True,
                )
        assert len(store.epochs(1)) == args.epochs
    plain = images * (args.epochs - 1) / sum(times["plain"][1:])
    ours = images * (args.epochs - 1) / sum(times["workbench"][1:])
    print(
        f"\nplain model.fit {plain:.1f} img/s, workbench path {ours:.1f} img/s: ratio {ours / plain:.3f} "
        "(target >= 0.95; both include validation, ours also the per-epoch store rows and checkpoint)"
    )
    print(
        f"| training overhead ({args.model}, batch {args.batch_size}, {args.images} images, CPU) | plain {plain:.0f} "
        f"img/s, workbench {ours:.0f} img/s, ratio {ours / plain:.3f} | `python bench/train_overhead.py` |"
    )
    targets = Targets()
    targets.at_least("workbench path vs plain model.fit, images/s", ours / plain, TARGET_RATIO)
    return targets.exit_code()


if __name__ == "__main__":
    sys.exit(main())
