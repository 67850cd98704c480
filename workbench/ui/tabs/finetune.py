"""Fine-tune tab: an ImageNet backbone (Keras applications or a TF Hub / SavedModel handle) on CIFAR
resized to 96x96, in two phases (head on the frozen backbone, then the top layers unfrozen), with the
same live panel, cancel and resume as the Train tab. Its runs are ordinary runs of kind "finetune"."""

import dataclasses
from typing import Any

import gradio as gr

from workbench.data.augment.ops import AUGMENTATIONS
from workbench.data.datasets import DATASETS
from workbench.errors import UserError
from workbench.specs import finetune as finetune_spec
from workbench.specs.run import PRECISIONS
from workbench.training.backbones import layer_table
from workbench.ui.forms import (
    PATH_BOX,
    FormWords,
    gpu_choices,
    gpu_info,
    key_value_text,
    spec_to_fields,
)
from workbench.ui.forms import values_to_spec as spec_from_values
from workbench.ui.layout import FORM_AND_PANEL, FORM_MIN_WIDTH, PANEL_MIN_WIDTH
from workbench.ui.live_panel import create_live_panel
from workbench.ui.tabs.spec_form import FormTab, command_box, estimate_box, wire_spec_form

FINETUNE_HINT = "Fewer epochs, a smaller image size or a training subset make it shorter."

LAYOUT = [  # rows of the form, in FinetuneSpec field names; at most four a row, so none wraps beside the live panel
    ("backbone", "weights", "image_size"),
    ("head_epochs", "head_lr", "dense_units", "dropout"),  # phase 1: the new head
    ("finetune_epochs", "finetune_lr", "unfreeze_from"),  # phase 2: the top of the backbone too
    ("batch_size", "seed", "gpus", "precision"),
    ("augment",),  # alone: beside number fields its checkboxes wrapped and stretched the row
    ("dataset", "data_path", "dataset_options"),
    ("val_size", "split_seed", "train_subset", "name"),
]
LABELS = {
    "image_size": "Input size (pixels)",
    "head_epochs": "Phase 1 epochs (head)",
    "head_lr": "Phase 1 lr (RMSprop)",
    "finetune_epochs": "Phase 2 epochs (fine-tune)",
    "finetune_lr": "Phase 2 lr (SGD, Nesterov)",
    "unfreeze_from": "Unfreeze from layer (-1: default)",
    "dense_units": "Head units",
    "data_path": "Data path",
    "dataset_options": "Dataset options (synthetic sizes; reviews=exclude|relabel)",
    "val_size": "Validation images (0 = default)",
    "train_subset": "Training subset (0 = all)",
    "name": "Run name (optional)",
    "gpus": "GPUs",
}
# Help where the form differs from the CLI flag it shares the spec's text with.
FORM_HELP = {"augment": "applied at 32x32, before the resize; none ticked: no augmentation"}


PATHS = ("data_path", "weights")  # fields that take a file's path: one line, never broken inside a name


def build_form(defaults, gpu_count: int) -> dict:
    fs = finetune_spec
    types = {f.name: f.type for f in dataclasses.fields(fs.FinetuneSpec)}
    words = form_words()
    help_text = {**{name: words.say(text) for name, text in fs.HELP.items()}, **FORM_HELP, "gpus": gpu_info(gpu_count)}
    c: dict[str, Any] = {}
    with gr.Group():
        for row in LAYOUT:
            with gr.Row():
                for name in row:
                    value, label = getattr(defaults, name), LABELS.get(name, name.replace("_", " ").capitalize())
                    kwargs: dict[str, Any] = dict(label=label, info=help_text.get(name), elem_id=f"ft-{name}")
                    if name == "backbone":
                        c[name] = gr.Dropdown(list(fs.BACKBONES), value=value, allow_custom_value=True, **kwargs)
                    elif name == "augment":
                        c[name] = gr.CheckboxGroup(list(AUGMENTATIONS), value=list(value), **kwargs)
                    elif name == "gpus":
                        c[name] = gr.Dropdown(gpu_choices(gpu_count), value=value, **kwargs)
                    elif name == "precision":
                        c[name] = gr.Dropdown(list(PRECISIONS), value=value, **kwargs)
                    elif name == "dataset":
                        c[name] = gr.Dropdown(list(DATASETS), value=value, **kwargs)
                    elif types[name] is dict:
                        c[name] = gr.Textbox(key_value_text(value), **kwargs)
                    elif types[name] in (int, float):
                        c[name] = gr.Number(value, precision=0 if types[name] is int else None, **kwargs)
                    elif name in PATHS:
                        c[name] = gr.Textbox(value, **kwargs, **PATH_BOX)
                    else:
                        c[name] = gr.Textbox(value, **kwargs)
    missing = [f.name for f in dataclasses.fields(fs.FinetuneSpec) if f.name not in c]
    assert not missing, f"the fine-tune form lacks {missing}"
    return c


