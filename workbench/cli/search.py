"""`search` (an Optuna study on the job queue: `workbench.jobs.study`) and `studies` (list them, or show one's
trials and best), registered on the CLI's parser by `add_commands`.

    workbench search NAME --space "learning_rate=log(0.01,1) epochs=int(2,8)" --trials 30 --pruner hyperband \\
        --timeout 2h --model lenet ...        # a new study: the train flags give every other setting
    workbench search NAME                    # continue a stopped or interrupted one (the restart rule)
    workbench search --preset search         # a preset's [defaults] and [search] table
"""

from workbench.cli.job_queue import add_queue_arguments, open_job_queue
from workbench.errors import UserError
from workbench.jobs.estimate import estimate
from workbench.specs.flags import add_spec_arguments, parse_tags, spec_from_args
from workbench.specs.presets import read_preset
from workbench.specs.run import RunSpec
from workbench.specs.search import PRUNERS, SAMPLERS, Search, budget_text, duration_text, parse_duration

CONTINUE_FLAGS = ("space", "sampler", "sampler_seed", "pruner", "parallel")


def add_commands(sub, *, open_store) -> None:
    search = sub.add_parser(
        "search",
        help="an Optuna study: trials drawn from a space, bad ones pruned after an epoch (or continue one)",
        description="Run an Optuna study whose trials are runs tagged study:NAME (the train flags give every "
        "setting the space does not). Given the name of an existing study, continue it: its interrupted trials "
        "resume from their checkpoints, and --trials/--timeout change its budget.",
    )
    search.add_argument(
        "study_name", nargs="?", default="", metavar="NAME", help="the study (its runs' tag study:NAME)"
    )
    search.add_argument(
        "--space",
        default=None,
        help="settings to search: learning_rate=log(0.01,1) weight_decay=log(1e-5,1e-3) batch_size=[128,256] "
        "augment=[flip_crop; flip_crop,cutout] label_smoothing=uniform(0,0.3) epochs=int(10,40)",
    )
    search.add_argument("--trials", default=None, help="how many trials (default 20)")
    search.add_argument("--timeout", default=None, help="wall-time budget: 2h, 90m, 1h30m (default: none)")
    search.add_argument("--pruner", choices=PRUNERS, default=None, help="median (default), hyperband, halving, none")
    search.add_argument("--sampler", choices=SAMPLERS, default=None, help="tpe (default), random, grid, cmaes")
    search.add_argument("--sampler-seed", dest="sampler_seed", default=None, help="the sampler's seed")
    search.add_argument("--parallel", default=None, help="trials at once (default: one per GPU, one on a CPU)")
    search.add_argument("--preset", default=None, help="a preset with a [search] table (name or .toml path)")
    add_spec_arguments(search, RunSpec)
    search.add_argument("--tags", default="", help="more comma-separated tags for every trial's run")
    search.add_argument("--dry-run", action="store_true", help="check the search and estimate a trial, run nothing")
    add_queue_arguments(search)
    search.set_defaults(handler=lambda args: run_search(args, open_store))

    show = sub.add_parser("studies", help="list the studies, or show one: its trials, best trial and figures' file")
    show.add_argument("name", nargs="?", help="the study to show (default: list them)")
    show.set_defaults(handler=lambda args: show_studies(args, open_store))


def build_search(args) -> Search:
    """A new study's Search from the flags (or --preset); UserError names every mistake."""
    if args.preset:
        return load_search_preset(args.preset, args)
    if not args.space:
        raise UserError(
            f"study {args.study_name or '(unnamed)'} does not exist yet: give --space to start it, e.g. "
            '--space "learning_rate=log(0.01,1) epochs=int(2,8)"'
        )
    if not args.study_name:
        raise UserError("name the study: workbench search NAME --space ...")
    return Search.from_values(
        args.study_name,
        spec_from_args(args, RunSpec),
        space=args.space,
        trials=args.trials if args.trials is not None else 20,
        timeout=args.timeout,
        sampler=args.sampler or "tpe",
        seed=args.sampler_seed,
        pruner=args.pruner or "median",
        parallel=args.parallel or 0,
    )


def load_search_preset(name_or_path: str, args=None) -> Search:
    """A preset with `[defaults]` and a `[search]` table; the CLI's --trials/--timeout/NAME override its own."""
    path, data = read_preset(name_or_path)
    if not isinstance(data.get("search"), dict):
        raise UserError(f"preset {path.name} has no [search] table; `workbench train-all --preset` runs its runs")
    table = dict(data["search"])
    if args is not None:
        table.update(
            {k: v for k, v in (("name", args.study_name), ("trials", args.trials), ("timeout", args.timeout)) if v}
        )
    try:
        base = RunSpec.from_dict(data.get("defaults", {}))
    except UserError as exc:
        raise UserError(f"preset {path.name}: {exc}") from None
    return Search.from_preset(table, base, where=f"preset {path.name}")


