"""The fast recipe on real CIFAR-10: test accuracy against training wall time, and the quick preset's ensemble.

    .venv/bin/python bench/fast_recipe.py [--data ../shared/data/cifar10-jpeg.tar.gz] [--small]
        [--epochs N] [--skip-curve] [--skip-ensemble]
    .venv/bin/python bench/fast_recipe.py --preset speedrun --skip-ensemble      # one GPU (bench/gpu_check.sh)
    .venv/bin/python bench/fast_recipe.py --skip-ensemble --train-subset 10000 --epochs 2 --no-lookahead
        # an ablation: each piece of the recipe on or off by flag (--dirac/--no-dirac, --bn-bias-lr 1,
        # --whiten-bias-epochs 0, --lookahead-every 0 / --no-lookahead, --low-res-epochs N, --xla/--no-xla)

1. Curve: presets/fast.toml's run (airbench_cpu, the cifar10-airbench recipe) trained with the workbench's
   own pieces (data split, runner, pipeline, optimizer, schedule, whitening init from the training images);
   after each epoch the test accuracy is measured outside the training clock, and a line prints epoch,
   training wall seconds (cumulative, the first epoch's tracing included) and test accuracy. After the
   last epoch the weights become the optimizer's EMA (Keras' `use_ema`): its test accuracy, plain and with
   flip + translate test-time augmentation (the mean probability of the six views a run stores).
2. Ensemble: presets/quick.toml's three fast runs, trained through `workbench.training.fit` into a
   temporary store as the app does, then combined by `workbench.ensemble.lab` (equal weights, mean of
   probabilities) against the best of them on test, without and with flip + translate TTA.

Targets (2-core CPU): at least 85% test accuracy within 900 s of training; the three-member ensemble at
least 1 point above its best member (plain predictions). `--preset speedrun` (presets/speedrun.toml:
airbench94, mixed precision, XLA) times the curve on a GPU instead: 94% test accuracy within 15 s. Exits 1 if
one is missed. `--small` runs both parts in a minute or two on a few thousand images with a narrow net (for
tests/test_bench.py, with `--data synthetic`: its accuracies mean nothing and it misses its targets).
"""

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from workbench.training.threads import configure_threads, set_thread_environment

set_thread_environment()  # as a job's process does (workbench.jobs.child): before TensorFlow's import

import keras
import numpy as np

from bench.targets import Targets
from workbench.data.pipeline import make_dataset, steps_per_epoch
from workbench.data.split import prepare_data
from workbench.ensemble import lab
from workbench.ensemble.calibration import softmax
from workbench.specs.presets import load_preset
from workbench.training.fit import TRANSLATE_VIEWS, VIEWS, batch_options
from workbench.training.runners import runner_for

configure_threads()  # the job's cores, before TensorFlow runs an op

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "cifar10-jpeg.tar.gz"
TARGETS = {"fast": (0.85, 900), "speedrun": (0.94, 15)}  # preset: (test accuracy, within seconds of training)
ENSEMBLE_GAIN_TARGET = 1.0
SMALL = dict(train_subset=2000, model_kwargs={"widths": [8, 16, 16]}, batch_size=128)


class Curve(keras.callbacks.Callback):
    """Training seconds per epoch (the epoch's own clock) and the test accuracy after it (unclocked)."""

    def __init__(self, test_ds, y_test):
        super().__init__()
        self.test_ds, self.y_test, self.seconds, self.cpu, self.rows = test_ds, y_test, 0.0, 0.0, []

    def on_epoch_begin(self, epoch, logs=None):
        self.started, self.cpu_started = time.perf_counter(), time.process_time()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds += time.perf_counter() - self.started
        self.cpu += time.process_time() - self.cpu_started
        accuracy = accuracy_of(self.model, self.test_ds, self.y_test)
        self.rows.append((epoch + 1, self.seconds, accuracy))
        print(f"{epoch + 1:>5} {self.seconds:>12.1f} {self.cpu:>11.1f} {100 * accuracy:>9.2f}", flush=True)


def accuracy_of(model, ds, y) -> float:
    return float((model.predict(ds, verbose=0).argmax(1) == y).mean())


def tta_accuracy(model, x, y, batches, spec) -> float:
    """Accuracy of the mean probability over the views a run stores (plain, flip, translated)."""
    views = VIEWS + (TRANSLATE_VIEWS if "translate" in spec.augment else ())
    probs = 0.0
    for _, flip, shifts in views:
        logits = np.mean(
            [model.predict(make_dataset(x, y, batches, flip=flip, shift=s), verbose=0) for s in shifts], axis=0
        )
        probs = probs + softmax(logits)
    return float((np.argmax(probs, 1) == y).mean())


