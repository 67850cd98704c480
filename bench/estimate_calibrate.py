"""Measure the time estimator's constants (`workbench/jobs/speeds.json`) on this machine: for each zoo
family (at one real variant) and each fine-tune backbone, in a fresh process each, the seconds of
building and compiling the model, of a training step at two batch sizes (-> a fixed cost per step and a
cost per image), of the first step (the graph's tracing) and of a forward-pass batch (the validation and
the final evaluation) at two batch sizes; once, the input pipeline's seconds per image for each
augmentation, and a job's start (the process, TensorFlow's import, the cached data). Random pixels, the
product's own model builders, compile and tf.data pipeline.

    python bench/estimate.py --calibrate [--families lenet,resnet] [--write]

is the entry point (`bench/estimate.py`); this module does the measuring.
"""

import itertools
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.cpu_share import Window

SPEEDS = ROOT / "workbench" / "jobs" / "speeds.json"

# family -> (the variant measured, (small batch, large batch), training steps timed per batch size).
FAMILIES = {
    "lenet": ("lenet", (32, 128), 12),
    "airbench": ("airbench_cpu", (32, 128), 6),
    "resnet": ("resnet20", (32, 128), 6),
    "vgg": ("vgg11_bn", (32, 128), 4),
    "nin": ("nin", (32, 128), 3),
    "densenet_bc": ("densenet_bc_100_12", (32, 64), 3),
    "wide_resnet": ("wrn_16_8", (16, 32), 3),
    "resnext": ("resnext29_4x64d", (8, 16), 3),
}
BACKBONE_BATCHES = {"vgg19": (8, 16), "convnext_tiny": (8, 16), "resnet50_v2": (16, 32), "inception_v3": (16, 32)}
BACKBONE_SIZE = 96  # FinetuneSpec's default input size


