"""Train tab: the RunSpec form, Train (queue and return at once), and the live panel that polls the store.

Lifecycle of a job as the page sees it: validate -> queue (run id) -> poll the store every 2 s (jobs
table, progress bar, curves) -> cancel / resume. Nothing lives in the page: reload it, or open a
second browser, and the same jobs are there.
"""
import shlex

import gradio as gr

from workbench.specs.flags import format_key_values, parse_tags
from workbench.specs.run import RunSpec
from workbench.training.losses import LOSS_PARAMS
from workbench.training.schedules import SCHEDULE_PARAMS
from workbench.ui.forms import (
    FORM_FIELDS,
    LABELS,
    FormWords,
    build_form,
    form_values_to_spec,
    option_hint,
)
from workbench.ui.layout import FORM_MIN_WIDTH, PANEL_MIN_WIDTH
from workbench.ui.live_panel import create_live_panel
from workbench.ui.tabs.spec_form import FormTab, command_box, wire_preview, wire_submit


def command_line(spec, tags: list) -> str:
    """The spec's command with the run's tags, as `python -m workbench train` takes them."""
    return spec.to_cli() + (" " + shlex.join(["--tags", ",".join(tags)]) if tags else "")


def create_train_tab(ctx) -> FormTab:
    defaults = RunSpec(data_path=ctx.data_path or "", gpus=-1)
    with gr.Row(equal_height=False):
        with gr.Column(scale=3, min_width=FORM_MIN_WIDTH):
            form = build_form(defaults, len(ctx.gpu_names))
            tags = gr.Textbox(label="Tags", placeholder="comma-separated, e.g. baseline,seed0", elem_id="train-tags")
            message = gr.Markdown(elem_id="train-message")
            train_button = gr.Button("Train", variant="primary", elem_id="train-button")
            command = command_box(defaults.to_cli(), "Equivalent command (copy to run it headless)", "train-command")
        with gr.Column(scale=2, min_width=PANEL_MIN_WIDTH):
            panel = create_live_panel(ctx)

    def read_spec(values) -> RunSpec:
        """The form's spec as it would be queued: checked, its data path inside the allowed folders."""
        spec = form_values_to_spec(*values)  # paths first: nothing is said about files outside the folders
        return spec.replace(data_path=ctx.check_path(spec.data_path)).validate(available_gpus=len(ctx.gpu_names))

    words = FormWords(RunSpec, LABELS, FORM_FIELDS)
    wire_preview(form, command, lambda *values: command_line(read_spec(values[:-1]), parse_tags(values[-1])), words,
                 message, extra=[tags])
    form["model"].change(lambda m: gr.update(placeholder=option_hint(m)), form["model"], form["model_kwargs"])
    form["loss"].change(lambda n: gr.update(placeholder=format_key_values(LOSS_PARAMS[n])), form["loss"],
                        form["loss_params"])
    form["schedule"].change(lambda n: gr.update(placeholder=format_key_values(SCHEDULE_PARAMS[n]) or "none"),
                            form["schedule"], form["schedule_params"])

    def submit(tag_text, *values):
        spec = read_spec(values)
        return spec, ctx.queue.submit(spec, tags=parse_tags(tag_text))

    wire_submit(panel, train_button, submit, [tags, *form.values()], message, api_name="train", words=words)
    return FormTab(form=form, command=command, panel=panel)
