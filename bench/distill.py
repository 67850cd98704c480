"""Distillation: one model taught by an ensemble of three, against its twin trained alone, on real CIFAR-10.

    .venv/bin/python bench/distill.py            # the issue's size: the fast recipe (airbench_cpu, 5 epochs,
                                                 # all 45,000 training images): hours of a quiet 2-core CPU
    .venv/bin/python bench/distill.py --quick    # LeNet, 4,000 training images, 3 epochs: minutes
    .venv/bin/python bench/distill.py --quick --also 4,0.9   # and a student with T 4, alpha 0.9 per seed

Every run is trained by the job queue in this process's threads (JobQueue(isolate=False)) into a store in a
temporary folder, or with `--keep DIR` into DIR/distill.db, kept: a second invocation reuses the runs that
completed and resumes a stopped one from its checkpoint (bench/kept.py), so the full size can be trained over
several sittings. The teacher: a saved ensemble of three runs of the recipe (seeds 0, 1, 2; mean of
probabilities). For each of three paired seeds (10, 11, 12): the student (same model, recipe and epochs as a
member, online distillation with the defaults of workbench/specs/distill.py, T = 2, alpha = 0.5), its twin
without a teacher (the same seed: the same initialisation and batches), and the student in cached mode.
Reported: test accuracy (plain view) of each, the mean gain of the student over its twin (target: at least +1
point), the gap to the teacher ensemble, inference images/s of the student against the three members, and online
against cached (accuracy, training seconds). `--also T,ALPHA` (repeatable) adds, for each seed, an online
student with those settings, taught by the same teachers and compared with the same twin: settings compared
paired.

Data: --data (default ../shared/data/cifar10-jpeg.tar.gz); exits with a message when it is absent
(`--data synthetic`: 600 synthetic stripes, the tests' tiny size, not CIFAR).
Exits 1 when the gain target is missed.
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from bench.kept import bench_store, ensemble, ensemble_accuracy, seconds, train
from bench.targets import Targets
from workbench.constants import DistillMode
from workbench.specs import DistillSpec, RunSpec
from workbench.specs.presets import load_preset

SHARED_CIFAR = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10-jpeg.tar.gz"
GAIN_TARGET = 1.0  # points of test accuracy, the student over its twin, mean of the paired seeds
TEACHER_SEEDS = (0, 1, 2)
STUDENT_SEEDS = (10, 11, 12)


def recipe(args) -> dict:
    """The members' and students' settings: the fast preset's run, or the quick size's LeNet."""
    data = dict(dataset="cifar10", data_path=str(args.data), gpus=0)
    if str(args.data) == "synthetic":  # the stripes, for tests/test_bench.py: not CIFAR, no figure to report
        data = dict(dataset="synthetic", dataset_options={"n_train": 600, "n_test": 100}, gpus=0)
        return dict(
            model="lenet", epochs=args.epochs or 1, schedule="cosine", learning_rate=0.05, batch_size=50, **data
        )
    if args.quick:
        return dict(
            model="lenet",
            epochs=args.epochs or 3,
            schedule="cosine",
            learning_rate=0.05,
            batch_size=128,
            augment=("flip_crop",),
            train_subset=4000,
            val_size=1000,
            **data,
        )
    fast = load_preset("fast")[0].to_dict()
    epochs = {"epochs": args.epochs} if args.epochs else {}
    return {**{k: v for k, v in fast.items() if k not in ("name", "seed")}, **data, **epochs}


def images_per_second(paths: list[str], x: np.ndarray, repeats: int = 2) -> float:
    """Test images/s of the models in `paths` run one after another (an ensemble runs all its members)."""
    import keras

    models = [keras.models.load_model(p, safe_mode=True) for p in paths]
    for model in models:
        model.predict(x[:256], batch_size=256, verbose=0)  # traced before timing
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        for model in models:
            model.predict(x, batch_size=256, verbose=0)
        best = min(best, time.perf_counter() - started)
    return len(x) / best


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="LeNet, 4,000 images, 3 epochs (minutes)")
    parser.add_argument("--data", type=Path, default=SHARED_CIFAR, help="the CIFAR-10 archive ('synthetic': stripes)")
    parser.add_argument("--epochs", type=int, default=0, help="epochs of every run (default: the size's)")
    parser.add_argument("--seeds", type=int, default=3, help="paired student seeds (default 3)")
    parser.add_argument("--temperature", type=float, default=DistillSpec.temperature, help="T (default 2)")
    parser.add_argument("--alpha", type=float, default=DistillSpec.alpha, help="the soft targets' share (default 0.5)")
    parser.add_argument(
        "--keep",
        type=Path,
        metavar="DIR",
        help="train into DIR/distill.db and keep it: run again to reuse completed runs and resume stopped ones",
    )
    parser.add_argument(
        "--also",
        action="append",
        default=[],
        metavar="T,ALPHA",
        help="another online student per seed with these settings (repeatable), against the same twin",
    )
    args = parser.parse_args(argv)
    if str(args.data) != "synthetic" and not args.data.exists():
        print(f"no CIFAR-10 copy at {args.data}: give --data PATH (this benchmark needs the real images)")
        return 2
    try:
        also = [tuple(float(v) for v in text.split(",")) for text in args.also]
        assert all(len(pair) == 2 for pair in also)
    except (ValueError, AssertionError):
        parser.error("--also takes T,ALPHA, e.g. --also 2,0.5")
    base = recipe(args)
    print(f"recipe: {base}", flush=True)
    started = time.monotonic()
    with bench_store(args.keep, "distill") as (store, queue):
        print("teacher members:", flush=True)
        members = [train(queue, store, RunSpec.from_dict({**base, "seed": s}), f"teacher-s{s}") for s in TEACHER_SEEDS]
        teacher = ensemble(store, "teacher", [m["id"] for m in members])
        rows = []
        extra: dict[tuple, list] = {}  # (T, alpha) -> [(twin, student)] of --also
        for seed in STUDENT_SEEDS[: args.seeds]:
            print(f"seed {seed}:", flush=True)
            twin = train(queue, store, RunSpec.from_dict({**base, "seed": seed}), f"twin-s{seed}")
            taught = {
                "teacher": f"ensemble:{teacher}",
                "seed": seed,
                "temperature": args.temperature,
                "alpha": args.alpha,
            }
            online = train(queue, store, DistillSpec.from_dict({**base, **taught}), f"student-s{seed}")
            cached = DistillSpec.from_dict({**base, **taught, "distill_mode": DistillMode.CACHED})
            rows.append((seed, twin, online, train(queue, store, cached, f"cached-s{seed}")))
            for t, alpha in also:
                other = DistillSpec.from_dict({**base, **taught, "temperature": t, "alpha": alpha})
                extra.setdefault((t, alpha), []).append(
                    (twin, train(queue, store, other, f"student-T{t}-a{alpha}-s{seed}"))
                )
        teacher_acc = ensemble_accuracy(store, [m["id"] for m in members])
        from workbench.data.split import prepare_data

        data = prepare_data(RunSpec.from_dict(base), stats=True)
        x = ((data.dataset.x_test.astype(np.float32) - data.mean) / data.std).astype(np.float32)
        online_seconds = seconds(store, [online for _, _, online, _ in rows])
        cached_seconds = seconds(store, [cached for _, _, _, cached in rows])
        student_speed = images_per_second([rows[0][2]["checkpoint_path"]], x)
        ensemble_speed = images_per_second([m["checkpoint_path"] for m in members], x)
    size = "synthetic stripes" if str(args.data) == "synthetic" else "quick size" if args.quick else "full size"
    print(f"\n{size}, T {args.temperature}, alpha {args.alpha}: {time.monotonic() - started:.0f} s in all")
    print(f"teacher ensemble (3 x {base['model']}, mean of probabilities): test {teacher_acc:.2%}")
    print("seed  twin     student  gain    cached   twin s  online s  cached s")
    for seed, twin, online, cached in rows:
        print(
            f"{seed:<5} {twin['test_accuracy']:.2%}   {online['test_accuracy']:.2%}   "
            f"{100 * (online['test_accuracy'] - twin['test_accuracy']):+.2f}   {cached['test_accuracy']:.2%}   "
            f"{twin['train_seconds']:6.0f}  {online['train_seconds']:8.0f}  {cached['train_seconds']:8.0f}"
        )
    gains = [100 * (online["test_accuracy"] - twin["test_accuracy"]) for _, twin, online, _ in rows]
    mean_student = statistics.mean(online["test_accuracy"] for _, _, online, _ in rows)
    mean_cached = statistics.mean(cached["test_accuracy"] for _, _, _, cached in rows)
    print(f"mean gain of the student over its twin: {statistics.mean(gains):+.2f} points")
    print(f"gap of the student to the teacher ensemble: {100 * (teacher_acc - mean_student):.2f} points")
    # The cached mode's one pass of the teachers over the training images runs before its first epoch: in the
    # runs' seconds, not in their epochs'.
    print(
        f"online vs cached: {mean_student:.2%} vs {mean_cached:.2%} test; training, all seeds: "
        f"{online_seconds} vs {cached_seconds}"
    )
    print(
        f"inference: student {student_speed:,.0f} images/s, the 3-member ensemble {ensemble_speed:,.0f} images/s "
        f"({student_speed / ensemble_speed:.1f}x)"
    )
    for (t, alpha), pairs in extra.items():
        students = " / ".join(f"{o['test_accuracy']:.2%}" for _, o in pairs)
        gain = statistics.mean(100 * (o["test_accuracy"] - w["test_accuracy"]) for w, o in pairs)
        print(f"also T {t}, alpha {alpha} (online): students {students}; mean gain over the twins {gain:+.2f} points")
    targets = Targets()
    targets.at_least("mean gain of the student over its twin", statistics.mean(gains), GAIN_TARGET, unit=" points")
    return targets.exit_code()


if __name__ == "__main__":
    sys.exit(main())