def form_words() -> FormWords:
    return FormWords(finetune_spec.FinetuneSpec, LABELS, form_names())


def form_names() -> list:
    """The form's fields in component order (LAYOUT read row by row)."""
    return [name for row in LAYOUT for name in row]


def form_fields(spec) -> dict:
    """The form's values for a FinetuneSpec by field name, in `form_names()` order (Runs' "Clone")."""
    return spec_to_fields(spec, form_names())


def values_to_spec(names: list, values):
    return spec_from_values(finetune_spec.FinetuneSpec, names, values, LABELS)


def list_layers(backbone, size):
    try:
        if str(backbone).startswith(finetune_spec.HUB_PREFIX):
            raise UserError("a hub SavedModel is one layer to Keras: it is fine-tuned whole in phase 2")
        return [list(row) for row in layer_table(backbone, int(size or 96))], ""
    except UserError as exc:
        return [], f"**{exc}**"


def create_finetune_tab(ctx) -> FormTab:
    fs = finetune_spec
    defaults = fs.FinetuneSpec(data_path=ctx.data_path or "")
    with gr.Row(equal_height=False, elem_classes=[FORM_AND_PANEL]):
        with gr.Column(scale=3, min_width=FORM_MIN_WIDTH):
            gr.Markdown(
                "Phase 1 trains a new head (pooling, Dense, logits) on the frozen backbone; phase 2 "
                "unfreezes the backbone from the chosen layer (BatchNorm stays frozen) and trains on with a "
                "small learning rate. Images are resized on the fly; nothing is materialised. "
                "ImageNet weights download on first use; offline, give a weights file's path."
            )
            form = build_form(defaults, len(ctx.gpu_names))
            tags = gr.Textbox(label="Tags", placeholder="comma-separated, e.g. baseline,seed0", elem_id="ft-tags")
            estimate_box(
                ctx,
                form,
                lambda values: values_to_spec(list(form), values),
                defaults,
                "ft-estimate",
                hint=lambda spec: FINETUNE_HINT,  # this tab has no recipe buttons
            )
            message = gr.Markdown(elem_id="ft-message")
            start = gr.Button("Fine-tune", variant="primary", elem_id="ft-button")
            command = command_box(defaults.to_cli(), "Equivalent command", "ft-command")
            with gr.Accordion("Backbone layers (to choose the unfreeze point)", open=False):
                show_layers = gr.Button("Show the backbone's layers", size="sm")
                layers = gr.Dataframe(
                    headers=["index", "name", "type", "trainable params"],
                    value=[],
                    interactive=False,
                    max_height=360,
                    elem_id="ft-layers",
                )
        with gr.Column(scale=2, min_width=PANEL_MIN_WIDTH):
            panel = create_live_panel(ctx, prefix="ft-", api_prefix="finetune_", active=False)
    names = list(form)

    def read_spec(values):
        """The form's spec as it would be queued: checked, its files inside the allowed folders."""
        spec = values_to_spec(names, values)  # paths first: nothing is said about files outside the folders
        spec = spec.replace(data_path=ctx.check_path(spec.data_path))
        if spec.weights not in fs.WEIGHT_CHOICES:
            spec = spec.replace(weights=ctx.check_path(spec.weights, "weights file"))
        if spec.is_hub and not spec.hub_handle.startswith(("http://", "https://")):
            ctx.check_path(spec.hub_handle, "SavedModel folder")
        return spec.validate(available_gpus=len(ctx.gpu_names))

    tab = FormTab(form=form, command=command, panel=panel, tags=tags)
    wire_spec_form(ctx, tab, read_spec, form_words(), message, start, api_name="finetune")
    show_layers.click(list_layers, [form["backbone"], form["image_size"]], [layers, message])
    return tab
