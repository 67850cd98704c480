"""RunSpec <-> command-line flags: one flag per field, so the CLI, the presets and the UI's
"equivalent command" all speak the same language.

    --model wrn_28_10 --model-kwargs depth=16,widen_factor=4 --loss focal --loss-params gamma=2
    --augment flip_crop,cutout --schedule-params milestones=[0.5,0.75],gamma=0.1
"""
import argparse
import dataclasses
import json

from workbench.errors import UserError
from workbench.specs.run import OPTIMIZERS, PRECISIONS, RunSpec

HELP = {
    "model": "architecture from the model zoo (python -m workbench models lists them)",
    "model_kwargs": "the model family's options as key=value,... (e.g. depth=16,widen_factor=4)",
    "loss": "cross_entropy, focal or label_smoothing",
    "loss_params": "loss parameters as key=value,... (focal: gamma=2,alpha=0.25; label_smoothing=0.1)",
    "augment": "comma-separated: flip_crop, cutout, autoaugment, mixup, cutmix; 'none' for none",
    "augment_params": "augmentation parameters as key=value,... (cutout_size=16, pad=4, mixup_alpha=0.2)",
    "schedule": "learning-rate schedule: step, cosine, htd or constant",
    "schedule_params": "schedule parameters as key=value,... (step: milestones=[0.3,0.6,0.8],gamma=0.2)",
    "warmup_epochs": "linear learning-rate warm-up, in epochs",
    "optimizer": f"one of {', '.join(OPTIMIZERS)} (sgd uses Nesterov momentum)",
    "learning_rate": "peak learning rate",
    "momentum": "SGD/RMSprop momentum",
    "weight_decay": "weight decay (L2 on conv/dense kernels; decoupled for adamw)",
    "epochs": "number of epochs",
    "batch_size": "global batch size, split over the GPUs",
    "gpus": "-1: one GPU if present else CPU; 0: CPU; N: N GPUs with MirroredStrategy",
    "precision": f"one of {', '.join(PRECISIONS)}",
    "xla": "compile the training step with XLA",
    "seed": "seed for initialisation, shuffling and augmentation",
    "dataset": "cifar10, cifar100, folder (an image folder at --data) or synthetic",
    "data_path": "CIFAR archive (official .tar.gz or JPEG tree/tar) or image folder; default: Keras' cache/download",
    "dataset_options": "synthetic only: n_train=..,n_test=..,num_classes=..,seed=..",
    "val_size": "validation images held out of the training set (0: 5,000 for CIFAR)",
    "split_seed": "seed of the stratified train/validation split",
    "train_subset": "train on a random (seeded) N images of the training split only (0: all)",
    "name": "run name (default: model-loss-augment-epochs)",
}
FLAG_NAMES = {"data_path": "--data"}


def flag(field_name: str, names: dict = FLAG_NAMES) -> str:
    return names.get(field_name, "--" + field_name.replace("_", "-"))


def add_spec_arguments(parser: argparse.ArgumentParser, cls=RunSpec, help_texts: dict = HELP,
                       names: dict = FLAG_NAMES):
    """One flag per field of the spec dataclass `cls`, defaulting to None so we know which ones the user
    gave (RunSpec here; FinetuneSpec passes its own class, help and flag names)."""
    defaults = cls()
    for f in dataclasses.fields(cls):
        default = getattr(defaults, f.name)
        shown = ",".join(default) if isinstance(default, tuple) else default
        help_text = f"{help_texts[f.name]} (default: {shown if shown not in ('', {}) else 'none'})"
        if f.type is bool:
            parser.add_argument(flag(f.name, names), dest=f.name, action=argparse.BooleanOptionalAction,
                                default=None, help=help_text)
        elif f.type in (int, float):
            parser.add_argument(flag(f.name, names), dest=f.name, type=_number(f.type, f.name), default=None,
                                metavar=f.name.upper(), help=help_text)
        else:
            parser.add_argument(flag(f.name, names), dest=f.name, default=None, metavar=f.name.upper(),
                                help=help_text)


def spec_from_args(namespace, base=None, cls=RunSpec, names: dict = FLAG_NAMES):
    """A spec of type `cls` from parsed flags, on top of `base` (or the defaults)."""
    values = (base or cls()).to_dict()
    for f in dataclasses.fields(cls):
        given = getattr(namespace, f.name, None)
        if given is None:
            continue
        values[f.name] = parse_key_values(given, flag(f.name, names)) if f.type is dict else given
    return cls.from_dict(values)


def spec_to_args(spec, names: dict = FLAG_NAMES) -> list:
    """The flags that reproduce `spec` (only those that differ from its class's defaults)."""
    defaults = type(spec)()
    args = []
    for f in dataclasses.fields(spec):
        value = getattr(spec, f.name)
        if value == getattr(defaults, f.name):
            continue
        name = flag(f.name, names)
        if f.type is bool:
            args.append(name if value else "--no-" + name[2:])
        elif f.type is dict:
            args += [name, format_key_values(value)]
        elif f.type is tuple:
            args += [name, ",".join(value) or "none"]
        else:
            args += [name, str(value)]
    return args


def parse_key_values(text: str, where: str = "value") -> dict:
    """'a=1,b=[0.3,0.6],c=name' -> {'a': 1, 'b': [0.3, 0.6], 'c': 'name'}; a JSON object also works."""
    text = (text or "").strip()
    if not text or text.lower() == "none":
        return {}
    if text.startswith("{"):
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UserError(f"{where}: not valid JSON ({exc.msg}); use key=value,key=value") from None
        if not isinstance(value, dict):
            raise UserError(f"{where}: expected key=value pairs")
        return value
    result = {}
    for item in _split_top_level(text):
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"{where}: {item!r} is not key=value; write e.g. depth=16,widen_factor=4")
        try:
            result[key.strip()] = json.loads(raw.strip())
        except json.JSONDecodeError:
            result[key.strip()] = raw.strip()  # a bare word such as a layer name
    return result


def format_key_values(values: dict) -> str:
    return ",".join(f"{k}={json.dumps(v, separators=(',', ':')) if not isinstance(v, str) else v}"
                    for k, v in values.items())


def _split_top_level(text: str) -> list:
    """Split on commas that are not inside brackets."""
    parts, depth, current = [], 0, ""
    for char in text:
        depth += char in "[({"
        depth -= char in "])}"
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [p for p in (p.strip() for p in parts) if p]


def _number(kind, name):
    def convert(text):
        try:
            return kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be {'an integer' if kind is int else 'a number'}, got {text!r}")
    return convert