def _times(kind: str):
    """A Keras callback keeping the time at the end of each batch of `kind` (train or predict)."""
    import keras

    class Clock(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.marks = []

        def _mark(self, *_):
            self.marks.append(time.perf_counter())

    clock = Clock()
    setattr(clock, f"on_{kind}_begin", lambda *_, **__: clock._mark())
    setattr(clock, f"on_{kind}_batch_end", lambda *_, **__: clock._mark())
    return clock


def _steps(marks: list[float]) -> tuple[float, float]:
    """(first step's seconds, median seconds of the others)."""
    gaps = [b - a for a, b in itertools.pairwise(marks)]
    return gaps[0], statistics.median(gaps[1:] or gaps)


def _line(small: tuple[int, float], large: tuple[int, float]) -> tuple[float, float]:
    """(seconds per step, seconds per image) through two (batch, seconds) points, neither negative."""
    (b1, t1), (b2, t2) = small, large
    per_image = max((t2 - t1) / (b2 - b1), t2 / b2 * 0.05)
    overhead = t2 - per_image * b2
    # A negative fixed cost (the small batch cheaper per image than the large: a busy moment) or one above
    # half the small batch's step: neither is a fixed cost per step; the large batch's step counts per image.
    return (overhead, per_image) if 0.0 <= overhead <= t1 / 2 else (0.0, t2 / b2)


def measure_one(name: str) -> dict:
    """The constants of one family (a zoo family's name) or backbone ("finetune:<backbone>")."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.path.insert(0, str(ROOT))
    import numpy as np

    from workbench.data.pipeline import BatchOptions, make_dataset
    from workbench.specs.finetune import FinetuneSpec
    from workbench.specs.run import RunSpec
    from workbench.training.runners import runner_for

    if name.startswith("finetune:"):
        backbone = name.split(":", 1)[1]
        batches, steps = BACKBONE_BATCHES.get(backbone, (16, 64)), 3
        spec = FinetuneSpec(backbone=backbone, weights="none", gpus=0, head_epochs=1, finetune_epochs=1)
        variant = backbone
    else:
        variant, batches, steps = FAMILIES[name]
        spec = RunSpec(model=variant, gpus=0, epochs=1, schedule="cosine")
    rng = np.random.default_rng(0)
    n = max(batches) * (steps + 1)
    x, y = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, n)
    mean, std = np.full(3, 120.0, np.float32), np.full(3, 64.0, np.float32)
    window = Window().start()  # the others' share of the cores while this measures (bench/cpu_share.py)
    started = time.perf_counter()
    runner = runner_for(spec)
    model = runner.build(10, (32, 32, 3), restoring=False)
    phases = runner.phases(steps)
    phases[0].prepare(model)
    build = time.perf_counter() - started
    result: dict = {"variant": variant, "build": round(build, 3), "batches": list(batches)}
    for label, phase in (("train", phases[0]), ("train2", phases[-1] if len(phases) > 1 else None)):
        if label == "train2":
            if phase is None:
                break
            phase.prepare(model)
        points, traces = [], []
        for batch in batches:
            options = BatchOptions(10, batch, mean, std, resize_to=runner.resize_to)
            ds = make_dataset(x[: batch * (steps + 1)], y[: batch * (steps + 1)], options, training=True, augment=())
            clock = _times("train")
            model.fit(ds, epochs=1, verbose=0, callbacks=[clock], shuffle=False)
            first, step = _steps(clock.marks)
            points.append((batch, step))
            traces.append(first - step)
        result[label] = [round(v, 6) for v in _line(*points)]
        result[f"{label}_trace"] = round(max(traces[-1], 0.0), 3)
    points, traces = [], []
    evals = 3 * steps + 1  # a forward pass costs about a third of a training step: more of them, as cheaply
    x, y = (
        rng.integers(0, 256, (max(batches) * evals, 32, 32, 3), dtype=np.uint8),
        rng.integers(0, 10, max(batches) * evals),
    )
    for batch in batches:
        options = BatchOptions(10, batch, mean, std, resize_to=runner.resize_to)
        ds = make_dataset(x[: batch * evals], y[: batch * evals], options)
        clock = _times("predict")
        model.predict(ds, verbose=0, callbacks=[clock])
        first, step = _steps(clock.marks)
        points.append((batch, step))
        traces.append(first - step)
    result["eval"] = [round(v, 6) for v in _line(*points)]
    result["eval_trace"] = round(max(traces[-1], 0.0), 3)
    window.stop()
    result["load"] = window.load
    return result


def measure_pipeline() -> dict:
    """Seconds per image of the training pipeline alone, for no augmentation and each augmentation."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.path.insert(0, str(ROOT))
    import numpy as np

    from workbench.data.augment.ops import AUGMENTATIONS
    from workbench.data.pipeline import BatchOptions, make_dataset

    x = np.random.default_rng(0).integers(0, 256, (128 * 20, 32, 32, 3), dtype=np.uint8)
    y = np.zeros(len(x), np.int64)
    options = BatchOptions(10, 128, np.full(3, 120.0, np.float32), np.full(3, 64.0, np.float32))
    seconds: dict[str, float] = {}
    window = Window().start()
    for _ in range(3):  # the least of three rounds: the cores are shared, and a busy moment only adds
        for augment in ("none", *AUGMENTATIONS):
            ds = make_dataset(x, y, options, training=True, augment=() if augment == "none" else (augment,))
            for _ in ds.take(2):
                pass
            started = time.perf_counter()
            for _ in ds:
                pass
            took = (time.perf_counter() - started) / len(x)
            seconds[augment] = min(seconds.get(augment, took), took)
    window.stop()
    base = seconds.pop("none")
    figures = {"none": round(base, 7), **{k: round(max(v - base, 0.0), 7) for k, v in seconds.items()}}
    return {"seconds": figures, "load": window.load}


def measure_start() -> dict:
    """Seconds from a new Python process to the job's data in memory: TensorFlow's import, the cached
    data (CIFAR-10 from the shared archive when present, its decode cache warmed first)."""
    code = (
        "import time,sys; t=time.perf_counter(); sys.path.insert(0, %r);"
        "import tensorflow, keras, models; from workbench.specs.run import RunSpec;"
        "from workbench.data.split import prepare_data; from workbench.training import fit;"
        "prepare_data(RunSpec(data_path=%r, train_subset=5000)); print(time.perf_counter()-t)"
    )
    data = ROOT.parent / "shared" / "data" / "cifar10-jpeg.tar.gz"
    command = [sys.executable, "-c", code % (str(ROOT), str(data) if data.exists() else "")]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    subprocess.run(command, capture_output=True, env=env, check=True)  # warms the decode cache
    started = time.perf_counter()
    with subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env) as child:
        window = Window(child.pid).start()
        child.wait()
    window.stop()
    return {"seconds": round(time.perf_counter() - started, 2), "load": window.load}


