"""What the Train and Fine-tune tabs share: the `FormTab` they return (a spec's form, its equivalent
command and the live panel), the command and the time estimate kept up to date as the form changes, a
refused value flagged at its field, and queueing a run."""

import functools
import json
import shlex
from dataclasses import dataclass
from typing import Any

import gradio as gr

from workbench.errors import UserError
from workbench.jobs.estimate import estimate
from workbench.specs.flags import parse_tags
from workbench.specs.hardware import run_warning
from workbench.ui.live_panel import LivePanel, start_polling
from workbench.views.live import estimate_text


@dataclass(eq=False)
class FormTab:
    """A tab that queues runs from a spec's form, as the page and Runs' "Clone" use it."""

    form: dict  # spec field name -> its component, in the order of the spec's fields
    command: gr.Code  # the form's equivalent command line
    panel: LivePanel
    tags: gr.Textbox  # the new run's tags (not part of the spec: the store keeps them beside it)
    distill: Any = None  # the Train tab's Distil box (`workbench.ui.tabs.distill_form.DistillBox`)

    @property
    def timer(self) -> gr.Timer:
        return self.panel.timer

    @property
    def refresh(self):
        return self.panel.refresh


def command_box(value: str, label: str, elem_id: str) -> gr.Code:
    """The equivalent command: as tall as the command is long (it wraps), with a copy button."""
    return gr.Code(
        value, label=label, language="shell", interactive=False, wrap_lines=True, lines=1, max_lines=8, elem_id=elem_id
    )


def command_line(spec, tags: list) -> str:
    """The spec's command with the run's tags, as `python -m workbench train|finetune` takes them."""
    return spec.to_cli() + (" " + shlex.join(["--tags", ",".join(tags)]) if tags else "")


def wire_preview(form: dict, command, read, words, message, extra=()):
    """Show the form's command line in `command` whenever a field or an `extra` input (the tags) changes.
    `read(*values)` (the fields' values in `form`'s order, then the extras') returns the command or raises
    UserError; the refused field is then outlined with the reason as its info line, in the form's words
    (`words`: a `forms.FormWords`), until its value is accepted, which also clears `message` (its refusal)."""
    fields, info = list(form.values()), {name: c.info or "" for name, c in form.items()}
    flagged = gr.State(None)  # (field name, reason) shown at that field now

    def preview(*given):
        *values, shown = given
        try:
            text, now = read(*values), None
        except UserError as exc:
            reason, field = words.say(str(exc)), words.field(str(exc))
            text, now = f"# not runnable yet: {reason}", (field, reason) if field in form else None
        updates = {command: text, flagged: now}
        if now != shown:  # only the fields whose flag changes are sent
            if shown:
                updates[form[shown[0]]] = gr.update(elem_classes=[], info=info[shown[0]])
                updates[message] = gr.update(value="", elem_classes=[])
            if now:
                updates[form[now[0]]] = gr.update(elem_classes=["refused"], info=now[1])
        return updates

    inputs = [*fields, *extra]
    gr.on(
        [c.change for c in inputs],
        preview,
        inputs=[*inputs, flagged],
        outputs=[command, flagged, message, *fields],
        show_progress="hidden",
    )


def estimate_box(ctx, form: dict, values_to_spec, defaults, elem_id: str, hint=lambda spec: "") -> gr.Markdown:
    """A line under the form saying how long its spec will take here and what that figure rests on
    (`workbench.jobs.estimate`: the shipped constants of its family, refined by the store's runs of the same
    family and batch size), kept up to date as the form changes and on every page load (runs finished since
    change the history). hint(spec): the advice for a run long for a CPU, naming only this tab's buttons."""

    def say(read_spec) -> str:
        try:
            spec = read_spec().validate(available_gpus=len(ctx.gpu_names))
        except UserError:
            return ""  # the command box already says what to fix
        text = estimate_text(estimate(spec, ctx.store, len(ctx.gpu_names)), hint=hint(spec))
        warning = run_warning(spec, len(ctx.gpu_names))
        return text + (f"\n\n⚠️ **Precision:** {warning}." if warning else "")

    box = gr.Markdown(lambda: say(lambda: defaults), elem_id=elem_id)
    components = list(form.values())
    gr.on(
        [c.change for c in components],
        lambda *values: say(lambda: values_to_spec(values)),
        inputs=components,
        outputs=box,
        show_progress="hidden",
    )
    return box


def say_at_once(button, message, text: str):
    """`button`'s click writes `text` into `message` in the browser itself, at once: on a loaded machine the
    server's answer takes seconds, and the click must show it was taken (the answer then replaces it)."""
    button.click(None, None, message, js=f"() => {json.dumps(text)}", show_progress="hidden", api_visibility="private")


def wire_box(box, inputs: list, preview, submit, outputs: list, busy: str, api_name: str, timer) -> None:
    """A Sweep or Search box under the form: its summary and command follow every input (`preview(*inputs)`),
    its button says `busy` at once and submits (`submit(*inputs)` -> `outputs`), then the live panel polls."""
    gr.on([c.change for c in inputs], preview, inputs, [box.summary, box.command], show_progress="hidden")
    say_at_once(box.button, box.message, busy)
    submitted = box.button.click(submit, inputs, outputs, concurrency_limit=1, api_name=api_name)
    submitted.then(start_polling, None, timer, api_visibility="private")


def wire_submit(panel: LivePanel, button, submit, inputs: list, message, api_name: str, words):
    """`button` queues a run: `submit(*inputs)` queues it and returns its spec and run id, or raises
    UserError; `message` says which (a refusal in the form's words, highlighted), and the panel follows the
    new run and polls. The API answers (message, run followed) as before: the highlight is a private step."""
    refused = gr.State(False)  # State outputs are not part of the API's answer

    @functools.wraps(submit)
    def queue(*values):
        try:
            spec, run_id = submit(*values)
        except UserError as exc:
            return f"**Not queued:** {words.say(str(exc))}", gr.skip(), True
        follow, note = panel.followed_update(run_id)
        return f"Queued run {run_id}: **{spec.display_name()}**. {note}".strip(), follow, False

    say_at_once(button, message, "⏳ Checking the form and queueing the run…")
    queued = button.click(queue, inputs, [message, panel.follow, refused], concurrency_limit=1, api_name=api_name)
    queued.then(
        lambda no: gr.update(elem_classes=["refused"] if no else []),
        refused,
        message,
        api_visibility="private",
        show_progress="hidden",
    )
    queued.then(start_polling, None, panel.timer, api_visibility="private")


def wire_spec_form(ctx, tab: FormTab, read_spec, words, message, button, api_name: str):
    """A spec form's equivalent command kept up to date and its `button` queueing the run, with the tags.
    `read_spec(values)` (the fields' values in the form's order) gives the spec as it would be queued:
    its paths checked against the allowed folders (what differs between the Train and Fine-tune tabs),
    validated; else it raises UserError."""
    wire_preview(
        tab.form,
        tab.command,
        lambda *values: command_line(read_spec(values[:-1]), parse_tags(values[-1])),
        words,
        message,
        extra=[tab.tags],
    )

    def submit(tag_text, *values):
        spec = read_spec(values)
        return spec, ctx.queue.submit(spec, tags=parse_tags(tag_text), by=ctx.user().name)

    wire_submit(tab.panel, button, submit, [tab.tags, *tab.form.values()], message, api_name=api_name, words=words)
