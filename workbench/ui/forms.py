"""The Train form <-> RunSpec: one component per RunSpec field, in `FORM_FIELDS` order.

The Train tab builds the components with `build_form`; the Runs tab's "clone" fills them by name
with `spec_to_fields(spec, FORM_FIELDS)`; Train reads them back with `form_values_to_spec(*values)`
(`spec_to_form_values(spec)` gives the same values as a list, in the order of the `/train` API).
Dict-valued fields are edited as `key=value,...` text, the same syntax as the CLI flags.
"""

import dataclasses
import difflib
import re
from typing import Any

import gradio as gr

from models import list_models, model_info
from workbench.data.augment.ops import AUGMENTATIONS
from workbench.data.datasets import DATASETS
from workbench.errors import UserError
from workbench.specs.catalogue import LOSS_PARAMS, LOSSES, SCHEDULE_PARAMS, SCHEDULES
from workbench.specs.flags import flag, format_key_values, parse_key_values
from workbench.specs.run import AIRBENCH_SETTINGS, HELP, OPTIMIZERS, PRECISIONS, RunSpec

FORM_FIELDS = [f.name for f in dataclasses.fields(RunSpec)]
DICT_FIELDS = {f.name for f in dataclasses.fields(RunSpec) if f.type is dict}
LABELS = {
    "model_kwargs": "Model options",
    "loss_params": "Loss parameters",
    "augment": "Augmentations",
    "augment_params": "Augmentation parameters",
    "schedule_params": "Schedule parameters",
    "warmup_epochs": "Warm-up epochs",
    "learning_rate": "Learning rate",
    "weight_decay": "Weight decay",
    "ema_momentum": "Weight EMA momentum",
    "dirac_init": "Dirac init (airbench)",
    "bn_bias_lr": "BN bias lr multiplier",
    "whiten_bias_epochs": "Whitening bias epochs",
    "lookahead_every": "Lookahead every (steps)",
    "low_res_epochs": "Epochs at 24 px",
    "batch_size": "Batch size",
    "gpus": "GPUs",
    "xla": "XLA",
    "data_path": "Data path",
    "dataset_options": "Dataset options (synthetic sizes; reviews=exclude|relabel)",
    "val_size": "Validation images (0 = default)",
    "split_seed": "Split seed",
    "train_subset": "Training subset (0 = all)",
    "name": "Run name (optional)",
    "tensorboard": "TensorBoard events live",
    "snapshots": "Snapshots (cosine cycles, 0 = off)",
    "snapshot_checkpoints": "Keep snapshot checkpoints",
    "average_last": "Average last K epochs (SWA, 0 = off)",
    "average_snapshots": "Average the snapshots (SWA)",
}


# A path's field is one line that scrolls: a wrapping box broke a path wherever it ran out of room, at a
# hyphen or inside a name ("cifar-" / "10-batches-py" at 1400 px, issue 23), which read as a different path.
PATH_BOX: dict[str, Any] = dict(lines=1, max_lines=1)


def gpu_choices(gpu_count: int) -> list:
    choices = [("auto", -1), ("CPU", 0)]
    return choices + [(f"{n} GPU{'s' if n > 1 else ''}", n) for n in range(1, gpu_count + 1)]


def gpu_info(gpu_count: int) -> str:
    return f"{gpu_count} detected; auto: one if any"


