"""How long a spec will take here, said before it is queued, without loading data or building a model
(the page must not wait on a form change).

    estimate(spec, store, gpu_count) -> Estimate(seconds, ...); .source says what the figure rests on

The job, modelled as it runs (`workbench.training.fit`):

    start       the process, TensorFlow's import and the (cached) data; building the model; tracing its
                training, validation and prediction graphs
    + epochs x  steps x (fixed seconds per step + seconds per image x batch)      training
                + images x the chosen augmentations' seconds per image           the input pipeline
                + validation batches x (fixed seconds + seconds per image x batch)  forward passes
    + the final evaluation: every stored view (plain and mirrored; with `translate` also the translated
                ones, two passes each) of validation and test, forward passes at the same cost
    a distillation's teacher, each member at its own family's forward-pass rate: loading and tracing it
                at the start; online, its pass over every training batch of every epoch; cached, one pass
                over the training images before the first epoch

The constants are measured per zoo family (at one real variant; the others scaled by their multiply-adds,
`costs.py`) and per fine-tune backbone on the project's 2-core CPU, and shipped in `speeds.json` with the
date, machine and load they were measured at (`python bench/estimate.py --calibrate` measures them again).
The machine they were timed on was shared: each figure is brought to an otherwise idle machine by the
effective load it was timed at, cores x the slowdown the scheduler's own figures show (a thread's time
waiting for a core beside its time running, bench/cpu_share.py), so a figure timed at effective load L
counts for max(L, cores) / cores of the idle one; `estimate(..., load=L)` says it for a run that will see
effective load L instead, as bench/estimate.py does on a machine others share.
Finished runs of the same family (or backbone) and batch size on the same kind of device refine them:
their measured epochs and final evaluations over what the constants say for those runs scale the figure.
Runs of other families or batch sizes never move it. A GPU has no shipped figure: its first finished run
of a family and batch size gives one.
"""

import json
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.constants import DistillMode, RunKind, RunStatus
from workbench.jobs.costs import BACKBONE_MMACS, MODEL_FAMILY, MODEL_MMACS
from workbench.jobs.teachers import run_teacher, teacher_specs

if TYPE_CHECKING:
    from store import Store
    from workbench.specs.base import Spec

SPEEDS_FILE = Path(__file__).with_name("speeds.json")
SIZES = {"cifar10": (50000, 10000), "cifar100": (50000, 10000)}  # official (train, test) images
SYNTHETIC = (2000, 500)  # workbench.data.sources.make_synthetic's defaults
BACKBONE_SIZE = 96  # the input size the backbones' constants are measured at (FinetuneSpec's default)
# Forward passes of each stored view of a split (workbench.training.fit.VIEWS and TRANSLATE_VIEWS).
PLAIN_PASSES = 2  # plain and mirrored
TRANSLATE_PASSES = 4  # translated by -1 and +1 pixels, plain and mirrored


@cache
def speeds() -> dict:
    """The shipped constants (`speeds.json`): start, pipeline, cpu: {family or "finetune:<backbone>": ...}."""
    data: dict = json.loads(SPEEDS_FILE.read_text())
    return data


@dataclass
class Estimate:
    seconds: float | None  # the whole job; None: no figure (`source` says why)
    source: str  # what the figure rests on
    images: int = 0  # training images per epoch
    epochs: int = 0
    per_image: float | None = None  # seconds per training image, with its share of the epoch's validation
    evaluation: float | None = None  # seconds of the final evaluation
    rough: bool = True  # from the shipped constants only (no finished run like it here)
    device: str = "CPU"
    start: float = 0.0  # seconds before the first epoch


@dataclass
class Parts:
    """A job's seconds as the model splits them (see the module docstring)."""

    start: float
    epochs: list[float]  # each epoch's seconds (a fine-tune's phases cost differently)
    evaluation: float

    @property
    def total(self) -> float:
        return self.start + sum(self.epochs) + self.evaluation


def device_of(spec: "Spec", gpu_count: int) -> tuple[str, int]:
    """('CPU', 1) or ('GPU', n): what the queue will give this spec."""
    gpus = (1 if gpu_count else 0) if spec.gpus == -1 else spec.gpus
    return ("GPU", gpus) if gpus else ("CPU", 1)