def curve(spec, accuracy_target: float, test_subset: int = 0, tta: bool = True) -> dict:
    runner = runner_for(spec)
    keras.utils.set_random_seed(spec.seed)
    data = prepare_data(spec, stats=runner.normalizes)
    batches = batch_options(spec, data, runner)
    model = runner.build(data.dataset.num_classes, data.dataset.image_shape, restoring=False)
    runner.init_from_data(model, data, batches)
    phase = runner.phases(steps_per_epoch(len(data.x_train), spec.batch_size))[0]
    phase.prepare(model)
    train_ds = make_dataset(
        data.x_train,
        data.y_train,
        batches,
        training=True,
        augment=spec.augment,
        augment_options=spec.augment_params,
        seed=spec.seed,
        low_res_epochs=spec.low_res_epochs,
    )
    x_test, y_test = data.dataset.x_test, data.dataset.y_test
    if test_subset:  # ablations: the first N test images (a relative figure, not the recipe's)
        x_test, y_test = x_test[:test_subset], y_test[:test_subset]
    test_ds = make_dataset(x_test, y_test, batches)
    callback = Curve(test_ds, y_test)
    print(
        f"{spec.model} {spec.model_kwargs or ''}: {model.count_params():,} parameters, {len(data.x_train):,} "
        f"training images, batch {spec.batch_size}, {spec.epochs} epochs; {recipe_line(spec)}"
    )
    # CPU seconds: the process's, all threads; on a machine shared with other work they say what the
    # training cost, while wall seconds also count the time others held the cores.
    print("epoch  train wall s  train CPU s  test acc %")
    model.fit(train_ds, epochs=spec.epochs, callbacks=[*phase.callbacks, callback], verbose=0, shuffle=False)
    final = accuracy_of(model, test_ds, y_test)  # after fit: the EMA weights (use_ema) where the spec asks
    tta = tta_accuracy(model, x_test, y_test, batches, spec) if tta else float("nan")
    print(
        f"final weights{' (EMA)' if spec.ema_momentum else ''}: test {100 * final:.2f}%, with flip + translate "
        f"TTA {100 * tta:.2f}%; last epoch's raw weights {100 * callback.rows[-1][2]:.2f}%; "
        f"training {callback.seconds:.0f} s ({callback.seconds / 60:.1f} min), {callback.cpu:.0f} CPU s "
        f"({os.cpu_count()} cores: at least {callback.cpu / os.cpu_count() / 60:.1f} min of wall time alone)"
    )
    reached = next((s for _, s, a in callback.rows if a >= accuracy_target), None)
    return {"rows": callback.rows, "final": final, "tta": tta, "seconds": callback.seconds, "reached": reached}


def recipe_line(spec) -> str:
    """The recipe's pieces as this run has them (what an ablation row varies)."""
    return (
        f"dirac {'on' if spec.dirac_init else 'off'}, BN bias lr x{spec.bn_bias_lr:g}, whitening bias "
        f"{spec.whiten_bias_epochs} epochs, lookahead every {spec.lookahead_every or '-'} steps, "
        f"{spec.low_res_epochs} epochs at 24 px, XLA {'on' if spec.xla else 'off'}, {spec.precision}"
    )


def recipe_overrides(args) -> dict:
    """The preset's recipe settings the flags change (none given: the preset's own)."""
    given = {
        "dirac_init": args.dirac,
        "bn_bias_lr": args.bn_bias_lr,
        "whiten_bias_epochs": args.whiten_bias_epochs,
        "lookahead_every": 0 if args.lookahead is False else args.lookahead_every,
        "low_res_epochs": args.low_res_epochs,
        "xla": args.xla,
        "seed": args.seed,
    }
    return {k: v for k, v in given.items() if v is not None}


