"""Train tab: the RunSpec form, Train (queue and return at once), and the live panel that polls the store.

Lifecycle of a job as the page sees it: validate -> queue (run id) -> poll the store every 2 s (jobs
table, progress bar, curves) -> cancel / resume. Nothing lives in the page: reload it, or open a
second browser, and the same jobs are there.
"""
import gradio as gr

from workbench.specs.flags import format_key_values, parse_tags
from workbench.specs.run import RunSpec
from workbench.training.losses import LOSS_PARAMS
from workbench.training.schedules import SCHEDULE_PARAMS
from workbench.ui.forms import build_form, form_values_to_spec, option_hint
from workbench.ui.layout import FORM_MIN_WIDTH, PANEL_MIN_WIDTH
from workbench.ui.live_panel import create_live_panel
from workbench.ui.tabs.spec_form import FormTab, wire_preview, wire_submit


def create_train_tab(ctx) -> FormTab:
    defaults = RunSpec(data_path=ctx.data_path or "", gpus=-1)
    with gr.Row(equal_height=False):
        with gr.Column(scale=3, min_width=FORM_MIN_WIDTH):
            form = build_form(defaults, len(ctx.gpu_names))
            tags = gr.Textbox(label="Tags", placeholder="comma-separated, e.g. baseline,seed0")
            message = gr.Markdown(elem_id="train-message")
            train_button = gr.Button("Train", variant="primary", elem_id="train-button")
            command = gr.Code(defaults.to_cli(), label="Equivalent command (copy to run it headless)",
                              language="shell", interactive=False, elem_id="train-command", wrap_lines=True)
        with gr.Column(scale=2, min_width=PANEL_MIN_WIDTH):
            panel = create_live_panel(ctx)

    wire_preview(form, command, lambda values: form_values_to_spec(*values), len(ctx.gpu_names))
    form["model"].change(lambda m: gr.update(placeholder=option_hint(m)), form["model"], form["model_kwargs"])
    form["loss"].change(lambda n: gr.update(placeholder=format_key_values(LOSS_PARAMS[n])), form["loss"],
                        form["loss_params"])
    form["schedule"].change(lambda n: gr.update(placeholder=format_key_values(SCHEDULE_PARAMS[n]) or "none"),
                            form["schedule"], form["schedule_params"])

    def submit(tag_text, *values):
        spec = form_values_to_spec(*values)
        spec = spec.replace(data_path=ctx.check_path(spec.data_path))
        return spec, ctx.queue.submit(spec, tags=parse_tags(tag_text))

    wire_submit(panel, train_button, submit, [tags, *form.values()], message, api_name="train")
    return FormTab(form=form, command=command, panel=panel)
