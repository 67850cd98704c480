"""`train`, `finetune` and `distill` (one run of that kind, followed until it ends), `train-all` (a preset's runs:
completed ones skipped, interrupted ones resumed) and `resume`, registered on the CLI's parser by `add_commands`.
Each says how long its work takes here (`workbench.jobs.estimate`) and, with --dry-run, stops there."""

import sys

from workbench.cli.common import open_store, prog
from workbench.cli.follow import follow
from workbench.cli.job_queue import add_queue_arguments, gpu_count, open_job_queue
from workbench.cli.presets import plan_preset, run_preset, save_ensembles
from workbench.constants import RunKind
from workbench.jobs.estimate import estimate
from workbench.jobs.estimate_many import estimate_many
from workbench.specs import DistillSpec, FinetuneSpec, RunSpec
from workbench.specs.flags import add_spec_arguments, parse_tags, spec_from_args
from workbench.specs.hardware import run_warning
from workbench.specs.presets import load_preset
from workbench.views.live import estimate_text, resume_message

RUN_COMMANDS = (  # (spec class, help, description): one run of that kind each
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
)


def add_run_commands(sub) -> None:
    """Add `train`, `finetune` and `distill` to the CLI's subparsers."""
    for spec_class, help_text, description in RUN_COMMANDS:
        command = sub.add_parser(spec_class.command, help=help_text, description=description)
        add_spec_arguments(command, spec_class)
        command.add_argument("--tags", default="", help="comma-separated tags for the run")
        command.add_argument(
            "--dry-run", action="store_true", help="say what would run and how long it takes, queue nothing"
        )
        add_queue_arguments(command)
        command.set_defaults(handler=train, spec_class=spec_class)


def add_preset_commands(sub) -> None:
    """Add `train-all` and `resume` to the CLI's subparsers."""
    train_all = sub.add_parser("train-all", help="train a preset list of runs; skips completed, resumes interrupted")
    train_all.add_argument("--preset", default="classic", help="preset name in presets/ or a .toml file path")
    train_all.add_argument("--data", dest="data_path", default=None, help="data path for runs that name none")
    train_all.add_argument(
        "--dry-run", action="store_true", help="list what would run and the time estimate, train nothing"
    )
    train_all.add_argument("--seeds", default=None, help="a sweep preset's seeds instead of its own (0,1,2 or 0-2)")
    add_queue_arguments(train_all)
    train_all.set_defaults(handler=train_all_command)

    resume = sub.add_parser("resume", help="continue a stopped run from its last checkpoint")
    resume.add_argument("run", type=int)
    add_queue_arguments(resume)
    resume.set_defaults(handler=resume_command)


def hint(spec) -> str:
    """The advice for a run long for a CPU: the quick preset for a training run, what shortens a fine-tune."""
    if spec.kind == RunKind.FINETUNE:
        return "fewer --head-epochs/--finetune-epochs, a smaller --size or a --train-subset make it shorter."
    return (
        f"{prog()} train-all --preset quick trains runs that finish in minutes; fewer --epochs or a "
        "--train-subset shorten this one."
    )


def train(args):
    """`train`, `finetune` and `distill`: one run of the subcommand's spec class, followed until it ends."""
    spec = spec_from_args(args, args.spec_class)
    if args.dry_run:
        return dry_run(args, spec)
    store = open_store(args)
    with open_job_queue(args, store) as queue:
        run_id = queue.submit(spec, tags=parse_tags(args.tags))
        warn(spec, len(queue.gpus))
        print(f"run {run_id}: {spec.display_name()}  ({store.path})")
        print(estimate_text(estimate(spec, store, len(queue.gpus)), hint=hint(spec), markdown=False), flush=True)
        return follow(queue, store, [run_id])


def warn(spec, gpus: int) -> None:
    """What the run's settings cost on this machine (mixed_bfloat16 on a CPU without bfloat16), on stderr."""
    warning = run_warning(spec, gpus)
    if warning:
        print(f"warning: {warning}", file=sys.stderr, flush=True)


def dry_run(args, spec) -> int:
    """`train --dry-run` / `finetune --dry-run`: the run that would be queued and its time estimate; nothing
    written (no store, no folder, no lock: the store is only read, and only when it exists)."""
    gpus = gpu_count()
    spec = spec.validate(available_gpus=gpus)
    warn(spec, gpus)
    store = open_store(args, create=False)
    if store is not None:  # what the spec names in the store (a distillation's teacher), checked as queueing would
        spec = spec.resolved(store)
    tags = parse_tags(args.tags)
    print(f"would queue: {spec.display_name()}" + (f", tagged {','.join(tags)}" if tags else ""))
    print(estimate_text(estimate(spec, store, gpus), hint=hint(spec), markdown=False))
    print("dry run: nothing queued")
    return 0


def resume_command(args):
    store = open_store(args)
    with open_job_queue(args, store) as queue:
        epoch = queue.resume(args.run)
        print(resume_message(store.get_run(args.run), epoch, store.seen_runs()), flush=True)  # where it starts
        return follow(queue, store, [args.run])


def train_all_command(args):
    preset = load_preset(args.preset, seeds=args.seeds)
    store = open_store(args, create=not args.dry_run)  # a dry run reads the store only if it exists
    if preset.sweep:
        print(f"sweep {preset.sweep.name}: {preset.sweep.count_text()}, tagged {preset.sweep.tag}")
    if args.dry_run:
        print_plan(plan_preset(preset, store, data_path=args.data_path), store)
        print("dry run: nothing queued")
        return 0
    with open_job_queue(args, store) as queue:
        save_ensembles(preset.ensembles, store)  # those whose runs completed in an earlier train-all
        # Again while it saves one of the preset's own ensembles: the distillations waiting for it run then
        while True:
            plan = plan_preset(preset, store, data_path=args.data_path)
            print_plan(plan, store)
            status = run_preset(plan, store, queue=queue)
            waiting = [s for s in plan if s.action == "wait"]
            if status or not waiting:
                return status
            if not save_ensembles(preset.ensembles, store):  # nothing new to teach them: they cannot run
                print(f"{len(waiting)} run(s) not trained, their teacher missing: {waiting[0].reason}")
                return 1


def print_plan(plan, store) -> None:
    for step in plan:
        line = f"  {step.action:8s} {step.spec.display_name()}" + (f"  (run {step.run_id})" if step.run_id else "")
        print(line + (f": {step.reason}" if step.action == "wait" else ""))
    print(plan_time(plan, store), flush=True)


def plan_time(plan, store) -> str:
    """How long a train-all plan takes here: its new runs, and its resumed ones from their last epoch."""
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
    return time_text(estimate_many(specs, store, gpu_count()))