def _device_of_run(run: dict) -> tuple[str, int]:
    names = [n.strip() for n in (run.get("device") or "").split(",") if n.strip()]
    gpus = sum(n.upper().startswith("GPU") for n in names)
    return ("GPU", gpus) if gpus else ("CPU", 1)


def busy(load: float | None) -> float:
    """How much slower than on an otherwise idle machine a job runs at `load` (1 for None: idle)."""
    cores = float(speeds().get("cores") or 2)
    return max(load or 0.0, cores) / cores


def family_of(kind: str, spec: dict) -> str | None:
    """What the constants are measured per: the zoo family, or "finetune:<backbone>"; None if unknown."""
    if kind == RunKind.FINETUNE:
        backbone = spec.get("backbone", "")
        return f"finetune:{backbone}" if backbone in BACKBONE_MMACS else None
    return MODEL_FAMILY.get(spec.get("model", ""))


def split_sizes(spec: dict, history: list[dict]) -> tuple[int, int, int] | None:
    """(training images per epoch, validation images, test images) the job will see, from the spec alone;
    a folder dataset's from an earlier run on it, else None."""
    batch = int(spec.get("batch_size") or 1)
    dataset = spec.get("dataset", "cifar10")
    if dataset == "synthetic":
        options = spec.get("dataset_options") or {}
        n_train, n_test = options.get("n_train", SYNTHETIC[0]), options.get("n_test", SYNTHETIC[1])
    elif dataset in SIZES:
        n_train, n_test = SIZES[dataset]
    else:
        same = [r for r in history if r["spec"].get("data_path") == spec.get("data_path") and r.get("train_images")]
        if not same:
            return None
        run = same[-1]
        val = (run.get("val_steps") or 0) * int(run["spec"].get("batch_size") or 1)
        eval_batches = (run.get("eval_steps") or 0) / _passes(run["spec"])
        return run["train_images"], val, max(0, round(eval_batches * batch - val))
    val = spec.get("val_size") or (5000 if n_train >= 50000 else max(1, round(n_train / 10)))
    train = min(spec.get("train_subset") or n_train, n_train - val)
    folds = int((spec.get("dataset_options") or {}).get("cv_folds") or 0)
    if folds:  # a cross-validation run trains without one fold and also evaluates it (stored as `oof`)
        held = train // folds
        train, n_test = train - held, n_test + held
    return max(1, train // batch) * batch, val, n_test


def _passes(spec: dict) -> int:
    """Forward passes over each split in the final evaluation (`workbench.training.fit.prediction_views`)."""
    return PLAIN_PASSES + (TRANSLATE_PASSES if "translate" in (spec.get("augment") or ()) else 0)


def _scale(kind: str, spec: dict, figures: dict) -> tuple[float, str]:
    """(the spec's model's cost over the measured variant's, a note when its options are not counted)."""
    if kind == RunKind.FINETUNE:
        return (int(spec.get("image_size") or BACKBONE_SIZE) / BACKBONE_SIZE) ** 2, ""
    model = spec.get("model", "")
    note = f" (as {model} with its own options: yours may change this a lot)" if spec.get("model_kwargs") else ""
    return MODEL_MMACS[model] / MODEL_MMACS[figures["variant"]], note


def _slow(figures: dict, load: float | None) -> float:
    """This run's load over the one the figures were timed at, times the family's job factor: a real run's
    time over what the timed steps alone say (checkpoints, the store's writes, each view's dataset and pass)."""
    return busy(load) / busy(figures.get("load")) * figures.get("job", 1.0)


def parts(
    kind: str,
    spec: dict,
    sizes: tuple[int, int, int],
    figures: dict,
    load: float | None = None,
    teacher: Sequence[dict] = (),
) -> Parts:
    """The seconds of a job by the shipped constants of its family (`figures`), at `load` (None: idle);
    `teacher`: a distillation's teacher members' specs (`teacher_specs`)."""
    model, _ = _scale(kind, spec, figures)
    slow = _slow(figures, load)
    scale = model * slow
    batch = int(spec.get("batch_size") or 1)
    images, val, test = sizes
    steps = images // batch
    batches = lambda n: math.ceil(n / batch)  # noqa: E731
    per_eval_batch = (figures["eval"][0] + figures["eval"][1] * batch) * scale
    teacher_start, teacher_batch = _teacher_seconds(teacher, batch, load)
    if spec.get("distill_mode") == DistillMode.CACHED:  # one pass over the training images, before epoch 1
        teacher_start, teacher_batch = teacher_start + batches(images) * teacher_batch, 0.0
    pipeline = speeds()["pipeline"]
    augment = sum(pipeline["seconds"].get(name, 0.0) for name in spec.get("augment") or ())
    augment *= busy(load) / busy(pipeline["load"])

    def epoch(train: Sequence[float]) -> float:
        step = (train[0] + train[1] * batch) * scale + teacher_batch
        return steps * step + images * augment + batches(val) * per_eval_batch

    setup = speeds()["start"]["seconds"] * busy(load) / busy(speeds()["start"]["load"]) * figures.get("job", 1.0)
    start = setup + (figures["build"] + (figures["train_trace"] + 2 * figures["eval_trace"]) * model) * slow
    start += teacher_start
    if kind == RunKind.FINETUNE:
        head, tune = int(spec.get("head_epochs") or 0), int(spec.get("finetune_epochs") or 0)
        epochs = [epoch(figures["train"])] * head + [epoch(figures.get("train2") or figures["train"])] * tune
        start += figures.get("train2_trace", 0.0) * scale if head and tune else 0.0
    else:
        epochs = [epoch(figures["train"])] * int(spec.get("epochs") or 1)
    evaluation = _passes(spec) * (batches(val) + batches(test)) * per_eval_batch
    return Parts(start, epochs, evaluation)


def _teacher_seconds(teacher: Sequence[dict], batch: int, load: float | None) -> tuple[float, float]:
    """(seconds to load and trace the teacher's members, seconds of their forward passes of one batch of
    `batch` images), each member at its own family's forward-pass rate: the final evaluation's figures
    (a forward pass is about a third of a training step, which those figures measure directly)."""
    start = per_batch = 0.0
    for member in teacher:
        figures = speeds()["cpu"][MODEL_FAMILY[member["model"]]]
        model, _ = _scale(RunKind.SCRATCH, member, figures)
        slow = _slow(figures, load)
        start += (figures["build"] + figures["eval_trace"] * model) * slow
        per_batch += (figures["eval"][0] + figures["eval"][1] * batch) * model * slow
    return start, per_batch


def _counted(specs: list[dict]) -> bool:
    """Whether every teacher member's model has shipped constants."""
    return all(MODEL_FAMILY.get(s.get("model", "")) in speeds()["cpu"] for s in specs)


def _learned(
    store: "Store | None", runs: list[dict], sizes_of: Any, load: float | None
) -> tuple[float | None, float | None]:
    """(measured epoch seconds over the constants' figure, measured final evaluation over the figure):
    the medians over finished runs of the same family and batch size; None where none measured it."""
    epoch_ratios: list[float] = []
    eval_ratios: list[float] = []
    if store is None:
        return None, None
    for run in runs:
        sizes = sizes_of(run)
        figures = speeds()["cpu"].get(family_of(run["kind"], run["spec"]) or "")
        teacher = run_teacher(store, run)
        if teacher is not None and not _counted(teacher):
            teacher = None
        if sizes is None or figures is None or teacher is None:  # a teacher not counted would skew the ratio
            continue
        said = parts(run["kind"], run["spec"], sizes, figures, load, teacher)
        seconds = [e["seconds"] for e in store.epochs(run["id"]) if e.get("seconds")]
        if seconds and said.epochs:
            later = seconds[1:] or seconds  # the first epoch also traces the graphs (counted in `start`)
            epoch_ratios.append(statistics.median(later) / statistics.median(said.epochs[-len(later) :]))
        if run.get("eval_seconds") and said.evaluation:
            eval_ratios.append(run["eval_seconds"] / said.evaluation)
    median = lambda values: statistics.median(values) if values else None  # noqa: E731
    return median(epoch_ratios), median(eval_ratios)


def label(family: str) -> str:
    """A family as the text says it: "resnet", "mobilenet_v2 fine-tune"."""
    return family.split(":", 1)[1] + " fine-tune" if family.startswith("finetune:") else family


def constants_text(family: str) -> str:
    """Where a family's shipped constants come from, as a sentence's end."""
    figures = speeds()["cpu"][family]
    name = label(family)
    slowdown = busy(figures.get("load", speeds()["load"]))
    shared = f", {slowdown:.1f}x slower than idle as others shared it" if slowdown > 1.05 else ", idle"
    return (
        f"the {name} constants timed with {figures['variant']} on {speeds()['machine']} on "
        f"{figures.get('measured', speeds()['measured'])}{shared}"
    )


def estimate(
    spec: Any, store: "Store | None", gpu_count: int, *, load: float | None = None
) -> Estimate:  # RunSpec or FinetuneSpec
    """How long `spec` will take on the device the queue will give it (see the module's docstring);
    `store` None (none yet): without history. `load`: the effective load the run will see (cores x its
    slowdown by other work; None: an otherwise idle machine); finished runs, when there are some, say it
    instead."""
    device = device_of(spec, gpu_count)
    name = "CPU" if device[0] == "CPU" else f"{device[1]} GPU" + ("s" if device[1] > 1 else "")
    runs = store.list_runs(include_archived=True) if store is not None else []
    # a snapshot's or average's run (parent_run set) trained nothing itself: no clock to learn from
    history = [
        r
        for r in runs
        if r["status"] == RunStatus.COMPLETED and _device_of_run(r) == device and not r.get("parent_run")
    ]
    data = spec.to_dict()
    sizes = split_sizes(data, history)
    if sizes is None:
        return Estimate(None, "a folder dataset's size is known once a run has loaded it", device=name)
    family = family_of(spec.kind, data)
    figures = speeds()["cpu"].get(family or "")
    if family is None or figures is None:
        what = spec.backbone if spec.kind == RunKind.FINETUNE else spec.model
        return Estimate(None, f"no constants are measured for {what} yet (bench/estimate.py --calibrate)", device=name)
    batch = spec.batch_size
    same = [r for r in history if family_of(r["kind"], r["spec"]) == family and r["spec"].get("batch_size") == batch]
    epoch_ratio, eval_ratio = _learned(store, same, lambda run: split_sizes(run["spec"], history), load)
    teacher, missing = teacher_specs(spec, store)
    if teacher and not _counted(teacher):
        teacher, missing = [], "no constants for a teacher member's model"
    said = parts(spec.kind, data, sizes, figures, load, teacher)
    _, note = _scale(spec.kind, data, figures)
    if teacher:
        note += f"; with the teacher's {len(teacher)} network{'s' if len(teacher) > 1 else ''} ({spec.distill_mode})"
    elif missing:
        note += f"; the teacher's passes are not counted ({missing})"
    if device[0] != "CPU" and epoch_ratio is None:
        return Estimate(
            None,
            f"no figure for a GPU yet: the first {label(family)} run at batch size {batch} to finish on it gives one",
            device=name,
        )
    if epoch_ratio is None:
        at = f", counted at effective load {load:.1f}" if load else ", brought to an otherwise idle machine"
        source = (
            f"From {constants_text(family)}{at}; no {label(family)} run at batch size {batch} has finished here "
            f"yet{note}"
        )
    else:
        count = len(same)
        source = (
            f"From {count} earlier {label(family)} run{'s' if count > 1 else ''} at batch size {batch} on "
            f"{'this CPU' if name == 'CPU' else name} "
            f"(scaling {constants_text(family)}){note}"
        )
        # The start (the same machine's work: imports, data, build, tracing) by the epochs' ratio.
        said = Parts(
            said.start * epoch_ratio,
            [e * epoch_ratio for e in said.epochs],
            said.evaluation * (eval_ratio or epoch_ratio),
        )
    # Each snapshot and the average are evaluated like a finished run (the average's BatchNorm pass, about
    # one more evaluation's work, is counted as one)
    derived = int(data.get("snapshots") or 0) + 2 * bool(data.get("average_last") or data.get("average_snapshots"))
    if derived:
        said = Parts(said.start, said.epochs, said.evaluation * (1 + derived))
    epochs = len(said.epochs)
    per_image = sum(said.epochs) / max(epochs * sizes[0], 1)
    return Estimate(
        said.total, source, sizes[0], epochs, per_image, said.evaluation, epoch_ratio is None, name, said.start
    )
