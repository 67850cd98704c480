"""The protocol every kind of run's spec follows, written once.

A spec is a dataclass that mixes in `Spec` and says what it is with four class attributes:

    kind       the run kind the store files it under (`workbench.constants.RUN_KINDS`)
    command    its `python -m workbench <command>` subcommand
    help       {field: flag help text}; flag_names: {field: flag} where the flag is not --field-name

and it gets: `from_dict` / `to_dict` / `to_json` (what the store keeps), `normalized` (the loose types the
UI, the CLI and JSON deliver, coerced), `replace`, `to_cli` (the equivalent command) and `validate`
(names and numbers only: instant, before queueing; checks that need the data or a model run in the job).

Why plain dataclasses and not pydantic models: the messages are written for the person who typed the
value ("warm-up epochs must be in [0, 30)", with the classic value beside it), several checks relate
fields to each other, and the coercion rules are few; pydantic would add a second error format to
translate and nothing we use.
"""

import dataclasses
import json
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Self

from workbench.constants import RUN_KINDS
from workbench.data.datasets import DATASETS
from workbench.data.reviewed import check_data_options, loader_options
from workbench.errors import UserError, choose
from workbench.specs.flags import spec_to_args

if TYPE_CHECKING:
    from store.store import Store

PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")

# The settings every kind of run has, with the help text of their flags (the kinds add their own).
SHARED_HELP = {
    "augment": "comma-separated: flip_crop, cutout, autoaugment, mixup, cutmix; 'none' for none",
    "batch_size": "global batch size, split over the GPUs",
    "gpus": "-1: one GPU if present else CPU; 0: CPU; N: N GPUs with MirroredStrategy",
    "precision": f"one of {', '.join(PRECISIONS)}",
    "seed": "seed for initialisation, shuffling and augmentation",
    "dataset": "cifar10, cifar100, folder (an image folder at --data) or synthetic",
    "data_path": "CIFAR archive (official .tar.gz or JPEG tree/tar) or image folder; default: Keras' cache/download",
    "dataset_options": "synthetic: n_train=..,n_test=..,num_classes=..,seed=..,label_noise=..; any dataset: "
    "reviews=exclude|relabel "
    "(train with the training images' label reviews), cv_folds=K,cv_fold=k (a cross-validation fold)",
    "val_size": "validation images held out of the training set (0: 5,000 for CIFAR)",
    "split_seed": "seed of the stratified train/validation split",
    "train_subset": "train on a random (seeded) N images of the training split only (0: all)",
    "name": "run name (default: a summary of the settings)",
}


