"""`runs` (the store's runs as a table), `export` (a run's epochs, logits, model or TensorBoard events), `ensemble`
(combine completed runs, weights chosen on validation) and `models` (the zoo), registered on the CLI's parser by
`add_commands`: the commands that read what training left in the store."""

import argparse

from workbench.cli.common import open_store, prog
from workbench.cli.export import MODEL_FORMATS, export_run
from workbench.cli.presets import percent
from workbench.errors import UserError
from workbench.training.tensorboard import export as export_tensorboard
from workbench.views.runs import lineage


def add_commands(sub) -> None:
    """Add `runs`, `export`, `ensemble` and `models` to the CLI's subparsers."""
    runs = sub.add_parser("runs", help="table of the runs in the store")
    runs.add_argument("--status", default=None, help="only runs with this status")
    runs.add_argument("--all", action="store_true", help="include archived runs")
    runs.set_defaults(handler=runs_command)

    export = sub.add_parser(
        "export",
        help="export a run's epochs (csv), logits and labels (npz), its model with its "
        "preprocessing (keras, savedmodel, tflite, onnx; and a JSON of class names and spec) or "
        "TensorBoard events",
    )
    export.add_argument("run", type=run_or_all, help="a run id, or 'all' (tensorboard only)")
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
    export.set_defaults(handler=export_command)

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
    ensemble.set_defaults(handler=ensemble_command)

    zoo = sub.add_parser("models", help="list the model zoo with parameter counts")
    zoo.set_defaults(handler=lambda args: print_models())


def runs_command(args):
    from workbench.inspect.reviewed import with_reviewed  # noqa: PLC0415 - loads stored test logits only where reviews exist

    store = open_store(args)
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
        print(f"(no runs yet: {prog()} train --help)")


def run_or_all(text: str):
    if text == "all":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a run id or 'all', got {text!r}") from None


def export_command(args):
    if args.format == "tensorboard":
        return export_tensorboard_command(args)
    if args.run == "all":
        raise UserError(
            "'all' exports TensorBoard events only (--format tensorboard); name one run for csv, npz or a model format"
        )
    from workbench.predict.export import metadata_path  # noqa: PLC0415 - Keras: predict.export imports it at the top

    path = export_run(open_store(args), args.run, args.format, args.output)
    print(f"wrote {path}")
    if args.format in MODEL_FORMATS:
        print(f"wrote {metadata_path(path)} (class names, preprocessing, the run's spec)")


def export_tensorboard_command(args):
    logdir, written, notes = export_tensorboard(open_store(args), args.run, args.output)
    for note in notes:
        print(f"  {note}")
    if not written:
        raise UserError(f"no run with epochs to export{' among them' if args.run == 'all' else ''}")
    print(f"wrote {len(written)} run(s) to {logdir}; view them: tensorboard --logdir {logdir}")


def ensemble_command(args):
    from workbench.ensemble import lab  # noqa: PLC0415 - SciPy: ensemble.calibration imports it (seconds); --help needs none

    store = open_store(args)
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


def print_models():
    from models.__main__ import main as print_table  # noqa: PLC0415 - Keras: the zoo builds its models with it

    print_table([])
