"""`python -m workbench` or `workbench`: train, finetune, distill, sweep, sweeps, search, studies, train-all, resume,
runs, export, ensemble, models — headless.

Every failure a user can cause ends in one line on stderr and exit status 2, never a traceback.
"""

import argparse
import functools
import os
import sys
import time
from pathlib import Path
from typing import NoReturn

from workbench.cli.accounts import add_commands as add_account_commands
from workbench.cli.export import MODEL_FORMATS, export_run
from workbench.cli.features import add_commands as add_feature_commands
from workbench.cli.job_queue import add_queue_arguments, check_queue_flags, open_job_queue
from workbench.cli.labels import add_commands as add_label_commands
from workbench.cli.presets import percent, plan_preset, run_preset, save_ensembles
from workbench.cli.search import add_commands as add_search_commands
from workbench.cli.sweep import add_commands as add_sweep_commands
from workbench.constants import RunKind, RunPhase, RunStatus
from workbench.errors import UserError
from workbench.jobs.estimate import estimate, estimate_many
from workbench.jobs.malloc_tuning import limit_arenas
from workbench.specs import DistillSpec, FinetuneSpec, RunSpec
from workbench.specs.flags import add_spec_arguments, parse_tags, spec_from_args
from workbench.specs.hardware import run_warning
from workbench.specs.presets import load_preset
from workbench.training.tensorboard import export as export_tensorboard
from workbench.views.live import estimate_text, phase_of, progress_facts, resume_message
from workbench.views.runs import lineage

COMMANDS = (
    "train, finetune, distill, sweep, sweeps, search, studies, crossval, train-all, resume, runs, export, ensemble, "
    "models, label-issues, duplicates, map, hash-password, audit"
)


def console() -> NoReturn:
    """The `workbench` command (pyproject's [project.scripts]) and `python -m workbench`.

    The exit status is main()'s (the runs' statuses), and the process ends right after it: its work is done
    (the store committed, the queue and Ray shut down, files closed), and what Python's finalization would still
    run is TensorFlow's and Ray's native teardown, whose threads must not turn a finished command's status into
    a crash's (issue 28: "run 1 completed", then a non-zero exit on a loaded machine)."""
    limit_arenas()  # before TensorFlow starts its threads: see workbench.jobs.malloc_tuning
    status = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.db = getattr(args, "db", None)  # neither before nor after the subcommand: the default store
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    try:
        check_queue_flags(args)  # a command that runs jobs: its Ray flags' mistakes before the store is opened
        return args.handler(args) or 0
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)  # Ctrl-C stopped the command: not a run status
        return 130


def _prog() -> str:
    """The command as the user typed it, for usage lines and hints."""
    return "workbench" if Path(sys.argv[0]).name == "workbench" else "python -m workbench"