def _in_child(what: str) -> dict:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    out = subprocess.run(
        [sys.executable, __file__, what], capture_output=True, text=True, env=env, check=False, cwd=ROOT
    )
    if out.returncode:
        raise RuntimeError(f"measuring {what} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def calibrate(names: list[str], write: bool) -> dict:
    table = json.loads(SPEEDS.read_text()) if SPEEDS.exists() else {}
    if names and all(n == "job" or n.startswith("job:") for n in names):  # job factors alone (of some families)
        _job_factors([n.removeprefix("job:") for n in names if n != "job"], table)
        return table
    # Each figure's "load": the effective load it was timed at, from the CPU the rest of the machine used
    # meanwhile (bench/cpu_share.py), by which the estimator brings it to an otherwise idle machine.
    loads: list[float] = []
    if not names or "start" in names:
        table["start"] = measure_start()
        loads.append(table["start"]["load"])
        print(f"start: {table['start']}", flush=True)
    if not names or "pipeline" in names:
        table["pipeline"] = _in_child("pipeline")
        loads.append(table["pipeline"]["load"])
        print(f"pipeline: {table['pipeline']}", flush=True)
    for name in names or [*FAMILIES, *(f"finetune:{b}" for b in _backbones())]:
        if name in ("start", "pipeline"):
            continue
        started = time.perf_counter()
        figures = _in_child(name)
        figures["measured"] = date.today().isoformat()
        loads.append(figures["load"])
        table.setdefault("cpu", {})[name] = figures
        print(f"{name}: {json.dumps(figures)} ({time.perf_counter() - started:.0f} s)", flush=True)
        if write:  # after each: a long calibration keeps what it measured so far
            _write(table, loads)
    if write:
        _write(table, loads)
        print(f"wrote {SPEEDS}")
        _job_factors(names, table)
    return table


def _job_factors(names: list[str], table: dict) -> None:
    """Each family's job factor, from a real run at half the checked run's training images (bench/estimate_runs.py),
    with the constants just written: its measured time over their estimate at the load it saw."""
    from bench.estimate_runs import RUNS, estimated, timed

    for family in [n for n in names or RUNS if n in RUNS]:
        figures = table["cpu"][family]
        figures.pop("job", None)
        SPEEDS.write_text(json.dumps(table, indent=1, sort_keys=True) + "\n")
        argv, seconds, load, failure = timed(family, half=True)
        if failure:
            raise RuntimeError(f"the {family} run failed:\n{failure}")
        with_constants = estimated(argv, load, fresh=True)
        figures["job"] = round(seconds / with_constants, 3)
        SPEEDS.write_text(json.dumps(table, indent=1, sort_keys=True) + "\n")
        print(f"{family}: job factor {figures['job']} ({seconds:.1f} s measured at effective load {load})", flush=True)


def _write(table: dict, loads: list[float]) -> None:
    cpu = f"{os.cpu_count()} CPU cores, {platform.processor() or platform.machine()}"
    table["machine"] = f"{platform.node() or 'this machine'} ({cpu})"
    table["measured"] = date.today().isoformat()
    table["load"] = round(statistics.mean(loads or [float(os.cpu_count() or 2)]), 1)
    table["cores"] = os.cpu_count()
    SPEEDS.write_text(json.dumps(table, indent=1, sort_keys=True) + "\n")


def _backbones() -> list[str]:
    sys.path.insert(0, str(ROOT))
    from workbench.specs.finetune import BACKBONES

    return list(BACKBONES)


if __name__ == "__main__":  # a child: measure one thing, print it as JSON
    what = sys.argv[1]
    print(json.dumps(measure_pipeline() if what == "pipeline" else measure_one(what)))
