"""How long a spec will take here, said before it is queued, without loading data or building a model
(the page must not wait on a form change).

    estimate(spec, store, gpu_count) -> Estimate(seconds, ...); .text() says it and where it comes from

Best: the store's history, runs of the same model (options, precision, batch, XLA, input size) on the
same kind of device: their epochs' seconds per training image, their final evaluation's seconds per
image. Otherwise a rough figure, labelled so: the model's multiply-adds per image (`costs.py`) on a
curve calibrated by this store's nearest run of another model on that device, else by the project's
2-core CPU. A GPU with no history has no figure, and says so.
"""

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from workbench.constants import RunKind, RunStatus
from workbench.jobs.costs import BACKBONE_MMACS, MODEL_MMACS

if TYPE_CHECKING:
    from store import Store
    from workbench.specs.base import Spec

# Fields that set the cost of a step; runs that agree on them (and the device) are comparable.
SPEED_FIELDS = ("model", "model_kwargs", "backbone", "image_size", "precision", "batch_size", "xla")
SIZES = {"cifar10": (50000, 10000), "cifar100": (50000, 10000)}  # official (train, test) images
SYNTHETIC = (2000, 500)  # workbench.data.sources.make_synthetic's defaults
# Seconds per training image (with its share of the epoch's validation) on the project's 2-core CPU
# grow as multiply-adds ** 0.72: lenet 0.00018 s (0.7 M), resnet20 0.0036 s (40.6 M), nin 0.012 s (222 M).
CPU_REFERENCE = (40.6, 0.0036)
EXPONENT = 0.72
EVAL_SPEEDUP = 3.0  # an evaluation image (forward pass) costs about a third of a training image
FROZEN_SPEEDUP = 3.0  # so does a phase-1 image of a fine-tune (the frozen backbone runs forward only)
START_SECONDS = 15.0  # a job's process: TensorFlow's import, the (cached) data, the model


@dataclass
class Estimate:
    seconds: float | None  # the whole job; None: no figure (`source` says why)
    source: str  # where the figure comes from
    images: int = 0  # training images per epoch
    epochs: int = 0
    per_image: float | None = None  # training seconds per image
    evaluation: float | None = None  # seconds of the final evaluation
    rough: bool = True
    device: str = "CPU"


def device_of(spec: "Spec", gpu_count: int) -> tuple[str, int]:
    """('CPU', 1) or ('GPU', n): what the queue will give this spec."""
    gpus = (1 if gpu_count else 0) if spec.gpus == -1 else spec.gpus
    return ("GPU", gpus) if gpus else ("CPU", 1)


def _device_of_run(run: dict) -> tuple[str, int]:
    names = [n.strip() for n in (run.get("device") or "").split(",") if n.strip()]
    gpus = sum(n.upper().startswith("GPU") for n in names)
    return ("GPU", gpus) if gpus else ("CPU", 1)