def build_parser() -> argparse.ArgumentParser:
    # The global flags are accepted before or after the subcommand (`runs --db X` as well as `--db X runs`):
    # every subcommand gets them with SUPPRESS as default, so one given before is not overwritten.
    global_flags = argparse.ArgumentParser(add_help=False)
    global_flags.add_argument(
        "--db", default=argparse.SUPPRESS, help="the store's SQLite file (default: $WORKBENCH_DB or runs/workbench.db)"
    )
    parser = argparse.ArgumentParser(prog=_prog(), description="CIFAR Workbench, headless.", parents=[global_flags])
    sub = parser.add_subparsers(dest="command", metavar="{" + COMMANDS.replace(" ", "") + "}")
    # every subcommand takes the global flags (type: ignore: mypy refuses assigning to a method)
    sub.add_parser = functools.partial(sub.add_parser, parents=[global_flags])  # type: ignore[method-assign]

    for spec_class, help_text, description in (
        (
            RunSpec,
            "train one run (Ctrl-C cancels it; `resume` continues it)",
            "Train one run. Every setting has a flag; defaults are the classic recipe.",
        ),
        (
            FinetuneSpec,
            "fine-tune an ImageNet backbone on CIFAR (two phases, one run)",
            "Fine-tune a Keras application or TF Hub backbone on CIFAR resized on the fly.",
        ),
        (
            DistillSpec,
            "train one model taught by a saved ensemble or a run (knowledge distillation)",
            "Train a zoo model (every flag of `train`) with a teacher's soft targets: "
            "alpha*T^2*KL(teacher_T || student_T) + (1-alpha)*loss on the labels.",
        ),
    ):
        command = sub.add_parser(spec_class.command, help=help_text, description=description)
        add_spec_arguments(command, spec_class)
        command.add_argument("--tags", default="", help="comma-separated tags for the run")
        command.add_argument(
            "--dry-run", action="store_true", help="say what would run and how long it takes, queue nothing"
        )
        add_queue_arguments(command)
        command.set_defaults(handler=_train, spec_class=spec_class)
    add_sweep_commands(sub, follow=_follow, open_store=_open_store)
    add_search_commands(sub, open_store=_open_store)
    add_label_commands(sub, follow=_follow, open_store=_open_store)
    add_feature_commands(sub, open_store=_open_store)

    train_all = sub.add_parser("train-all", help="train a preset list of runs; skips completed, resumes interrupted")
    train_all.add_argument("--preset", default="classic", help="preset name in presets/ or a .toml file path")
    train_all.add_argument("--data", dest="data_path", default=None, help="data path for runs that name none")
    train_all.add_argument(
        "--dry-run", action="store_true", help="list what would run and the time estimate, train nothing"
    )
    train_all.add_argument("--seeds", default=None, help="a sweep preset's seeds instead of its own (0,1,2 or 0-2)")
    add_queue_arguments(train_all)
    train_all.set_defaults(handler=_train_all)

    resume = sub.add_parser("resume", help="continue a stopped run from its last checkpoint")
    resume.add_argument("run", type=int)
    add_queue_arguments(resume)
    resume.set_defaults(handler=_resume)

    runs = sub.add_parser("runs", help="table of the runs in the store")
    runs.add_argument("--status", default=None, help="only runs with this status")
    runs.add_argument("--all", action="store_true", help="include archived runs")
    runs.set_defaults(handler=_runs)

    export = sub.add_parser(
        "export",
        help="export a run's epochs (csv), logits and labels (npz), its model with its "
        "preprocessing (keras, savedmodel, tflite, onnx; and a JSON of class names and spec) or "
        "TensorBoard events",
    )
    export.add_argument("run", type=_run_or_all, help="a run id, or 'all' (tensorboard only)")
    export.add_argument(
        "--format", choices=("csv", "npz", "keras", "savedmodel", "tflite", "onnx", "tensorboard"), default="csv"
    )
    export.add_argument(
        "--output",
        "-o",
        default=None,
        help="file to write (default: run-N.csv / run-N.npz / "
        "run-N.keras / run-N-savedmodel (a folder) / run-N.tflite / run-N.onnx; tensorboard: the "
        "folder for --logdir, default <store>-tensorboard beside the store)",
    )
    export.set_defaults(handler=_export)

    ensemble = sub.add_parser("ensemble", help="combine completed runs: weights chosen on validation, test reported")
    ensemble.add_argument("runs", nargs="+", type=int, metavar="RUN", help="ids of completed runs (at least two)")
    ensemble.add_argument(
        "--method",
        choices=("grid", "greedy", "optimize", "vote", "uniform"),
        default="grid",
        help="grid search, greedy selection, NLL-optimal weights, majority vote, or equal weights",
    )
    ensemble.add_argument("--space", choices=("prob", "logit"), default="prob", help="average probabilities or logits")
    ensemble.add_argument("--temperature", action="store_true", help="temperature-scale each member first")
    ensemble.add_argument("--tta", action="store_true", help="average each member with its flipped predictions")
    ensemble.add_argument(
        "--translate",
        action="store_true",
        help="also average in its translated predictions (runs trained with --augment translate "
        "store them; with --tta: the six-view TTA of the fast recipe)",
    )
    ensemble.add_argument("--step", type=float, default=0.1, help="grid step (default 0.1)")
    ensemble.add_argument("--save", metavar="NAME", help="save the ensemble to the store under NAME")
    ensemble.set_defaults(handler=_ensemble)

    zoo = sub.add_parser("models", help="list the model zoo with parameter counts")
    zoo.set_defaults(handler=lambda args: _print_models())
    add_account_commands(sub, open_store=_open_store)
    return parser


