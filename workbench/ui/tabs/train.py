"""Train tab: the RunSpec form, Train (queue and return at once), and the live panel that polls the store.

Lifecycle of a job as the page sees it: validate -> queue (run id) -> poll the store every 2 s (jobs
table, progress bar, curves) -> cancel / resume. Nothing lives in the page: reload it, or open a
second browser, and the same jobs are there.

The form starts with a recipe that fits the device: on a machine without a GPU the quick one (minutes),
else the classic one (hours on a GPU, days on a CPU); a button fills either, and the line under the
form says how long the form's run will take here. A third button fills the fast recipe (presets/fast.toml).
"""

import gradio as gr

from workbench.specs.catalogue import LOSS_PARAMS, SCHEDULE_PARAMS
from workbench.specs.flags import format_key_values
from workbench.specs.presets import load_preset
from workbench.specs.run import RunSpec
from workbench.ui.forms import (
    FORM_FIELDS,
    LABELS,
    FormWords,
    build_form,
    form_values_to_spec,
    option_hint,
    spec_to_form_values,
)
from workbench.ui.layout import FORM_AND_PANEL, FORM_MIN_WIDTH, PANEL_MIN_WIDTH
from workbench.ui.live_panel import create_live_panel
from workbench.ui.tabs.distill_form import distill_layout, wire_distill
from workbench.ui.tabs.search_form import search_layout, wire_search
from workbench.ui.tabs.spec_form import FormTab, command_box, estimate_box, say_at_once, wire_spec_form
from workbench.ui.tabs.sweep_form import sweep_layout, wire_sweep
from workbench.views.live import QUICK_HINT, SHORTER_HINT

# ResNet-20 on a 15,000-image subset for 5 epochs, cosine: 65.9% test in about 4 minutes on a 2-core CPU.
QUICK = RunSpec(model="resnet20", schedule="cosine", epochs=5, train_subset=15000)
FAST = "fast"  # presets/fast.toml: airbench_cpu and cifar10-airbench's recipe, 5 epochs


def recipes(data_path: str) -> dict:
    """The form's recipes: "quick" (ResNet-20 on a 15,000-image subset for 5 epochs, cosine), "fast"
    (presets/fast.toml) and "classic" (RunSpec's defaults: ResNet-20, 200 epochs, step schedule)."""
    fast = load_preset(FAST)[0]
    return {
        "quick": QUICK.replace(data_path=data_path, gpus=-1),
        "fast": fast.replace(name="", data_path=data_path, gpus=-1),
        "classic": RunSpec(data_path=data_path, gpus=-1),
    }


def same_run(spec: RunSpec, other: RunSpec) -> bool:
    """Whether two specs train the same run (their names and device choice aside)."""
    ignore = ("name", "gpus", "tensorboard")
    return {k: v for k, v in spec.to_dict().items() if k not in ignore} == {
        k: v for k, v in other.to_dict().items() if k not in ignore
    }


def train_hint(spec: RunSpec, quick: RunSpec) -> str:
    """The Train tab's advice for a run long for a CPU: its Quick CPU recipe button, unless the form
    already holds that recipe (then what shortens it)."""
    return SHORTER_HINT[:1].upper() + SHORTER_HINT[1:] if same_run(spec, quick) else QUICK_HINT


def create_train_tab(ctx) -> FormTab:
    recipe = recipes(ctx.data_path or "")
    defaults = recipe["classic" if ctx.gpu_names else "quick"]
    with gr.Row(equal_height=False, elem_classes=[FORM_AND_PANEL]):
        with gr.Column(scale=3, min_width=FORM_MIN_WIDTH):
            with gr.Row():
                quick_button = gr.Button("Quick CPU recipe (minutes)", size="sm", elem_id="recipe-quick")
                fast_button = gr.Button("Fast recipe (airbench, 5 epochs)", size="sm", elem_id="recipe-fast")
                classic_button = gr.Button("Classic recipe (resnet20, 200 epochs)", size="sm", elem_id="recipe-classic")
            form = build_form(defaults, len(ctx.gpu_names))
            estimate_box(
                ctx,
                form,
                lambda values: form_values_to_spec(*values),
                defaults,
                "train-estimate",
                hint=lambda spec: train_hint(spec, recipe["quick"]),
            )
            tags = gr.Textbox(label="Tags", placeholder="comma-separated, e.g. baseline,seed0", elem_id="train-tags")
            message = gr.Markdown(elem_id="train-message")
            train_button = gr.Button("Train", variant="primary", elem_id="train-button")
            command = command_box(defaults.to_cli(), "Equivalent command (copy to run it headless)", "train-command")
            distill = distill_layout()
            sweep = sweep_layout()
            search = search_layout()
        with gr.Column(scale=2, min_width=PANEL_MIN_WIDTH):
            panel = create_live_panel(ctx)

    def read_spec(values) -> RunSpec:
        """The form's spec as it would be queued: checked, its data path inside the allowed folders."""
        spec = form_values_to_spec(*values)  # paths first: nothing is said about files outside the folders
        return spec.replace(data_path=ctx.check_path(spec.data_path)).validate(available_gpus=len(ctx.gpu_names))

    words = FormWords(RunSpec, LABELS, FORM_FIELDS)
    tab = FormTab(form=form, command=command, panel=panel, tags=tags, distill=distill)
    wire_spec_form(ctx, tab, read_spec, words, message, train_button, api_name="train")
    for button, name in ((quick_button, "quick"), (fast_button, "fast"), (classic_button, "classic")):
        say_at_once(button, message, f"⏳ Filling in the {name} recipe…")
        button.click(
            lambda name=name: [*spec_to_form_values(recipe[name]), ""],
            None,
            [*form.values(), message],
            show_progress="hidden",
        )
    form["model"].change(lambda m: gr.update(placeholder=option_hint(m)), form["model"], form["model_kwargs"])
    form["loss"].change(
        lambda n: gr.update(placeholder=format_key_values(LOSS_PARAMS[n])), form["loss"], form["loss_params"]
    )
    form["schedule"].change(
        lambda n: gr.update(placeholder=format_key_values(SCHEDULE_PARAMS[n]) or "none"),
        form["schedule"],
        form["schedule_params"],
    )
    wire_distill(ctx, distill, form, tags, panel, read_spec, words)
    wire_sweep(ctx, sweep, form, tags, panel, read_spec, words)
    wire_search(ctx, search, form, tags, panel, read_spec, words)
    return tab
