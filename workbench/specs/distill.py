"""DistillSpec: a zoo model (the student) trained with a teacher's soft targets (knowledge distillation,
Hinton et al. 2015), with every setting of a training run (`workbench.specs.run.RunSpec`) beside the
teacher's. Its kind in the store is "distill"; it trains through the same loop as every run.

The loss, per batch (T: temperature, alpha: the soft targets' share):

    alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * the run's loss on the labels

where x_T = softmax(logits / T); a teacher ensemble's distribution is its members' x_T averaged with the
ensemble's weights. Defaults T = 2 and alpha = 0.5, measured here (below); T^2 keeps the soft part's
gradients at the scale of the hard part's as T changes.

The teacher is named once (`--teacher ensemble:ID`, `ensemble:NAME` or `run:ID`) and resolved when the run
is queued (`resolve_teacher`) into `teacher_members` {run id: weight}: the run's lineage, stored with its
spec, so a resume continues with the same networks even if the ensemble is edited or deleted meanwhile.
"""

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from workbench.constants import DISTILL_MODES, DistillMode, RunKind, RunStatus
from workbench.errors import UserError, choose
from workbench.specs.base import check
from workbench.specs.run import HELP as RUN_HELP
from workbench.specs.run import RunSpec

if TYPE_CHECKING:
    from store.store import Store

# The defaults, measured: bench/distill.py --quick (2026-12-02; LeNet, 3 epochs on 4,000 real CIFAR-10 images,
# a teacher ensemble of three such runs at 41.5% test, three paired seeds against the same twins) gave the
# student a mean gain of -1.74 points over its twin with T = 4, alpha = 0.9 (the knowledge-distillation baseline
# of the CIFAR literature, Tian et al. 2020, and Keras' own example) and +0.88 points with T = 2, alpha = 0.5
# (+2.57, -1.20, +1.27 by seed). Hinton et al. (2015) used soft-target weights with T between 2 and 20; weak
# teachers, as CPU-sized runs are, favour a lower alpha (more of the labels) and a lower T. Not yet measured at
# the full size (the fast recipe): rerun bench/distill.py there before trusting either for long runs.
DEFAULT_TEMPERATURE = 2.0
DEFAULT_ALPHA = 0.5
TEACHER_HELP = "ensemble:ID, ensemble:NAME (a saved ensemble whose members kept checkpoints) or run:ID"

HELP = {
    **RUN_HELP,
    "teacher": TEACHER_HELP,
    "temperature": "distillation temperature T (default 2: measured better than the literature's 4 here, README)",
    "alpha": "share of the soft targets in the loss: alpha*T^2*KL + (1-alpha)*loss on the labels",
    "distill_mode": "online: the teacher scores each augmented batch; cached: its outputs on the "
    "un-augmented training images, computed once and stored (faster)",
    "teacher_members": "the teacher's runs and weights (run=weight,...), filled from --teacher when queued",
    "name": "run name (default: model-distill-<teacher>-epochs)",
}


@dataclass
class DistillSpec(RunSpec):
    """A training run with a teacher: the student is any zoo model and recipe of the Train form."""

    kind: ClassVar[str] = RunKind.DISTILL
    label: ClassVar[str] = "distillation"
    command: ClassVar[str] = "distill"
    help: ClassVar[dict] = HELP

    teacher: str = ""
    temperature: float = DEFAULT_TEMPERATURE
    alpha: float = DEFAULT_ALPHA
    distill_mode: str = DistillMode.ONLINE
    teacher_members: dict = dataclasses.field(default_factory=dict)  # {run id (str): weight}, see the docstring

    def default_name(self) -> str:
        teacher = self.teacher.replace(":", "") or "teacher"
        return f"{self.model}-distill-{teacher}-{self.epochs}ep"

    def resolved(self, store: "Store") -> "DistillSpec":
        return resolve_teacher(store, self)

    @property
    def members(self) -> list[tuple[int, float]]:
        """The resolved teacher: (run id, weight) pairs, the weights summing to 1."""
        return [(int(run_id), float(weight)) for run_id, weight in self.teacher_members.items()]

    def check_own(self) -> None:
        super().check_own()
        check(bool(self.teacher), f"a distillation run needs a teacher: --teacher {TEACHER_HELP}")
        parse_teacher(self.teacher)
        choose("distillation mode", self.distill_mode, DISTILL_MODES)
        check(self.temperature > 0, f"temperature must be > 0 (default {DEFAULT_TEMPERATURE})")
        check(0 <= self.alpha <= 1, f"alpha must be in [0, 1] (default {DEFAULT_ALPHA}; 0: labels only)")
        mixing = sorted({"mixup", "cutmix"} & set(self.augment))
        check(
            not (self.distill_mode == DistillMode.CACHED and mixing),
            f"cached distillation stores the teacher's outputs per image, which {', '.join(mixing)} would mix: "
            "use --distill-mode online, or drop it from --augment",
        )
        try:
            members = self.members
        except (TypeError, ValueError):
            raise UserError("teacher members must be run=weight pairs, e.g. 3=0.5,4=0.5") from None
        check(all(w >= 0 for _, w in members), "teacher member weights must be >= 0")