def sizes(spec: "Spec", history: list[dict]) -> tuple[int, int] | None:
    """(training images per epoch, batches of the final evaluation) the job will see, from the spec
    alone; a folder dataset's from an earlier run on it, else None."""
    if spec.dataset == "synthetic":
        n_train = spec.dataset_options.get("n_train", SYNTHETIC[0])
        n_test = spec.dataset_options.get("n_test", SYNTHETIC[1])
    elif spec.dataset in SIZES:
        n_train, n_test = SIZES[spec.dataset]
    else:
        same = [r for r in history if r["spec"].get("data_path") == spec.data_path and r.get("train_images")]
        if not same:
            return None
        return same[-1]["train_images"], same[-1].get("eval_steps") or 0
    val = spec.val_size or (5000 if n_train >= 50000 else max(1, round(n_train / 10)))
    train = min(spec.train_subset or n_train, n_train - val)
    batches = lambda n: math.ceil(n / spec.batch_size)  # noqa: E731
    return max(1, train // spec.batch_size) * spec.batch_size, 2 * (batches(val) + batches(n_test))


def _speed_key(spec_dict: dict) -> tuple:
    return tuple(repr(spec_dict.get(f)) for f in SPEED_FIELDS)


def _measured(store: "Store | None", runs: list[dict]) -> tuple[float | None, float | None]:
    """(seconds per training image, seconds per evaluation batch or None) of finished runs: the median
    epoch after the first (which also traces the graph) over the epoch's images."""
    per_image: list[float] = []
    per_eval: list[float] = []
    if store is None:  # no store yet (a dry run): nothing measured
        return None, None
    for run in runs:
        seconds = [e["seconds"] for e in store.epochs(run["id"]) if e.get("seconds")]
        if run.get("train_images") and seconds:
            per_image.append(statistics.median(seconds[1:] or seconds) / run["train_images"])
        if run.get("eval_seconds") and run.get("eval_steps"):
            per_eval.append(run["eval_seconds"] / run["eval_steps"])
    return (statistics.median(per_image) if per_image else None, statistics.median(per_eval) if per_eval else None)


def mmacs(kind: str, spec: dict) -> float | None:
    """Multiply-adds per image, in millions, of a spec's model as `costs.py` lists it (a fine-tune's at
    its input size); None for one not listed or with options changed."""
    if kind == RunKind.FINETUNE:
        base = BACKBONE_MMACS.get(spec.get("backbone", ""))
        return base * (spec.get("image_size", 224) / 224) ** 2 if base else None
    return None if spec.get("model_kwargs") else MODEL_MMACS.get(spec.get("model", ""))


def _cost_ratio(spec: Any) -> float:  # a RunSpec or a FinetuneSpec (by its kind)
    """A fine-tune's phase 1 runs the frozen backbone forward only: its epochs cost less."""
    if spec.kind != RunKind.FINETUNE:
        return 1.0
    return (spec.head_epochs / FROZEN_SPEEDUP + spec.finetune_epochs) / max(spec.epochs, 1)


def estimate(spec: Any, store: "Store | None", gpu_count: int) -> Estimate:  # RunSpec or FinetuneSpec
    """How long `spec` will take on the device the queue will give it (see the module's docstring);
    `store` None (none yet): without history."""
    device = device_of(spec, gpu_count)
    name = "CPU" if device[0] == "CPU" else f"{device[1]} GPU" + ("s" if device[1] > 1 else "")
    runs = store.list_runs(include_archived=True) if store is not None else []
    history = [r for r in runs if r["status"] == RunStatus.COMPLETED and _device_of_run(r) == device]
    size = sizes(spec, history)
    if size is None:
        return Estimate(None, "a folder dataset's size is known once a run has loaded it", device=name)
    images, eval_batches = size
    what = spec.model if spec.kind != RunKind.FINETUNE else f"{spec.backbone} fine-tune"
    same = [r for r in history if r["kind"] == spec.kind and _speed_key(r["spec"]) == _speed_key(spec.to_dict())]
    per_image, per_eval = _measured(store, same)
    rough = per_image is None
    if per_image is not None:
        source = (
            f"Measured: {len(same)} earlier {what} run{'s' if len(same) > 1 else ''} like it here (same "
            "options, precision, batch size and device)"
        )
        training = per_image
    else:
        per_image, source = _rough(spec, store, history, device)
        if per_image is None:
            return Estimate(None, source, device=name)
        training = per_image * _cost_ratio(spec)
    evaluation = eval_batches * (per_eval or per_image * spec.batch_size / EVAL_SPEEDUP)
    seconds = START_SECONDS + spec.epochs * images * training + evaluation
    return Estimate(seconds, source, images, spec.epochs, training, evaluation, rough, name)


def _rough(spec: Any, store: "Store | None", history: list[dict], device: tuple[str, int]) -> tuple[float | None, str]:
    """(seconds per training image, where it comes from) from the model's multiply-adds, or (None, why)."""
    options = ""
    cost = mmacs(spec.kind, spec.to_dict())
    if cost is None and spec.kind != RunKind.FINETUNE and spec.model in MODEL_MMACS:
        cost, options = MODEL_MMACS[spec.model], f" (as {spec.model} with its own options: yours may change this a lot)"
    if cost is None:
        return None, "no run like it has finished here yet, and its model's cost is not in workbench/jobs/costs.py"
    known = [(abs(math.log(m / cost)), m, r) for r in history if (m := mmacs(r["kind"], r["spec"]))]
    if known:
        _, nearest_cost, nearest = min(known, key=lambda found: found[0])
        per_image, _ = _measured(store, [nearest])
        if per_image:
            scaled = per_image * (cost / nearest_cost) ** EXPONENT
            return scaled, (
                f"Rough: no run like it has finished here yet; scaled from run {nearest['id']} "
                f"({nearest['name']}) by the models' multiply-adds{options}"
            )
    if device[0] != "CPU":
        return None, "no run has finished on a GPU in this store yet to measure it by; the first one gives the figure"
    ref_mmacs, ref_seconds = CPU_REFERENCE
    return ref_seconds * (cost / ref_mmacs) ** EXPONENT, (
        f"Rough: no run has finished on this store's CPU yet; scaled by multiply-adds from resnet20's "
        f"~{1 / ref_seconds:.0f} images/s on the project's 2-core CPU{options}"
    )


# The fields `estimate` reads (besides the kind): specs that agree on them take the same time.
COST_FIELDS = (
    *SPEED_FIELDS,
    "dataset",
    "dataset_options",
    "data_path",
    "val_size",
    "train_subset",
    "gpus",
    "epochs",
    "head_epochs",
    "finetune_epochs",
)


@dataclass
class ManyEstimate:
    """Several specs queued together (a sweep): `seconds` their training time added up (None when no
    spec has a figure), `wall` how long the queue takes with `side_by_side` jobs at once, `unknown` how
    many specs have no figure, and `rough` whether any figure is rough."""

    seconds: float | None
    wall: float | None
    side_by_side: int
    unknown: int
    rough: bool
    device: str


def estimate_many(specs: "Sequence[Spec]", store: "Store", gpu_count: int) -> ManyEstimate:
    """`estimate` of every spec (specs that cost the same are estimated once), added up; the queue runs
    as many side by side as the GPUs allow (one at a time on the CPU)."""
    figures: list[Estimate] = []
    cache: dict[tuple[str, str], Estimate] = {}
    for spec in specs:
        data = spec.to_dict()
        key = (spec.kind, repr([data.get(f) for f in COST_FIELDS]))
        if key not in cache:
            cache[key] = estimate(spec, store, gpu_count)
        figures.append(cache[key])
    known = [e for e in figures if e.seconds is not None]
    devices = [device_of(spec, gpu_count) for spec in specs]
    needed = max((n for kind, n in devices if kind == "GPU"), default=0)
    side_by_side = max(1, gpu_count // needed) if needed else 1
    seconds = sum(e.seconds or 0.0 for e in known) if known else None  # known: seconds not None
    return ManyEstimate(
        seconds,
        None if seconds is None else seconds / min(side_by_side, len(specs)),
        side_by_side,
        len(figures) - len(known),
        any(e.rough for e in known),
        figures[0].device if figures else "CPU",
    )
