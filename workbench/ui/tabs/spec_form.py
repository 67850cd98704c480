"""What the Train and Fine-tune tabs share: the `FormTab` they return (a spec's form, its equivalent
command and the live panel), the command and the time estimate kept up to date as the form changes,
and queueing a run."""
import functools
from dataclasses import dataclass

import gradio as gr

from workbench.errors import UserError
from workbench.jobs.estimate import estimate
from workbench.ui.live_panel import LivePanel, start_polling
from workbench.ui.views.live import estimate_text


@dataclass(eq=False)
class FormTab:
    """A tab that queues runs from a spec's form, as the page and Runs' "Clone" use it."""
    form: dict  # spec field name -> its component, in the order of the spec's fields
    command: gr.Code  # the form's equivalent command line
    panel: LivePanel
    tags: gr.Textbox  # the new run's tags (not part of the spec: the store keeps them beside it)

    @property
    def timer(self) -> gr.Timer:
        return self.panel.timer

    @property
    def refresh(self):
        return self.panel.refresh


def wire_preview(form: dict, command, values_to_spec, gpu_count: int):
    """Show the form's command line in `command` whenever a field changes (or why the form cannot run
    yet); `values_to_spec(values)` reads the fields' values, in `form`'s order, into a spec."""
    def preview(*values):
        try:
            return values_to_spec(values).validate(available_gpus=gpu_count).to_cli()
        except UserError as exc:
            return f"# fix the form first: {exc}"

    components = list(form.values())
    gr.on([c.change for c in components], preview, inputs=components, outputs=command, show_progress="hidden")


def estimate_box(ctx, form: dict, values_to_spec, defaults, elem_id: str) -> gr.Markdown:
    """A line under the form saying how long its spec will take here and where that figure comes from
    (`workbench.jobs.estimate`: the store's history, else a labelled rough figure), kept up to date as
    the form changes and on every page load (runs finished since change the history)."""
    def say(read_spec) -> str:
        try:
            spec = read_spec().validate(available_gpus=len(ctx.gpu_names))
        except UserError:
            return ""  # the command box already says what to fix
        return estimate_text(estimate(spec, ctx.store, len(ctx.gpu_names)))

    box = gr.Markdown(lambda: say(lambda: defaults), elem_id=elem_id)
    components = list(form.values())
    gr.on([c.change for c in components], lambda *values: say(lambda: values_to_spec(values)), inputs=components,
          outputs=box, show_progress="hidden")
    return box


def wire_submit(panel: LivePanel, button, submit, inputs: list, message, api_name: str):
    """`button` queues a run: `submit(*inputs)` queues it and returns its spec and run id, or raises
    UserError; `message` says which, and the panel follows the new run and polls."""
    @functools.wraps(submit)
    def queue(*values):
        try:
            spec, run_id = submit(*values)
        except UserError as exc:
            return f"**Not queued:** {exc}", gr.skip()
        follow, note = panel.followed_update(run_id)
        return f"Queued run {run_id}: **{spec.display_name()}**. {note}".strip(), follow

    button.click(queue, inputs, [message, panel.follow], concurrency_limit=1, api_name=api_name
                 ).then(start_polling, None, panel.timer, api_visibility="private")