def _open_store(args, create=True):
    """The --db store (default: $WORKBENCH_DB or runs/workbench.db). With `create=False`, None when its file
    does not exist yet: a dry run estimates without history rather than create a store (or its folder)."""
    from store import Store, default_db_path  # noqa: PLC0415 - pandas: sqlite_utils imports it (seconds); --help needs no store

    path = Path(args.db) if args.db else default_db_path()
    if not create and not path.is_file():
        return None
    return Store(path)


def _hint(spec) -> str:
    """The advice for a run long for a CPU: the quick preset for a training run, what shortens a fine-tune."""
    if spec.kind == RunKind.FINETUNE:
        return "fewer --head-epochs/--finetune-epochs, a smaller --size or a --train-subset make it shorter."
    return (
        f"{_prog()} train-all --preset quick trains runs that finish in minutes; fewer --epochs or a "
        "--train-subset shorten this one."
    )


def _train(args):
    """`train` and `finetune`: one run of the subcommand's spec class, followed until it ends."""
    spec = spec_from_args(args, args.spec_class)
    if args.dry_run:
        return _dry_run(args, spec)
    store = _open_store(args)
    with open_job_queue(args, store) as queue:
        run_id = queue.submit(spec, tags=parse_tags(args.tags))
        _warn(spec, len(queue.gpus))
        print(f"run {run_id}: {spec.display_name()}  ({store.path})")
        print(estimate_text(estimate(spec, store, len(queue.gpus)), hint=_hint(spec), markdown=False), flush=True)
        return _follow(queue, store, [run_id])


def _warn(spec, gpu_count: int) -> None:
    """What the run's settings cost on this machine (mixed_bfloat16 on a CPU without bfloat16), on stderr."""
    warning = run_warning(spec, gpu_count)
    if warning:
        print(f"warning: {warning}", file=sys.stderr, flush=True)


def _dry_run(args, spec) -> int:
    """`train --dry-run` / `finetune --dry-run`: the run that would be queued and its time estimate; nothing
    written (no store, no folder, no lock: the store is only read, and only when it exists)."""
    from workbench.training.devices import gpu_names  # noqa: PLC0415 - TensorFlow: it counts the GPUs

    gpus = len(gpu_names())
    spec = spec.validate(available_gpus=gpus)
    _warn(spec, gpus)
    store = _open_store(args, create=False)
    if store is not None:  # what the spec names in the store (a distillation's teacher), checked as queueing would
        spec = spec.resolved(store)
    tags = parse_tags(args.tags)
    print(f"would queue: {spec.display_name()}" + (f", tagged {','.join(tags)}" if tags else ""))
    print(estimate_text(estimate(spec, store, gpus), hint=_hint(spec), markdown=False))
    print("dry run: nothing queued")
    return 0


def _resume(args):
    store = _open_store(args)
    with open_job_queue(args, store) as queue:
        epoch = queue.resume(args.run)
        print(resume_message(store.get_run(args.run), epoch, store.seen_runs()), flush=True)  # where it starts
        return _follow(queue, store, [args.run])


PROGRESS_EVERY = 30.0  # seconds between progress lines inside a long epoch or the final evaluation


