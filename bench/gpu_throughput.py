"""Training images/s of one model for a fixed number of steps, per precision, XLA setting and GPU count.

Data are random tensors already on the device's side of the pipeline (repeat of one batch), so the
figure is the model's training step, as a GPU shopping list would quote it. Run by bench/gpu_check.sh.
No speed target (it depends on the GPU): the script exits 1 when a setting fails to train. On a machine
without a GPU it measures the CPU (one row per setting), which is what its smoke test does.

    python bench/gpu_throughput.py --model wrn_28_10 --steps 30 --batch-size 128
"""

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import keras
import tensorflow as tf

from bench.targets import Targets
from workbench.specs.run import RunSpec
from workbench.training import devices
from workbench.training.runners import build_model, compile_model


class StepClock(keras.callbacks.Callback):
    def __init__(self, warmup):
        super().__init__()
        self.warmup, self.start, self.end = warmup, None, None

    def on_train_batch_end(self, batch, logs=None):
        if batch == self.warmup - 1:
            self.start = time.perf_counter()
        self.end = time.perf_counter()


def measure(spec: RunSpec, device_names: list, steps: int, warmup: int) -> float:
    strategy = devices.strategy_for(device_names)
    x = tf.random.normal((spec.batch_size, 32, 32, 3))
    y = tf.one_hot(tf.random.uniform((spec.batch_size,), 0, 10, tf.int32), 10)
    data = tf.data.Dataset.from_tensors((x, y)).repeat(steps + warmup)
    with strategy.scope():
        model = build_model(spec, 10, (32, 32, 3))
        compile_model(model, spec, steps + warmup)
    clock = StepClock(warmup)
    model.fit(data, epochs=1, callbacks=[clock], verbose=0)
    float(model.optimizer.iterations)  # wait for the device to finish
    clock.end = time.perf_counter()
    return steps * spec.batch_size / (clock.end - clock.start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="wrn_28_10")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--precisions", default="float32,mixed_float16,mixed_bfloat16")
    parser.add_argument("--xla", default="off,on")
    args = parser.parse_args()
    gpus = devices.gpu_names()
    print(f"devices: {devices.describe()}; TF {tf.__version__}, Keras {keras.__version__}", flush=True)
    counts = sorted({1, len(gpus)}) if gpus else [0]
    print("| model | GPUs | precision | XLA | images/s |\n|---|---|---|---|---|", flush=True)
    baseline, failed = None, []
    for count in counts:
        for precision in args.precisions.split(","):
            for xla in args.xla.split(","):
                spec = RunSpec.from_dict(
                    {
                        "model": args.model,
                        "batch_size": args.batch_size * max(1, count),
                        "precision": precision,
                        "xla": xla == "on",
                        "epochs": 1,
                    }
                )
                started = time.perf_counter()
                try:
                    rate = measure(spec, gpus[:count], args.steps, args.warmup)
                except Exception as exc:  # report and go on: one bad setting must not hide the others
                    failed.append(f"{count} GPUs {precision} XLA {xla}")
                    print(
                        f"| {args.model} | {count} | {precision} | {xla} | failed: {type(exc).__name__}: "
                        f"{str(exc).splitlines()[0][:120]} |",
                        flush=True,
                    )
                    continue
                baseline = baseline or rate
                print(
                    f"| {args.model} | {count} | {precision} | {xla} | {rate:,.0f} ({rate / baseline:.2f}x) |"
                    f" <!-- {time.perf_counter() - started:.0f}s incl. build/compile -->",
                    flush=True,
                )
                keras.backend.clear_session()
    targets = Targets()
    targets.holds("every GPU count, precision and XLA setting trains", not failed, "; ".join(failed) or "all did")
    return targets.exit_code()


if __name__ == "__main__":
    sys.exit(main())