class Spec:
    """Mixin for spec dataclasses (see the module docstring)."""

    kind: ClassVar[str]
    label: ClassVar[str]  # what users call it in messages ("run", "fine-tune")
    command: ClassVar[str]
    help: ClassVar[dict]
    flag_names: ClassVar[dict] = {"data_path": "--data"}
    derived: ClassVar[tuple] = ()  # keys to_dict adds for readers (e.g. "epochs"); from_dict drops them

    if TYPE_CHECKING:  # what every kind's dataclass has (SHARED_HELP's settings), for the checker only
        __dataclass_fields__: ClassVar[dict[str, dataclasses.Field[Any]]]
        augment: tuple
        batch_size: int
        gpus: int
        precision: str
        seed: int
        dataset: str
        data_path: str
        dataset_options: dict
        val_size: int
        split_seed: int
        train_subset: int
        name: str

        @property
        def epochs(self) -> int: ...

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        choose("run kind", cls.kind, RUN_KINDS)

    # --- conversion ---------------------------------------------------------------------------

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["augment"] = list(self.augment)
        return data | {key: getattr(self, key) for key in self.derived}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict) -> Self:
        data = {k: v for k, v in data.items() if k not in cls.derived}
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise UserError(f"unknown {cls.label} setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**data).normalized()

    def normalized(self) -> Self:
        """Coerce types the UI, the CLI and JSON deliver loosely (strings, lists, floats for ints)."""
        from workbench.data.augment.ops import parse_augmentations  # noqa: PLC0415 - TensorFlow: the augmentations' module imports it

        values = {f.name: _coerce(f, getattr(self, f.name)) for f in dataclasses.fields(self)}
        values["augment"] = parse_augmentations(self.augment)
        return dataclasses.replace(self, **values)._normalize_names()

    def _normalize_names(self) -> Self:
        """Hook: case-folding of names a kind accepts loosely."""
        return self

    def replace(self, **changes: Any) -> Self:
        return dataclasses.replace(self, **changes).normalized()

    def to_cli(self) -> str:
        """The equivalent `python -m workbench <command>` (settings that differ from the defaults)."""
        return shlex.join(["python", "-m", "workbench", self.command, *spec_to_args(self)])

    def display_name(self) -> str:
        return self.name or self.default_name()

    def default_name(self) -> str:
        raise NotImplementedError

    # --- validation -----------------------------------------------------------------------------

    def validate(self, *, available_gpus: int = 0) -> Self:
        """Check every field without loading data or building a model; raise UserError saying what is
        allowed. Returns the normalised spec."""
        spec = self.normalized()
        spec.check_own()
        check_shared(spec, available_gpus)
        return spec

    def check_own(self) -> None:
        """Hook: the kind's own checks (its spec is already normalised)."""
        raise NotImplementedError

    def resolved(self, store: "Store") -> Self:
        """Hook: the spec with what it names in the store resolved and checked, when it is queued (a
        distillation's teacher becomes its member runs); a resume keeps what was resolved then."""
        return self


def check_shared(spec: Spec, available_gpus: int) -> None:
    """The checks of the settings every kind shares (SHARED_HELP), plus its epochs."""
    from workbench.data.augment.ops import build_augmenter, check_augment_params  # noqa: PLC0415 - TensorFlow: the augmentations' module imports it

    build_augmenter(spec.augment, 32, **check_augment_params(getattr(spec, "augment_params", {})))
    choose("precision", spec.precision, PRECISIONS)
    choose("dataset", spec.dataset, DATASETS)
    check(spec.epochs >= 1, "epochs must be at least 1")
    check(spec.batch_size >= 1, "batch size must be at least 1")
    check(spec.val_size >= 0 and spec.train_subset >= 0, "val_size and train_subset must be >= 0 (0 = default)")
    check(spec.gpus >= -1, "gpus must be -1 (auto), 0 (CPU) or a number of GPUs")
    check_data_options(spec.dataset_options)
    if spec.gpus > available_gpus:
        raise UserError(
            f"the run asks for {spec.gpus} GPU(s) but this machine has {available_gpus}; "
            "use --gpus 0 for the CPU or -1 for automatic"
        )
    if spec.dataset == "synthetic":
        check(not spec.data_path, "the synthetic dataset is generated: leave the data path empty")
        return
    check(
        not loader_options(spec.dataset_options),
        "dataset options n_train, n_test, num_classes, seed and label_noise apply to the synthetic dataset only "
        "(every dataset takes reviews=, cv_folds= and cv_fold=)",
    )
    if spec.data_path:
        path = Path(spec.data_path).expanduser()
        check(
            path.exists(),
            f"data path {spec.data_path} does not exist; give a CIFAR archive, its extracted folder or an image folder",
        )
        check(path.is_dir() or readable(path), f"data path {spec.data_path} cannot be read")
    elif spec.dataset == "folder":
        raise UserError("the 'folder' dataset needs a data path")


def check(condition: bool, message: str) -> None:
    if not condition:
        raise UserError(message)


def readable(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            f.read(1)
        return True
    except OSError:
        return False


def _coerce(f: dataclasses.Field[Any], value: Any) -> Any:
    kind = (
        f.type
        if isinstance(f.type, type)
        else {"int": int, "float": float, "bool": bool, "dict": dict, "str": str}.get(f.type)
    )
    try:
        if kind is int:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            return int(value)
        if kind is float:
            return float(value)
        if kind is bool:
            return value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes", "on")
        if kind is dict:
            return dict(value or {})
        if kind is str:
            return "" if value is None else str(value).strip()
    except (TypeError, ValueError):
        raise UserError(f"{f.name} must be {getattr(f.type, '__name__', f.type)}, got {value!r}") from None
    return value
