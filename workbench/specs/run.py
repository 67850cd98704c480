"""RunSpec: everything that defines a training run, validated once, stored as JSON with the run,
and printable as the equivalent CLI command.

Specs are data: presets list them, the UI fills one from its form, the CLI from its flags.
"""
import dataclasses
import json
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from workbench.errors import UserError, choose

OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
KINDS = ("scratch", "finetune")


@dataclass
class RunSpec:
    """A training run. Defaults are the classic CIFAR recipe (SGD + Nesterov 0.9, lr 0.1, weight decay
    5e-4, batch 128, step schedule x0.2 at 30/60/80% of 200 epochs, flip + crop)."""

    model: str = "resnet20"
    model_kwargs: dict = field(default_factory=dict)
    loss: str = "cross_entropy"
    loss_params: dict = field(default_factory=dict)
    augment: tuple = ("flip_crop",)
    augment_params: dict = field(default_factory=dict)
    schedule: str = "step"
    schedule_params: dict = field(default_factory=dict)
    warmup_epochs: float = 0.0
    optimizer: str = "sgd"
    learning_rate: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    epochs: int = 200
    batch_size: int = 128
    gpus: int = -1  # -1: one GPU when there is one, else the CPU; 0: the CPU; N: N GPUs (MirroredStrategy)
    precision: str = "float32"
    xla: bool = False
    seed: int = 0
    dataset: str = "cifar10"
    data_path: str = ""
    dataset_options: dict = field(default_factory=dict)  # synthetic only: n_train, n_test, num_classes, seed
    val_size: int = 0  # 0: the default (5,000 for CIFAR, a tenth of smaller sets)
    split_seed: int = 0
    train_subset: int = 0  # 0: the whole training split; N: a seeded random N of it (quick looks, tests)
    name: str = ""

    # --- conversion ---------------------------------------------------------------------------

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["augment"] = list(self.augment)
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict) -> "RunSpec":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise UserError(f"unknown run setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        spec = cls(**data)
        return spec.normalized()

    def normalized(self) -> "RunSpec":
        """Coerce types the UI, the CLI and JSON deliver loosely (strings, lists, floats for ints)."""
        from workbench.data.augment.ops import parse_augmentations

        values = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            try:
                if f.type is int or f.type == "int":
                    if isinstance(value, float) and not value.is_integer():
                        raise ValueError(value)
                    value = int(value)
                elif f.type is float or f.type == "float":
                    value = float(value)
                elif f.type is bool or f.type == "bool":
                    value = value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes", "on")
                elif f.type is dict or f.type == "dict":
                    value = dict(value or {})
                elif f.type is str or f.type == "str":
                    value = "" if value is None else str(value).strip()
            except (TypeError, ValueError):
                raise UserError(f"{f.name} must be {getattr(f.type, '__name__', f.type)}, got {value!r}") from None
            values[f.name] = value
        values["augment"] = parse_augmentations(self.augment)
        return dataclasses.replace(self, **values)

    def replace(self, **changes) -> "RunSpec":
        return dataclasses.replace(self, **changes).normalized()

    def display_name(self) -> str:
        if self.name:
            return self.name
        augment = "+".join(self.augment) or "noaug"
        options = ",".join(f"{k}={v}" for k, v in sorted(self.model_kwargs.items()))
        model = f"{self.model}({options})" if options else self.model
        return f"{model}-{self.loss}-{augment}-{self.epochs}ep"

    def to_cli(self) -> str:
        """The equivalent `python -m workbench train` command (settings that differ from defaults)."""
        from workbench.specs.flags import spec_to_args

        return shlex.join(["python", "-m", "workbench", "train", *spec_to_args(self)])

    # --- validation -----------------------------------------------------------------------------

    def validate(self, *, available_gpus: int = 0) -> "RunSpec":
        """Check every field; raise UserError saying what is allowed. Returns the normalised spec.

        Building the model and the recipe pieces is left to `check_buildable`, which costs seconds.
        """
        from models import list_models, model_info
        from workbench.data.augment.ops import build_augmenter, check_augment_params
        from workbench.data.datasets import DATASETS
        from workbench.training.losses import loss_params
        from workbench.training.schedules import schedule_params

        spec = self.normalized()
        choose("model", spec.model, list_models())
        options = model_info(spec.model)["options"]
        if "weight_decay" in spec.model_kwargs:
            raise UserError("set weight decay with the run's weight_decay setting (--weight-decay), not as a model option")
        unknown = sorted(set(spec.model_kwargs) - set(options))
        if unknown:
            raise UserError(f"model {spec.model!r} has no option {', '.join(unknown)}; "
                            f"it takes: {', '.join(sorted(set(options) - {'weight_decay'})) or 'none'}")
        loss_params(spec.loss, spec.loss_params)
        schedule_params(spec.schedule, spec.schedule_params)
        build_augmenter(spec.augment, 32, **check_augment_params(spec.augment_params))
        choose("optimizer", spec.optimizer, OPTIMIZERS)
        choose("precision", spec.precision, PRECISIONS)
        choose("dataset", spec.dataset, DATASETS)
        _check(spec.epochs >= 1, "epochs must be at least 1")
        _check(spec.batch_size >= 1, "batch size must be at least 1 (classic: 128)")
        _check(spec.learning_rate > 0, "learning rate must be > 0 (classic SGD: 0.1)")
        _check(0 <= spec.momentum < 1, "momentum must be in [0, 1) (classic: 0.9)")
        _check(0 <= spec.weight_decay < 1, "weight decay must be in [0, 1) (classic: 5e-4)")
        _check(0 <= spec.warmup_epochs < spec.epochs, f"warm-up epochs must be in [0, {spec.epochs})")
        _check(spec.val_size >= 0 and spec.train_subset >= 0, "val_size and train_subset must be >= 0 (0 = default)")
        _check(spec.gpus >= -1, "gpus must be -1 (auto), 0 (CPU) or a number of GPUs")
        if spec.gpus > available_gpus:
            raise UserError(f"the run asks for {spec.gpus} GPU(s) but this machine has {available_gpus}; "
                            "use --gpus 0 for the CPU or -1 for automatic")
        if spec.dataset == "synthetic":
            _check(not spec.data_path, "the synthetic dataset is generated: leave the data path empty")
        else:
            _check(not spec.dataset_options, "dataset options (n_train, n_test, ...) apply to the synthetic dataset only")
            if spec.data_path:
                path = Path(spec.data_path).expanduser()
                _check(path.exists(), f"data path {spec.data_path} does not exist; give a CIFAR archive, "
                       "its extracted folder or an image folder")
                _check(path.is_dir() or _readable(path), f"data path {spec.data_path} cannot be read")
            elif spec.dataset == "folder":
                raise UserError("the 'folder' dataset needs a data path")
        return spec


def _check(condition: bool, message: str):
    if not condition:
        raise UserError(message)


def _readable(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            f.read(1)
        return True
    except OSError:
        return False
