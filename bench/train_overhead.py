"""What the workbench path costs: training images/s through `workbench.train.fit` (tf.data with
flip_crop, store callbacks writing every epoch, a .keras checkpoint every epoch) against plain
`model.fit` on the same model, batch and validation data, fed already-augmented in-memory tensors.

Both sides run in one process, alternating, `--rounds` times; each side's rate is measured from the end
of its first epoch (tracing and warm-up excluded) to the end of its last. Target: ratio >= 0.95.

    .venv/bin/python bench/train_overhead.py [--model resnet20] [--images 4000] [--epochs 3] [--rounds 2]
"""
import argparse
import os
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from store import Store  # noqa: E402
from workbench.augment import build_augmenter  # noqa: E402
from workbench.spec import RunSpec  # noqa: E402
from workbench.train import build_model, compile_model, fit, prepare_data  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10-jpeg.tar.gz"


class EpochClock(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.ends = []

    def on_epoch_end(self, epoch, logs=None):
        self.ends.append(time.perf_counter())


def plain_fit(spec: RunSpec) -> float:
    """Images/s of model.fit on pre-augmented, pre-normalised float32 tensors."""
    data = prepare_data(spec)
    augment = build_augmenter(spec.augment, 32)
    one_hot = tf.one_hot(data.y_train, data.dataset.num_classes)
    x, _ = augment(tf.cast(data.x_train, tf.float32), one_hot, tf.constant([1, 2], tf.int64))
    x = ((x - data.mean) / data.std).numpy()
    x_val = ((data.x_val.astype(np.float32) - data.mean) / data.std)
    y_val = tf.one_hot(data.y_val, data.dataset.num_classes).numpy()
    keras.utils.set_random_seed(spec.seed)
    model = build_model(spec, data.dataset.num_classes, data.dataset.image_shape)
    compile_model(model, spec, len(x) // spec.batch_size)
    clock = EpochClock()
    model.fit(x, one_hot.numpy(), batch_size=spec.batch_size, epochs=spec.epochs, shuffle=True,
              validation_data=(x_val, y_val), callbacks=[clock], verbose=0)
    steps = len(x) // spec.batch_size + (len(x) % spec.batch_size > 0)
    return (spec.epochs - 1) * min(len(x), steps * spec.batch_size) / (clock.ends[-1] - clock.ends[0])


def workbench_fit(spec: RunSpec, folder: Path) -> float:
    """Images/s of the full workbench path, timed from the store's own epoch timestamps."""
    with Store(folder / f"bench-{time.time_ns()}.db") as store:
        run_id = store.create_run("bench", spec.to_dict())
        status = fit(spec, store, run_id, devices=[], stop=threading.Event())
        assert status == "completed", store.get_run(run_id)["error"]
        stamps = [datetime.fromisoformat(e["logged_at"]).timestamp() for e in store.epochs(run_id)]
        images = (len(prepare_data(spec, stats=False).x_train) // spec.batch_size) * spec.batch_size
    return (spec.epochs - 1) * images / (stamps[-1] - stamps[0])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="resnet20")
    parser.add_argument("--images", type=int, default=4000, help="training images per epoch")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    real = SHARED.exists()
    source = dict(dataset="cifar10", data_path=str(SHARED)) if real else dict(
        dataset="synthetic", dataset_options={"n_train": int(args.images * 1.25), "n_test": 500})
    spec = RunSpec.from_dict({**source, "model": args.model, "epochs": args.epochs, "batch_size": args.batch_size,
                              "augment": ["flip_crop"], "train_subset": args.images if real else 0,
                              "val_size": 1000, "schedule": "cosine"})
    print(f"model {args.model}, {args.images} training images, batch {args.batch_size}, {args.epochs} epochs, "
          f"{'real CIFAR-10' if real else 'synthetic data'}, {os.cpu_count()} CPU cores, TF {tf.__version__}")
    ratios = []
    with tempfile.TemporaryDirectory() as folder:
        for round_ in range(1, args.rounds + 1):
            plain = plain_fit(spec)
            ours = workbench_fit(spec, Path(folder))
            ratios.append(ours / plain)
            print(f"round {round_}: plain model.fit {plain:8.1f} img/s | workbench path {ours:8.1f} img/s | "
                  f"ratio {ours / plain:.3f}", flush=True)
    print(f"\nmedian ratio workbench/plain: {np.median(ratios):.3f} (target >= 0.95)")
    print(f"| training overhead ({args.model}, batch {args.batch_size}, CPU) | plain {plain:.0f} img/s | "
          f"workbench {ours:.0f} img/s | ratio {np.median(ratios):.3f} | `python bench/train_overhead.py` |")


if __name__ == "__main__":
    main()
