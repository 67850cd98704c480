"""`label-issues` (cleanlab's ranking of a source's given labels, to CSV) and `crossval` (queue the K runs of a
cross-validation request, whose out-of-fold matrix is the training split's source), registered on the CLI's
parser by `add_commands`. The ranking is `workbench.inspect.label_quality`'s, the request
`workbench.specs.crossval`'s."""

import csv
from datetime import datetime
from pathlib import Path

from workbench.cli.job_queue import add_queue_arguments, gpu_count, list_then_queue
from workbench.errors import UserError
from workbench.specs.crossval import DEFAULT_FOLDS, CrossVal, submit_crossval
from workbench.specs.flags import add_spec_arguments, parse_tags, spec_from_args
from workbench.specs.run import RunSpec

CSV_COLUMNS = ("rank", "index", "given", "suggested", "score", "flagged", "given_id", "suggested_id", "reviewed")
FILE_COLUMN = "file"  # after index, where the dataset has file names (an image folder or the JPEG copy)


def add_commands(sub, *, follow, open_store) -> None:
    """Add `label-issues` and `crossval`; `follow(queue, store, run_ids)` and `open_store(args)` are the CLI's."""
    issues = sub.add_parser(
        "label-issues",
        help="rank a run's or ensemble's split by label quality (cleanlab) and write a CSV",
        description="Score every image's given label from the source's stored out-of-sample predictions with "
        "cleanlab (label quality score, suggested label, flagged by confident learning), most likely errors first. "
        "`index` is the image's position in the split as the workbench loads it.",
    )
    issues.add_argument(
        "source",
        metavar="SOURCE",
        help="a run id (7 or run:7), a saved ensemble's name (or ensemble:ID), or cv:NAME for a cross-validation "
        "request's out-of-fold training split",
    )
    issues.add_argument("--split", default="test", choices=("val", "test", "train"), help="default: test")
    issues.add_argument("--top", type=int, default=0, help="only the N most likely label errors (default: all)")
    issues.add_argument("--output", required=True, metavar="FILE.csv", help="the CSV to write")
    issues.set_defaults(handler=lambda args: label_issues_command(args, open_store))

    cv = sub.add_parser(
        "crossval",
        help="queue K runs of one recipe, each without one fold of the training split (out-of-fold predictions)",
        description="Cross-validation for the training split's label quality: K runs tagged cv:NAME, run k trained "
        "without fold k and storing its logits for it; `label-issues cv:NAME --split train` ranks the training "
        "labels from their stitched out-of-fold matrix. The other settings as for `train`.",
    )
    cv.add_argument("cv_name", nargs="?", default="", metavar="NAME", help="the request's name (default: cv-MMDD-HHMM)")
    cv.add_argument(
        "--folds", type=int, default=DEFAULT_FOLDS, help=f"K, the number of folds and runs (default {DEFAULT_FOLDS})"
    )
    add_spec_arguments(cv, RunSpec)
    cv.add_argument("--tags", default="", help="more comma-separated tags for every run")
    cv.add_argument("--dry-run", action="store_true", help="list the runs and the time estimate, queue nothing")
    add_queue_arguments(cv)
    cv.set_defaults(handler=lambda args: crossval_command(args, follow, open_store))


def source_key(store, text: str) -> str:
    """A source key from what a user typed: a run id, run:ID, ensemble:ID, an ensemble's name or cv:NAME."""
    text = str(text or "").strip()
    if text.isdigit():
        return f"run:{int(text)}"
    kind, _, rest = text.partition(":")
    if kind in ("run", "ensemble", "cv") and rest:
        return text
    named = [e for e in store.list_ensembles() if e["name"] == text]
    if len(named) == 1:
        return f"ensemble:{named[0]['id']}"
    if named:
        ids = ", ".join(f"ensemble:{e['id']}" for e in named)
        raise UserError(f"{len(named)} saved ensembles are named {text!r}; name one by id: {ids}")
    names = ", ".join(sorted({e["name"] for e in store.list_ensembles()})) or "none saved"
    raise UserError(f"no run or saved ensemble {text!r}: give a run id, or an ensemble's name ({names})")


def check_output(path_text: str) -> Path:
    path = Path(path_text).expanduser()
    if path.suffix.lower() != ".csv":
        raise UserError(f"--output {path_text}: name a .csv file")
    if path.is_dir():
        raise UserError(f"--output {path_text} is a folder; name a .csv file in it")
    if not path.parent.is_dir():
        raise UserError(f"--output {path_text}: the folder {path.parent} does not exist; create it first")
    return path


def label_issues_command(args, open_store) -> int:
    from workbench.ensemble.lab import Lab  # noqa: PLC0415 - SciPy: the ensemble lab imports it; --help needs none
    from workbench.inspect.label_quality import label_issues, map_rows  # noqa: PLC0415 - cleanlab and the data, when used

    if args.top < 0:
        raise UserError("--top must be 0 (all) or a positive number of images")
    output = check_output(args.output)
    store = open_store(args, create=False)
    if store is None:
        raise UserError(f"no store at {args.db or 'the default path'}; point --db at one")
    key = source_key(store, args.source)
    issues = label_issues(store, Lab(store), key, args.split)
    cache: dict = {}
    try:
        map_rows(store, issues, cache)
        reviews = {r["idx"]: r["verdict"] for r in store.reviews(issues.dataset, issues.part)}
    except UserError as exc:  # the dataset is not here: the ranking stands, the reviews cannot be matched
        print(f"note: {exc}")
        reviews = {}
    rows = issues.rows(top=args.top or None)
    files = issues.files
    with open(output, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([*CSV_COLUMNS[:2], *([FILE_COLUMN] if files else []), *CSV_COLUMNS[2:]])
        for rank, row in enumerate(rows, 1):
            index = row["index"]
            official = int(issues.official[index]) if issues.official is not None else None
            writer.writerow(
                [
                    rank,
                    index,
                    *([files[index]] if files else []),
                    row["given"],
                    row["suggested"],
                    row["score"],
                    int(row["flagged"]),
                    int(issues.labels[index]),
                    int(issues.suggested[index]),
                    reviews.get(official, "") if official is not None else "",
                ]
            )
    flagged = int(issues.flagged.sum())
    print(
        f"{issues.source} ({issues.name}), {issues.split}: {len(issues.labels)} images, {flagged} flagged by "
        f"confident learning ({flagged / len(issues.labels):.1%}); wrote {len(rows)} rows, most likely label errors "
        f"first, to {output}"
    )
    return 0


def crossval_command(args, follow, open_store) -> int:
    request = CrossVal(args.cv_name or f"cv-{datetime.now():%m%d-%H%M}", spec_from_args(args, RunSpec), args.folds)
    gpus = gpu_count()
    specs = request.validate(available_gpus=gpus)
    store = open_store(args, create=not args.dry_run)
    if store is not None and any(request.tag in (r.get("tags") or ()) for r in store.list_runs(include_archived=True)):
        raise UserError(f"cross-validation {request.name!r} exists already in this store; choose another name")
    print(f"cross-validation {request.name}: {request.folds} runs, each without one fold of the training split")
    status = list_then_queue(
        args,
        store,
        specs,
        gpus,
        tag=request.tag,
        submit=lambda queue: submit_crossval(queue, request, parse_tags(args.tags)),
        follow=follow,
    )
    if status is None:  # a dry run
        return 0
    if status == 0:
        print(
            f"out-of-fold source: cv:{request.name} "
            f"(e.g. label-issues cv:{request.name} --split train --output oof.csv)"
        )
    return status