def build_form(defaults: RunSpec, gpu_count: int) -> dict:
    """Create the form's components (inside the caller's layout) and return them by field name."""
    d = defaults
    c: dict[str, Any] = {}
    info = lambda name: HELP[name]  # noqa: E731
    with gr.Group():
        with gr.Row():
            # A typed name is kept as typed (not replaced by a listed one) and refused at the field when the
            # zoo has no such model (`check_model`).
            c["model"] = gr.Dropdown(
                list_models(), value=d.model, label="Model", info="from the model zoo", allow_custom_value=True
            )
            c["model_kwargs"] = gr.Textbox(
                key_value_text(d.model_kwargs),
                label=LABELS["model_kwargs"],
                placeholder=option_hint(d.model),
                info="key=value,... (blank: the variant's own)",
            )
        with gr.Row():
            c["loss"] = gr.Dropdown(list(LOSSES), value=d.loss, label="Loss")
            c["loss_params"] = gr.Textbox(
                key_value_text(d.loss_params),
                label=LABELS["loss_params"],
                placeholder=key_value_text(LOSS_PARAMS[d.loss]),
                info=info("loss_params"),
            )
        with gr.Row():
            c["augment"] = gr.CheckboxGroup(list(AUGMENTATIONS), value=list(d.augment), label="Augmentations")
            c["augment_params"] = gr.Textbox(
                key_value_text(d.augment_params),
                label=LABELS["augment_params"],
                placeholder="cutout_size=16,pad=4,mixup_alpha=0.2",
                info=info("augment_params"),
            )
        with gr.Row():
            c["schedule"] = gr.Dropdown(list(SCHEDULES), value=d.schedule, label="Schedule")
            c["schedule_params"] = gr.Textbox(
                key_value_text(d.schedule_params),
                label=LABELS["schedule_params"],
                placeholder=key_value_text(SCHEDULE_PARAMS[d.schedule]),
                info=info("schedule_params"),
            )
            c["warmup_epochs"] = gr.Number(d.warmup_epochs, label=LABELS["warmup_epochs"])
        with gr.Row():
            c["optimizer"] = gr.Dropdown(list(OPTIMIZERS), value=d.optimizer, label="Optimizer")
            c["learning_rate"] = gr.Number(d.learning_rate, label=LABELS["learning_rate"])
            c["momentum"] = gr.Number(d.momentum, label="Momentum")
            c["weight_decay"] = gr.Number(d.weight_decay, label=LABELS["weight_decay"])
        with gr.Row():
            c["ema_momentum"] = gr.Number(d.ema_momentum, label=LABELS["ema_momentum"])
            c["dirac_init"] = gr.Checkbox(d.dirac_init, label=LABELS["dirac_init"], info="identity 3x3 convs")
            c["bn_bias_lr"] = gr.Number(d.bn_bias_lr, label=LABELS["bn_bias_lr"], info="airbench: 64; 1: off")
        with gr.Row():
            c["whiten_bias_epochs"] = gr.Number(
                d.whiten_bias_epochs, label=LABELS["whiten_bias_epochs"], precision=0, info="airbench: 3; 0: none"
            )
            c["lookahead_every"] = gr.Number(
                d.lookahead_every, label=LABELS["lookahead_every"], precision=0, info="airbench: 5; 0: off"
            )
            c["low_res_epochs"] = gr.Number(
                d.low_res_epochs, label=LABELS["low_res_epochs"], precision=0, info="progressive resolution; 0: off"
            )
        with gr.Row():
            c["epochs"] = gr.Number(d.epochs, label="Epochs", precision=0)
            c["batch_size"] = gr.Number(d.batch_size, label=LABELS["batch_size"], precision=0)
            c["gpus"] = gr.Dropdown(
                gpu_choices(gpu_count), value=d.gpus, label=LABELS["gpus"], info=gpu_info(gpu_count)
            )
        with gr.Row():  # three a row: six wrapped at the side-by-side width and stretched the last one
            c["precision"] = gr.Dropdown(list(PRECISIONS), value=d.precision, label="Precision")
            c["xla"] = gr.Checkbox(d.xla, label=LABELS["xla"])
            c["seed"] = gr.Number(d.seed, label="Seed", precision=0)
        with gr.Row():
            c["dataset"] = gr.Dropdown(list(DATASETS), value=d.dataset, label="Dataset")
            c["data_path"] = gr.Textbox(d.data_path, label=LABELS["data_path"], info=info("data_path"), **PATH_BOX)
            c["dataset_options"] = gr.Textbox(
                key_value_text(d.dataset_options),
                label=LABELS["dataset_options"],
                placeholder="n_train=2000,n_test=500",
            )
        with gr.Row():
            c["val_size"] = gr.Number(d.val_size, label=LABELS["val_size"], precision=0)
            c["split_seed"] = gr.Number(d.split_seed, label=LABELS["split_seed"], precision=0)
            c["train_subset"] = gr.Number(d.train_subset, label=LABELS["train_subset"], precision=0)
            c["name"] = gr.Textbox(d.name, label=LABELS["name"])
        c["tensorboard"] = gr.Checkbox(d.tensorboard, label=LABELS["tensorboard"], info=info("tensorboard"))
        with gr.Row():  # cheap ensembles from this one run (workbench.training.snapshots)
            c["snapshots"] = gr.Number(d.snapshots, label=LABELS["snapshots"], precision=0, info="M >= 2; cosine")
            c["snapshot_checkpoints"] = gr.Checkbox(d.snapshot_checkpoints, label=LABELS["snapshot_checkpoints"])
            c["average_last"] = gr.Number(d.average_last, label=LABELS["average_last"], precision=0, info="K >= 2")
            c["average_snapshots"] = gr.Checkbox(
                d.average_snapshots, label=LABELS["average_snapshots"], info="instead of the last K epochs"
            )
    assert list(c) == FORM_FIELDS, "the form must cover every RunSpec field, in order"
    for name, component in c.items():
        component.elem_id = f"field-{name}"  # stable handles for browser tests
    return c


