"""`duplicates` (each test image's nearest training image by a run's penultimate-layer features, as CSV, and
the run's test accuracy without the near-duplicates) and `map` (a split's features in 2-D as a Plotly HTML
page), registered on the CLI's parser by `add_commands`. The features and their caches are
`workbench.predict.features`' and `workbench.predict.maps`', the figure `workbench.views.data_map`'s."""

import csv
from pathlib import Path

from workbench.errors import UserError, choose
from workbench.inspect.duplicates import DEFAULT_THRESHOLD, check_threshold

COLOURS = {
    "true": "true class",
    "predicted": "predicted class",
    "correct": "correct / wrong",
    "quality": "label quality",
}
DUPLICATE_COLUMNS = (
    "test_index",
    "train_index",
    "similarity",
    "test_label",
    "train_label",
    "predicted",
    "right",
)


def add_commands(sub, *, open_store) -> None:
    """Add `duplicates` and `map` to the CLI's subparsers; `open_store(args)` opens the --db store."""
    dup = sub.add_parser(
        "duplicates",
        help="near-duplicates between the test and training images by a run's features, as CSV",
        description="Each test image's nearest training image (the whole official training set) by cosine "
        "similarity of the run's penultimate-layer features; writes the pairs at or above --threshold (every "
        "test image with --all) and prints the run's test accuracy with and without them. Features are "
        "computed once per run and kept in the store's files.",
    )
    dup.add_argument("run", type=int, metavar="RUN", help="a completed run's id")
    dup.add_argument("--output", required=True, metavar="FILE.csv", help="the CSV file to write")
    dup.add_argument(
        "--threshold",
        type=float,
        default=DEFAULT_THRESHOLD,
        help=f"cosine similarity at or above which a pair is a near-duplicate (default {DEFAULT_THRESHOLD})",
    )
    dup.add_argument("--all", action="store_true", help="write every test image's nearest training image")
    dup.set_defaults(handler=lambda args: duplicates(args, open_store))

    fmap = sub.add_parser(
        "map",
        help="a split's map: the run's features in 2-D (UMAP, or PCA for large splits), as an HTML page",
        description="A 2-D map of the run's penultimate-layer features of one split, one point per image, "
        "written as a self-contained Plotly HTML page (hover: the image's index, true and predicted class).",
    )
    fmap.add_argument("run", type=int, metavar="RUN", help="a completed run's id")
    fmap.add_argument("--split", default="test", help="test, val or train (all official training images)")
    fmap.add_argument("--output", required=True, metavar="FILE.html", help="the HTML file to write")
    fmap.add_argument("--colour", default="true", help=f"colour points by {', '.join(COLOURS)} (default true)")
    fmap.add_argument("--method", default="auto", help="auto (UMAP, PCA above 15,000 points), umap or pca")
    fmap.set_defaults(handler=lambda args: data_map(args, open_store))


def output_path(value: str, suffix: str) -> Path:
    """The --output file: its folder must exist and its name end in `suffix`."""
    path = Path(value).expanduser()
    if path.suffix.lower() != suffix:
        raise UserError(f"--output {value}: give a {suffix} file name (e.g. run-1{suffix})")
    if not path.parent.is_dir():
        raise UserError(f"--output {value}: folder {path.parent} does not exist; create it or choose another")
    if path.is_dir():
        raise UserError(f"--output {value} is a folder; give a file name")
    return path


def _tools(store):
    from workbench.predict import maps  # noqa: PLC0415 - TensorFlow (seconds): --help and bad flags need none
    from workbench.predict.models import ModelCache  # noqa: PLC0415 - TensorFlow, as above

    return maps, ModelCache(store)


def _progress(what: str):
    def report(done: int, total: int) -> None:
        if done == total or done % 10000 < 500:
            print(f"  {what}: {done:,} / {total:,} images", flush=True)

    return report


def duplicates(args, open_store) -> int:
    threshold = check_threshold(args.threshold)
    path = output_path(args.output, ".csv")
    store = open_store(args)
    maps, models = _tools(store)
    print(f"features of run {args.run} (computed once, then read from the store's files)", flush=True)
    report = maps.near_duplicates(store, args.run, models=models, cache={}, progress=_progress("features"))
    match = report.match
    chosen = range(len(match.index)) if args.all else report.pairs(threshold)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(DUPLICATE_COLUMNS)
        for i in chosen:
            j = int(match.index[i])
            writer.writerow(
                [
                    int(i),
                    j,
                    f"{float(match.similarity[i]):.6f}",
                    int(report.test_labels[i]),
                    int(report.train_labels[j]),
                    int(report.test_predicted[i]),
                    int(report.test_predicted[i] == report.test_labels[i]),
                ]
            )
    accuracy = report.accuracy(threshold)
    print(
        f"{accuracy['duplicates']:,} of {accuracy['images']:,} test images have a training image at cosine "
        f"similarity >= {threshold} ({len(chosen):,} rows written to {path})"
    )
    clean = "-" if accuracy["clean"] is None else f"{100 * accuracy['clean']:.2f}%"
    print(
        f"test accuracy (plain logits): {100 * accuracy['full']:.2f}% on all {accuracy['images']:,}, {clean} on "
        f"the {accuracy['clean_images']:,} without a near-duplicate"
    )
    return 0


def _label_quality(store, args, count: int):
    """cleanlab's score of each given label on the map's split (val or test: a run's own training images are not
    out-of-sample), in the map's order."""
    from workbench.ensemble.lab import Lab  # noqa: PLC0415 - SciPy: the ensemble lab imports it; --help needs none
    from workbench.inspect.label_quality import label_issues  # noqa: PLC0415 - cleanlab, only when asked

    score = label_issues(store, Lab(store), f"run:{args.run}", args.split).score
    if len(score) != count:
        raise UserError(f"run {args.run}'s stored {args.split} predictions do not line up with its map's images")
    return score


def data_map(args, open_store) -> int:
    colour = COLOURS[choose("--colour", args.colour, list(COLOURS))]
    if args.colour == "quality" and args.split == "train":
        raise UserError("--colour quality needs an out-of-sample split: use --split test or --split val")
    path = output_path(args.output, ".html")
    store = open_store(args)
    maps, models = _tools(store)
    from workbench.views import data_map as dm  # noqa: PLC0415 - Plotly (a second): --help needs none

    data = maps.split_map(
        store, args.run, args.split, models=models, cache={}, method=args.method, progress=_progress("features")
    )
    title, note = maps.describe(store.get_run(args.run), data)
    points = dm.points_from(
        data.projection.coords,
        data.features.logits,
        data.features.labels,
        maps.class_names(store, args.run, data),
        _label_quality(store, args, len(data.projection.coords)) if args.colour == "quality" else None,
    )
    fig = dm.map_figure(points, colour, title=title, note=note)
    fig.write_html(path, include_plotlyjs=True, full_html=True)  # self-contained: opens offline
    found = data.features
    print(f"map of run {args.run}'s {found.split} split: {len(found.labels):,} points, {data.projection.method}")
    if data.projection.note:
        print(data.projection.note)
    print(f"written to {path}")
    return 0