def _follow(queue, store, run_ids, prefix="", every=PROGRESS_EVERY):
    """Print each new epoch until the runs end, and what a run is doing (its phase, rate and remaining
    time, as the live panel says it) when that changes or every `every` seconds inside a long epoch or
    the final evaluation; Ctrl-C cancels them (resumable later)."""
    shown = {run_id: 0 for run_id in run_ids}
    said: dict[int, tuple[str | None, float]] = {
        run_id: (None, 0.0) for run_id in run_ids
    }  # (phase, when) of each run's last progress line
    try:
        while True:
            for run_id in run_ids:
                epochs = store.epochs(run_id)
                for row in epochs[shown[run_id] :]:
                    shown[run_id] = row["epoch"]
                    total = store.get_run(run_id)["spec"]["epochs"]
                    print(
                        f"{prefix}run {run_id} epoch {row['epoch']}/{total}: loss {_f(row['loss'])} "
                        f"acc {percent(row['accuracy'])} val_acc {percent(row['val_accuracy'])} "
                        f"lr {_f(row['lr'], 5)} ({row['seconds']:.1f}s)",
                        flush=True,
                    )
                    said[run_id] = (said[run_id][0], time.monotonic())  # an epoch line says enough for now
                run = store.get_run(run_id)
                phase, last = phase_of(run), said[run_id]
                # Each epoch's validation counts as training here: said every `every` s, not at each switch.
                phase = RunPhase.TRAINING if phase == RunPhase.EVAL_EPOCH else phase
                if phase and (phase != last[0] or time.monotonic() - last[1] >= every):
                    print(f"{prefix}run {run_id}: {' · '.join(progress_facts(run, epochs))}", flush=True)
                    said[run_id] = (phase, time.monotonic())
            if all(queue.wait(r, timeout=0) for r in run_ids):
                break
            time.sleep(0.5)
    except KeyboardInterrupt:
        for run_id in run_ids:
            if run_id in queue.active():
                queue.cancel(run_id)
        queue.shutdown()
        print(f"cancelled; continue with: {_prog()} resume {' '.join(map(str, run_ids))}", file=sys.stderr)
        return 130
    failed = 0
    for run_id in run_ids:
        run = store.get_run(run_id)
        line = f"{prefix}run {run_id} {run['status']}"
        if run["status"] == RunStatus.COMPLETED:
            line += (
                f": best val {percent(run['best_val_accuracy'])} (epoch {run['best_epoch']}), "
                f"test {percent(run['test_accuracy'])}"
            )
        elif run["error"]:
            line += f": {run['error'].splitlines()[0]}"
            failed += 1
        print(line, flush=True)
    return 1 if failed else 0


def _f(value, digits=4):
    return "-" if value is None else f"{value:.{digits}f}"


def _train_all(args):
    preset = load_preset(args.preset, seeds=args.seeds)
    store = _open_store(args, create=not args.dry_run)  # a dry run reads the store only if it exists
    if preset.sweep:
        print(f"sweep {preset.sweep.name}: {preset.sweep.count_text()}, tagged {preset.sweep.tag}")
    if args.dry_run:
        _print_plan(plan_preset(preset, store, data_path=args.data_path), store)
        print("dry run: nothing queued")
        return 0
    with open_job_queue(args, store) as queue:
        # Again while it saves one of the preset's own ensembles: the distillations waiting for it run then
        while True:
            save_ensembles(preset.ensembles, store)
            plan = plan_preset(preset, store, data_path=args.data_path)
            _print_plan(plan, store)
            status = run_preset(plan, store, queue=queue)
            waiting = [s for s in plan if s.action == "wait"]
            if status or not waiting:
                return status
            if not save_ensembles(preset.ensembles, store):  # nothing new to teach them: they cannot run
                print(f"{len(waiting)} run(s) not trained, their teacher missing: {waiting[0].reason}")
                return 1


def _print_plan(plan, store) -> None:
    for step in plan:
        line = f"  {step.action:8s} {step.spec.display_name()}" + (f"  (run {step.run_id})" if step.run_id else "")
        print(line + (f": {step.reason}" if step.action == "wait" else ""))
    print(_plan_time(plan, store), flush=True)


def _plan_time(plan, store) -> str:
    """How long a train-all plan takes here: its new runs, and its resumed ones from their last epoch."""
    from workbench.training.devices import gpu_names  # noqa: PLC0415 - TensorFlow: it counts the GPUs
    from workbench.views.sweeps import time_text  # noqa: PLC0415 - SciPy: views.sweeps imports it (seconds); --help needs none

    specs = []
    for step in plan:
        if step.action in ("new", "wait"):  # a waiting distillation runs once its teacher is saved
            specs.append(step.spec)
        elif step.action == "resume":
            left = step.spec.epochs - (store.get_run(step.run_id)["epochs_done"] or 0)
            specs.append(step.spec.replace(epochs=max(1, left)))
    if not specs:
        return "Time: nothing to run (every run is completed or skipped)."
    return time_text(estimate_many(specs, store, len(gpu_names())))