def check_model(name) -> str:
    """`name` when the zoo has that model; else a UserError saying what was typed, the closest names and
    where the whole list is (the Model field names itself first, so the refusal is shown at that field)."""
    names = list_models()
    if name in names:
        return name
    if name in (None, ""):
        raise UserError("Model is empty; enter a value")
    close = difflib.get_close_matches(str(name or ""), names, n=3, cutoff=0.6)
    closest = f"closest: {', '.join(close)}" if close else "no listed name is close"
    raise UserError(
        f"Model “{name}” is not in the model zoo ({closest}); the Model list shows all {len(names)}, "
        "as does python -m workbench models"
    )


def option_hint(model: str) -> str:
    if model not in list_models():
        return ""  # an unknown name: the Model field says so
    info = model_info(model)  # the family's options with the variant's own values (resnet110: depth=110, not 20)
    run_settings = {"weight_decay", *AIRBENCH_SETTINGS}  # options the form has fields of its own for
    options = {k: _rounded(v) for k, v in {**info["options"], **info["defaults"]}.items() if k not in run_settings}
    return key_value_text(options)


def _rounded(value):
    """A default as a hint shows it: floats to 3 significant digits (airbench's scale 1/9 as 0.111, not
    0.1111111111111111, which the field cut short), inside lists too; other values unchanged."""
    if isinstance(value, float):
        return float(f"{value:.3g}")
    if isinstance(value, (list, tuple)):
        return [_rounded(v) for v in value]
    return value


def key_value_text(values: dict) -> str:
    """A dict option as the form shows it: `key=value,...`, or empty for none."""
    return format_key_values(values) if values else ""


def spec_to_form_values(spec: RunSpec) -> list:
    """Values for the form's components, in FORM_FIELDS order."""
    return list(spec_to_fields(spec, FORM_FIELDS).values())


def spec_to_fields(spec, names) -> dict:
    """Form values of any spec dataclass by field name: dicts as `key=value,...` text, the
    augmentation tuple as a list (what a CheckboxGroup takes)."""
    fields = {}
    for name in names:
        value = getattr(spec, name)
        if isinstance(value, dict):
            value = key_value_text(value)
        elif name == "augment":
            value = list(value)
        fields[name] = value
    return fields


def form_values_to_spec(*values) -> RunSpec:
    """A RunSpec from the Train form's values (raises UserError with the field's problem)."""
    check_model(values[FORM_FIELDS.index("model")])
    return values_to_spec(RunSpec, FORM_FIELDS, values, LABELS)


def values_to_spec(cls, names, values, labels: dict):
    """A spec of dataclass `cls` from form values by field name: dict fields are parsed from their
    `key=value,...` text, and an emptied number or choice is refused with the field's label."""
    dict_fields = {f.name for f in dataclasses.fields(cls) if f.type is dict}
    data = {}
    for name, value in zip(names, values):
        label = labels.get(name, name.replace("_", " ").capitalize())
        if name in dict_fields:
            value = parse_key_values(value or "", label)
        elif value is None and name not in ("name", "data_path"):
            raise UserError(f"{label} is empty; enter a value")
        data[name] = value
    return cls.from_dict(data)


class FormWords:
    """A spec's messages and help in a form's words. The specs speak for the CLI (`--unfreeze-from`,
    `val_size`); a form names its fields by their labels, so `say` puts a field's label in place of its
    flag or snake_case name, and `field` finds which field a refusal is about (the one named first)."""

    def __init__(self, spec_class, labels: dict, names):
        self.cli, aliases = {}, {}
        for name in names:
            label = plain_label(labels.get(name, name.replace("_", " ").capitalize()))
            cli_words = {flag(spec_class, name), "--" + name.replace("_", "-")}
            if "_" in name:
                cli_words |= {name, name.replace("_", "-")}
            self.cli.update({word: f"“{label}”" for word in cli_words})
            aliases.update({alias.lower(): name for alias in cli_words | {name.replace("_", " "), label}})
        self._cli = _words_pattern(self.cli)
        self._aliases, self._alias_pattern = aliases, _words_pattern(aliases)

    def say(self, text: str) -> str:
        return self._cli.sub(lambda m: self.cli[m.group(0)], text)

    def field(self, message: str):
        """The field the message names first (its longest name where several start there), or None."""
        found = self._alias_pattern.search(message.lower())
        return self._aliases[found.group(0)] if found else None


def plain_label(label: str) -> str:
    """A label as a sentence names its field: "Input size (pixels)" -> "Input size"."""
    return re.sub(r"\s*\(.*\)$", "", label)


def _words_pattern(words) -> re.Pattern:
    """Any of `words` as a whole word (not inside a longer name); longer words tried first."""
    alternatives = "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
    return re.compile(rf"(?<![\w-])(?:{alternatives})(?![\w-])")