def run_search(args, open_store) -> int:
    from workbench.jobs.study import StudyDriver  # noqa: PLC0415 - Optuna: SQLAlchemy and its samplers load in seconds; --help needs none
    from workbench.training.devices import gpu_names  # noqa: PLC0415 - TensorFlow: it counts the GPUs

    store = open_store(args, create=False)  # written only once the search is accepted, and never by a dry run
    existing = store is not None and args.study_name and args.study_name in {s["name"] for s in store.list_studies()}
    if existing:
        given = [f"--{f.replace('_', '-')}" for f in CONTINUE_FLAGS if getattr(args, f) is not None]
        if given or args.preset:
            raise UserError(
                f"study {args.study_name} exists: `workbench search {args.study_name}` continues it as it was set up "
                f"(only --trials and --timeout change); drop {', '.join(given) or '--preset'} or choose another name"
            )
        search = Search.from_settings(args.study_name, store.get_study(args.study_name)["settings"])
        trials = int(args.trials) if args.trials is not None else search.trials
        timeout = parse_duration(args.timeout) if args.timeout is not None else search.timeout
        if (trials, timeout) != (search.trials, search.timeout):
            search = Search.from_settings(search.name, {**search.to_settings(), "trials": trials, "timeout": timeout})
            store.update_study(search.name, settings=search.to_settings())
    else:
        search = build_search(args)
    gpus = len(gpu_names())
    search.check(available_gpus=gpus)
    budget = f"{search.budget()} trials" + (f" or {duration_text(search.timeout)}" if search.timeout else "")
    print(f"study {search.name}: {budget}, sampler {search.sampler}, pruner {search.pruner}; space {search.space.text}")
    typical = search.space.apply(search.base, search.space.middle())
    print(budget_text(search, estimate(typical, store, gpus).seconds, max(1, gpus)))
    if args.dry_run:
        print("dry run: nothing queued")
        return 0
    store = store or open_store(args)
    with open_job_queue(args, store) as queue:
        if existing:
            driver = StudyDriver.resume(store, queue, search.name)
        else:
            driver = StudyDriver.create(store, queue, search, tags=parse_tags(args.tags))
        driver.start()
        print(f"Optuna storage: {store.optuna_url()}  (optuna-dashboard {store.optuna_url()})", flush=True)
        try:
            _follow(store, driver)
        except KeyboardInterrupt:
            driver.halt()
            print(f"interrupted: `workbench search {search.name}` continues the study", flush=True)
            raise
    show_studies_table(store, search.name)
    return 0


def _follow(store, driver, every: float = 0.5) -> None:
    """Print each trial as it is queued, resumed and told, until the study's driver ends."""
    from workbench.views import studies as views  # noqa: PLC0415 - Optuna: SQLAlchemy loads in seconds; --help needs none

    said: dict = {}
    resumed = 0
    while True:
        finished = driver.wait(every)
        for run_id in driver.resumed[resumed:]:
            print(f"resumed run {run_id} (the restart rule: an interrupted trial continues from its checkpoint)")
        resumed = len(driver.resumed)
        for row in views.trial_rows(store, driver.search.name):
            key = (row["State"], row["Run status"], row["Epochs"])
            if said.get(row["Trial"]) != key:
                said[row["Trial"]] = key
                value = f" value {row['Value']}" if row["Value"] else ""
                why = f" ({row['_error'][:200]})" if row["_error"] else ""
                print(
                    f"trial {row['Trial']}: {row['State']}{value}, run {row['Run']} {row['Run status']} "
                    f"epochs {row['Epochs']}; {row['Parameters']}{why}",
                    flush=True,
                )
        if finished:
            return


def show_studies(args, open_store) -> int:
    store = open_store(args)
    if not args.name:
        from workbench.views import studies as views  # noqa: PLC0415 - Optuna: SQLAlchemy loads in seconds; --help needs none
        from workbench.views.sweeps import text_table  # noqa: PLC0415 - SciPy: views.sweeps imports it (seconds)

        rows = views.summaries(store)
        if not rows:
            print("(no studies yet: python -m workbench search --help)")
            return 0
        print(text_table(views.SUMMARY_COLUMNS, [[str(r[c]) for c in views.SUMMARY_COLUMNS] for r in rows]))
        print(f"\nOptuna storage: {store.optuna_url()}  (optuna-dashboard opens it)")
        return 0
    show_studies_table(store, args.name)
    return 0


def show_studies_table(store, name: str) -> None:
    from workbench.views import studies as views  # noqa: PLC0415 - Optuna: SQLAlchemy loads in seconds; --help needs none
    from workbench.views.sweeps import text_table  # noqa: PLC0415 - SciPy: views.sweeps imports it (seconds)

    row = store.get_study(name)
    rows = views.trial_rows(store, name)
    print(f"study {name}: {row['state']}{' (' + row['error'] + ')' if row['error'] else ''}, {len(rows)} trials")
    print(text_table(views.TRIAL_COLUMNS, [[str(r[c]) for c in views.TRIAL_COLUMNS] for r in rows]))
    best = views.best(store, name)
    if best:
        shown = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in best["params"].items())
        print(f"best: trial {best['number']} (run {best['run']}), validation accuracy {best['value']:.2%}: {shown}")
    for row in rows:
        if row["_error"]:
            print(f"trial {row['Trial']} failed: {row['_error'][:300]}")