def _runs(args):
    from workbench.inspect.reviewed import with_reviewed  # noqa: PLC0415 - loads stored test logits only where reviews exist

    store = _open_store(args)
    runs = store.seen_runs(status=args.status, include_archived=args.all)  # a dead runner's runs: interrupted
    runs = with_reviewed(store, runs)  # test accuracy on the reviewed test set too, where it has reviews
    header = (
        f"{'id':>4}  {'name':36s} {'status':11s} {'epochs':>7s} {'best val':>8s} {'test':>7s} {'reviewed':>8s} "
        f"{'params':>8s}  by"
    )
    print(header)
    print("-" * len(header))
    for run in runs:
        epochs = f"{run['epochs_done'] or 0}/{run['spec'].get('epochs', '?')}"
        params = f"{run['params'] / 1e6:.2f}M" if run["params"] else "-"
        print(
            f"{run['id']:>4}  {run['name'][:36]:36s} {run['status']:11s} {epochs:>7s} "
            f"{percent(run['best_val_accuracy']):>8s} {percent(run['test_accuracy']):>7s} "
            f"{percent(run['reviewed_test_accuracy']):>8s} {params:>8s}"
            f"  {run.get('created_by') or '-'}"
        )
        if lineage(run):
            print(f"{'':6s}{lineage(run)}")
    if not runs:
        print(f"(no runs yet: {_prog()} train --help)")


def _run_or_all(text: str):
    if text == "all":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a run id or 'all', got {text!r}") from None


def _export(args):
    if args.format == "tensorboard":
        return _export_tensorboard(args)
    if args.run == "all":
        raise UserError(
            "'all' exports TensorBoard events only (--format tensorboard); name one run for csv, npz or a model format"
        )
    from workbench.predict.export import metadata_path  # noqa: PLC0415 - Keras: predict.export imports it at the top

    path = export_run(_open_store(args), args.run, args.format, args.output)
    print(f"wrote {path}")
    if args.format in MODEL_FORMATS:
        print(f"wrote {metadata_path(path)} (class names, preprocessing, the run's spec)")


def _export_tensorboard(args):
    logdir, written, notes = export_tensorboard(_open_store(args), args.run, args.output)
    for note in notes:
        print(f"  {note}")
    if not written:
        raise UserError(f"no run with epochs to export{' among them' if args.run == 'all' else ''}")
    print(f"wrote {len(written)} run(s) to {logdir}; view them: tensorboard --logdir {logdir}")


def _ensemble(args):
    from workbench.ensemble import lab  # noqa: PLC0415 - SciPy: ensemble.calibration imports it (seconds); --help needs none

    store = _open_store(args)
    members = lab.Lab(store).load(args.runs)
    settings = lab.Settings(
        method="vote" if args.method == "vote" else "mean",
        space=args.space,
        temperature=args.temperature,
        tta=args.tta,
        translate=args.translate,
    )
    weights = [1.0] * len(members.ids)
    if args.method in lab.SEARCHES:
        weights = lab.search(members, settings, args.method, step=args.step)["weights"]
    scored = lab.score(members, lab.relative_weights(weights), settings)
    temperature = f" {'T':>5s}" if settings.temperature else ""  # a column only when it is applied
    print(
        f"{'run':>5}  {'name':32s} {'weight':>7s}{temperature} "
        f"{'val acc':>8s} {'test acc':>8s} {'test NLL':>8s} {'test ECE':>8s}"
    )
    for member, weight in zip(scored["members"], scored["weights"]):
        temperature = f" {member['temperature']:5.2f}" if settings.temperature else ""
        print(
            f"{member['id']:>5}  {member['name'][:32]:32s} {weight:7.3f}{temperature} "
            f"{percent(member['val_accuracy']):>8s} {percent(member['test_accuracy']):>8s} "
            f"{member['test_nll']:8.4f} {percent(member['test_ece']):>8s}"
        )
    print(f"\nensemble ({settings.describe()}; weights chosen by {args.method} on validation, the largest at 1):")
    for label, split in (("validation", scored["val"]), ("test", scored["test"])):
        nll = "n/a (vote)" if split["nll"] is None else f"{split['nll']:.4f}"
        print(f"  {label + ':':11s} accuracy {percent(split['accuracy'])}  NLL {nll}  ECE {percent(split['ece'])}")
    if args.save:
        ensemble_id = lab.save(store, members, scored, settings, args.save)
        print(f"saved as ensemble {ensemble_id}: {args.save}")


def _print_models():
    from models.__main__ import main as print_table  # noqa: PLC0415 - Keras: the zoo builds its models with it

    print_table([])


if __name__ == "__main__":
    sys.exit(console())
