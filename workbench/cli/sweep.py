"""`sweep` (queue the cross product of several values per setting, tagged `sweep:NAME`, and follow it) and
`sweeps` (list them, or show one as the seed's table with a paired comparison), registered on the CLI's
parser by `add_commands`. The expansion is `workbench.specs.sweep`'s, the tables `workbench.views.sweeps`'."""

from datetime import datetime

from workbench.cli.job_queue import add_queue_arguments, gpu_count, list_then_queue
from workbench.errors import UserError
from workbench.specs.flags import add_spec_arguments, flag, parse_tags, spec_from_args
from workbench.specs.run import RunSpec
from workbench.specs.sweep import AXES, AXIS_NAMES, Sweep, default_name, submit_sweep

AXIS_FLAGS = {
    "model": "--models",
    "loss": "--losses",
    "augment": "--augments",
    "schedule": "--schedules",
    "learning_rate": "--learning-rates",
    "seed": "--seeds",
}
AXIS_HELP = {
    "model": "models to train, comma-separated (e.g. resnet20,wrn_16_8)",
    "loss": "losses, comma-separated (cross_entropy,focal,label_smoothing)",
    "augment": "augmentation sets separated by ';', each comma-separated ('flip_crop;flip_crop,cutout;none')",
    "schedule": "learning-rate schedules, comma-separated (step,cosine,htd,constant)",
    "learning_rate": "learning rates, comma-separated (0.1,0.05)",
    "seed": "seeds, comma-separated or a range (0,1,2 or 0-4)",
}


def add_commands(sub, *, follow, open_store) -> None:
    """Add `sweep` and `sweeps` to the CLI's subparsers; `follow(queue, store, run_ids)` and `open_store(args)`
    are the CLI's own (following runs until they end, the --db store; `open_store(args, create=False)`: None
    where the store's file does not exist)."""
    sweep = sub.add_parser(
        "sweep",
        help="queue the cross product of several models/losses/augmentations/schedules/lrs/seeds as one sweep",
        description="Queue every combination of the values given (the other settings as for `train`), tagged "
        "sweep:NAME, and follow them; every run is validated before any is queued.",
    )
    sweep.add_argument(
        "sweep_name",
        nargs="?",
        default="",
        metavar="NAME",
        help="the sweep's name, its runs' tag sweep:NAME (default: sweep-MMDD-HHMM)",
    )
    for axis in AXES:
        sweep.add_argument(
            AXIS_FLAGS[axis], dest=f"sweep_{axis}", default=None, metavar=axis.upper() + "S", help=AXIS_HELP[axis]
        )
    add_spec_arguments(sweep, RunSpec)
    sweep.add_argument("--tags", default="", help="more comma-separated tags for every run")
    sweep.add_argument("--dry-run", action="store_true", help="list the runs and the time estimate, queue nothing")
    add_queue_arguments(sweep)
    sweep.set_defaults(handler=lambda args: run_sweep(args, follow, open_store))

    show = sub.add_parser("sweeps", help="list the sweeps, or show one: mean ± std over seeds and a paired comparison")
    show.add_argument("name", nargs="?", help="the sweep to show (default: list them)")
    show.add_argument("--compare", default=None, help="the setting to pair (default: loss if the sweep varies it)")
    show.add_argument("--baseline", default=None, help="the value the others are compared with (default: the first)")
    show.add_argument("--metric", choices=("test", "val"), default="test", help="test or final validation accuracy")
    show.set_defaults(handler=lambda args: show_sweeps(args, open_store))


def build_sweep(args) -> Sweep:
    base = spec_from_args(args, RunSpec)
    values = {axis: getattr(args, f"sweep_{axis}") for axis in AXES}
    for axis in AXES:
        if values[axis] is not None and getattr(args, axis, None) is not None:
            raise UserError(f"give {flag(RunSpec, axis)} or {AXIS_FLAGS[axis]}, not both")
    if not any(values.values()):
        raise UserError(
            "a sweep needs several values for at least one setting: " + ", ".join(AXIS_FLAGS[a] for a in AXES)
        )
    return Sweep.from_values(args.sweep_name or default_name(datetime.now()), base, values)


def run_sweep(args, follow, open_store) -> int:
    sweep = build_sweep(args)
    gpus = gpu_count()
    specs = sweep.validate(available_gpus=gpus)
    store = open_store(args, create=not args.dry_run)  # a dry run reads the store only if it exists
    earlier = store.list_runs(include_archived=True) if store is not None else []
    taken = sum(sweep.tag in (r.get("tags") or ()) for r in earlier)
    print(f"sweep {sweep.name}: {sweep.count_text()}" + (f" (adding to its {taken} earlier runs)" if taken else ""))
    status = list_then_queue(
        args,
        store,
        specs,
        gpus,
        tag=sweep.tag,
        submit=lambda queue: submit_sweep(queue, sweep, parse_tags(args.tags)),
        follow=follow,
    )
    if status is None:  # a dry run
        return 0
    if status != 130:
        print()
        _print_sweep(store, sweep.name, None, None, "Test accuracy")
    return status


def show_sweeps(args, open_store) -> int:
    from workbench.views import sweeps as views  # noqa: PLC0415 - SciPy: views.sweeps imports it (seconds); --help needs none

    store = open_store(args)
    if not args.name:
        found = views.sweep_names(store.seen_runs(include_archived=True))
        if not found:
            print("(no sweeps yet: python -m workbench sweep --help)")
        for info in found:
            active = f", {info['active']} queued or running" if info["active"] else ""
            print(f"{info['name']}: {info['runs']} runs, {info['completed']} completed{active}")
        return 0
    metric = "Test accuracy" if args.metric == "test" else "Final validation accuracy"
    _print_sweep(store, args.name, args.compare, args.baseline, metric)
    return 0


def _print_sweep(store, name: str, compare, baseline, metric: str) -> None:
    from workbench.inspect.reviewed import with_reviewed  # noqa: PLC0415 - SciPy, as views.sweeps
    from workbench.views import sweeps as views  # noqa: PLC0415 - SciPy: views.sweeps imports it (seconds); --help needs none

    runs = views.sweep_runs(with_reviewed(store, store.seen_runs(include_archived=True)), name)
    rows = views.sweep_table(runs)
    print(f"sweep {name}: {len(runs)} runs, mean ± std over seeds (val: the final epoch's)")
    print(views.text_table(views.table_columns(runs), views.display(rows, views.table_columns(runs))))
    options = views.factors(runs)
    factor = compare or ("loss" if "loss" in options else next(iter(options), None))
    if factor is None:
        return
    pairs = views.paired(runs, factor, baseline, metric)
    print(f"\npaired by seed, {metric.lower()} ({AXIS_NAMES.get(factor, (factor,))[0]}):")
    if not pairs:
        print("  (no setting has both values completed yet)")
        return
    columns = [c for c in pairs[0] if not c.startswith("_")]
    print(views.text_table(columns, views.display(pairs, columns)))