def ensemble(specs) -> dict:
    from store import Store
    from workbench.training.fit import fit

    with tempfile.TemporaryDirectory() as folder:
        store = Store(Path(folder) / "bench.db")
        ids = []
        for spec in specs:
            run_id = store.create_run(spec.display_name(), spec.to_dict())
            started = time.perf_counter()
            status = fit(spec, store, run_id, devices=[], stop=threading.Event())
            run = store.get_run(run_id)
            print(
                f"  {spec.name}: {status}, test {100 * run['test_accuracy']:.2f}%, "
                f"{time.perf_counter() - started:.0f} s with its evaluation",
                flush=True,
            )
            ids.append(run_id)
        members = lab.Lab(store).load(ids)
        result = {}
        for label, settings in (
            ("plain", lab.Settings()),
            ("flip + translate TTA", lab.Settings(tta=True, translate=True)),
        ):
            scored = lab.score(members, [1.0] * len(ids), settings)
            best = max(row["test_accuracy"] for row in scored["members"])
            gain = 100 * (scored["test"]["accuracy"] - best)
            shown = ", ".join(f"{100 * r['test_accuracy']:.2f}%" for r in scored["members"])
            print(
                f"  {label}: members {shown}; "
                f"ensemble {100 * scored['test']['accuracy']:.2f}% ({gain:+.2f} points over the best)"
            )
            result[label] = gain
        store.close()
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--preset", choices=sorted(TARGETS), default="fast", help="the curve's recipe")
    parser.add_argument("--small", action="store_true", help="tiny: a 2,000-image subset, a narrow net, 2 epochs")
    parser.add_argument("--epochs", type=int, help="override the fast recipe's epochs")
    parser.add_argument("--train-subset", type=int, default=0, help="train on N images of the split (0: all)")
    recipe = parser.add_argument_group("the recipe's pieces (default: the preset's values)")
    recipe.add_argument("--dirac", action=argparse.BooleanOptionalAction, help="identity init of the 3x3 convs")
    recipe.add_argument("--bn-bias-lr", type=float, help="BatchNorm bias learning-rate multiplier (1: off)")
    recipe.add_argument("--whiten-bias-epochs", type=int, help="epochs the whitening bias trains (0: no bias)")
    recipe.add_argument("--lookahead-every", type=int, help="lookahead sync every N steps (0: off)")
    recipe.add_argument("--lookahead", action=argparse.BooleanOptionalAction, help="--no-lookahead: off")
    recipe.add_argument("--low-res-epochs", type=int, help="progressive resolution: first N epochs at 24 px")
    recipe.add_argument("--xla", action=argparse.BooleanOptionalAction, help="jit_compile the training step")
    recipe.add_argument("--seed", type=int, help="the run's seed (default: the preset's)")
    parser.add_argument("--test-subset", type=int, default=0, help="score on the first N test images (ablations)")
    parser.add_argument("--skip-tta", action="store_true", help="no test-time augmentation pass (ablations)")
    parser.add_argument("--skip-curve", action="store_true")
    parser.add_argument("--skip-ensemble", action="store_true")
    args = parser.parse_args(argv)
    common = dict(data_path=args.data, gpus=0 if args.preset == "fast" else -1)
    if args.data == "synthetic":  # for tests: generated stripes, no archive needed
        common = dict(common, dataset="synthetic", data_path="", dataset_options={"n_train": 2400, "n_test": 400})
    if args.train_subset:
        common["train_subset"] = args.train_subset
    if args.small:
        common |= SMALL | {"epochs": 2, "warmup_epochs": 0.5}
    targets = Targets()
    if not args.skip_curve:
        accuracy_target, seconds_target = TARGETS[args.preset]
        spec = load_preset(args.preset)[0].replace(**common, **recipe_overrides(args))
        if args.epochs:  # the warm-up keeps its share of the run
            spec = spec.replace(epochs=args.epochs, warmup_epochs=spec.warmup_epochs * args.epochs / spec.epochs)
        print(f"== curve: presets/{args.preset}.toml on this machine")
        result = curve(spec, accuracy_target, args.test_subset, tta=not args.skip_tta)
        best = max(a for _, _, a in result["rows"])
        within = max((a for _, s, a in result["rows"] if s <= seconds_target), default=0.0)
        if result["seconds"] <= seconds_target:  # the whole run trained in time: its final figures count,
            # with its test-time augmentation (issue 25's target: TTA passes off the training clock)
            within = max(within, result["final"], *([result["tta"]] if result["tta"] == result["tta"] else []))
        reached = f"{result['reached']:.1f} s" if result["reached"] else "never"
        print(f"best epoch-end test accuracy {100 * best:.2f}%; {100 * accuracy_target:.0f}% reached after {reached}")
        targets.at_least(
            f"test accuracy (with TTA when all epochs fit) within {seconds_target} s of training",
            100 * within,
            100 * accuracy_target,
            unit="%",
        )
    if not args.skip_ensemble and args.preset == "fast":
        members = [s for s in load_preset("quick") if s.model.startswith("airbench")]
        print(f"== ensemble: the quick preset's {len(members)} fast runs")
        gains = ensemble([s.replace(**common) for s in members])
        targets.at_least(
            "three-member ensemble over its best member (test, plain)",
            gains["plain"],
            ENSEMBLE_GAIN_TARGET,
            unit=" points",
        )
    return targets.exit_code()


if __name__ == "__main__":
    sys.exit(main())