def parse_teacher(text: str) -> tuple[str, str]:
    """("ensemble" | "run", the id or name) of a --teacher value; a bare number is a run's id."""
    kind, sep, ref = text.strip().partition(":")
    if not sep and kind.isdigit():
        return "run", kind
    kind, ref = kind.strip().lower(), ref.strip()
    if kind not in ("ensemble", "run") or not ref:
        raise UserError(f"teacher {text!r} is not understood; give {TEACHER_HELP}")
    if kind == "run" and not ref.isdigit():
        raise UserError(f"teacher {text!r}: a run is named by its id, e.g. run:7")
    return kind, ref


def resolve_teacher(store: "Store", spec: DistillSpec) -> DistillSpec:
    """The spec with `teacher_members` filled from its `teacher`, each member checked: completed, a
    training run from scratch, a checkpoint on disk, the student's dataset and split (a teacher that saw
    the student's validation images would leak them). A refusal names the member and says what to do."""
    kind, ref = parse_teacher(spec.teacher)
    if kind == "run":
        members = {int(ref): 1.0}
        what = f"teacher run {ref}"
    else:
        ensembles = store.list_ensembles()
        found = [e for e in ensembles if str(e["id"]) == ref] or [e for e in ensembles if e["name"] == ref]
        if not found:
            names = ", ".join(f"{e['id']} ({e['name']})" for e in ensembles) or "none saved yet"
            raise UserError(f"no ensemble {ref!r} to teach with; saved ensembles: {names}")
        ensemble = found[-1]
        total = sum(ensemble["weights"]) or 1.0
        members = {int(m): float(w) / total for m, w in zip(ensemble["members"], ensemble["weights"], strict=True)}
        what = f"teacher ensemble {ensemble['name']!r}"
    for run_id in members:
        check_member(store, run_id, spec, what)
    return dataclasses.replace(spec, teacher_members={str(r): w for r, w in members.items()})


def check_member(store: "Store", run_id: int, spec: DistillSpec, what: str) -> None:
    try:
        run = store.get_run(run_id)
    except (UserError, KeyError, LookupError):
        raise UserError(f"{what}: run {run_id} no longer exists; pick another teacher") from None
    label = f"{what}: member run {run_id} ({run['name']})"
    check(run["status"] == RunStatus.COMPLETED, f"{label} is {run['status']}; only a completed run can teach")
    check(
        run["kind"] in (RunKind.SCRATCH, RunKind.DISTILL),
        f"{label} is a {run['kind']} run; a teacher must be a zoo model trained here (fine-tunes take other pixels)",
    )
    path = run.get("checkpoint_path") or ""
    check(
        bool(path) and Path(path).is_file(),
        f"{label} has no checkpoint (its model file was not kept); remove it from the ensemble or retrain it",
    )
    theirs = run["spec"]
    for key in ("dataset", "val_size", "split_seed"):
        if theirs.get(key) != getattr(spec, key):
            raise UserError(
                f"{label} was trained with {key} {theirs.get(key)!r}, the student with {getattr(spec, key)!r}: "
                "a student must use its teacher's dataset and split (else the teacher has seen its validation images)"
            )


__all__ = ["HELP", "DistillSpec", "parse_teacher", "resolve_teacher"]
