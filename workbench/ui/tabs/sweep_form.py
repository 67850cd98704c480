"""The Train tab's Sweep box: several values for the model, loss, augmentation, schedule, learning rate and
seed; the form gives every other setting. Under the boxes, kept up to date as anything changes: how many runs
the cross product makes, how long they take here, the equivalent `python -m workbench sweep` command, or the
combination that would be refused. **Queue sweep** checks every run first and queues all of them (tagged
`sweep:NAME`) or none. The expansion is `workbench.specs.sweep`'s, shared with the CLI and the presets.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import gradio as gr

from models import list_models
from workbench.errors import UserError
from workbench.jobs.estimate_many import estimate_many
from workbench.specs.catalogue import LOSSES, SCHEDULES
from workbench.specs.flags import parse_tags
from workbench.specs.sweep import AXES, Sweep, default_name, submit_sweep
from workbench.ui.tabs.spec_form import command_box, wire_box
from workbench.views.sweeps import time_text

EMPTY = (
    "Fill one or more boxes with several values to sweep them; every other setting comes from the form "
    "above. Each run is checked before any is queued."
)


@dataclass(eq=False)
class SweepBox:
    name: gr.Textbox
    axes: dict  # axis (workbench.specs.sweep.AXES) -> its component
    summary: gr.Markdown
    command: gr.Code
    button: gr.Button
    message: gr.Markdown


def sweep_layout() -> SweepBox:
    """The box's components, inside the caller's layout (closed until opened)."""
    axes: dict[str, Any] = {}
    with gr.Accordion("Sweep: several values per setting, queued as one tagged sweep", open=False, elem_id="sweep-box"):
        with gr.Row():
            name = gr.Textbox(
                label="Sweep name",
                placeholder="e.g. loss-study (default: sweep-MMDD-HHMM)",
                info="its runs are tagged sweep:NAME",
                elem_id="sweep-name",
            )
            axes["model"] = gr.Dropdown(
                list_models(),
                value=[],
                multiselect=True,
                label="Models",
                info="from the model zoo",
                elem_id="sweep-model",
            )
            axes["loss"] = gr.Dropdown(
                list(LOSSES),
                value=[],
                multiselect=True,
                label="Losses",
                info="each against the first in the Runs tab",
                elem_id="sweep-loss",
            )
        with gr.Row():
            axes["augment"] = gr.Textbox(
                label="Augmentation sets",
                placeholder="flip_crop; flip_crop,cutout; none",
                info="sets separated by ';'",
                elem_id="sweep-augment",
            )
            axes["schedule"] = gr.Dropdown(
                list(SCHEDULES),
                value=[],
                multiselect=True,
                label="Schedules",
                info="with the form's schedule parameters",
                elem_id="sweep-schedule",
            )
        with gr.Row():
            axes["learning_rate"] = gr.Textbox(
                label="Learning rates", placeholder="0.1, 0.05", info="comma-separated", elem_id="sweep-learning_rate"
            )
            axes["seed"] = gr.Textbox(
                label="Seeds", placeholder="0, 1, 2 or 0-2", info="mean ± std over these", elem_id="sweep-seed"
            )
        summary = gr.Markdown(EMPTY, elem_id="sweep-summary")
        command = command_box("# fill one or more sweep boxes above", "Equivalent sweep command", "sweep-command")
        button = gr.Button("Queue sweep", variant="primary", elem_id="sweep-button")
        message = gr.Markdown(elem_id="sweep-message")
    assert list(axes) == list(AXES)
    return SweepBox(name, axes, summary, command, button, message)


class SweepActions:
    """What the box does, without Gradio: `preview` (the summary and the command) and `queue`. `read_spec(values)`
    is the form's checked spec (the base of every run); `words` the form's FormWords (messages name fields by
    their labels)."""

    def __init__(self, ctx, read_spec, words):
        self.ctx, self.read_spec, self.words = ctx, read_spec, words
        self.gpus = len(ctx.gpu_names)

    def plan(self, name_text, axis_values, form_values) -> tuple:
        """The sweep and its validated specs (UserError names the first refused combination)."""
        sweep = Sweep.from_values(
            str(name_text or "").strip() or default_name(datetime.now()),
            self.read_spec(form_values),
            dict(zip(AXES, axis_values)),
        )
        return sweep, sweep.validate(available_gpus=self.gpus)

    def preview(self, name_text, axis_values, tag_text, form_values) -> tuple:
        """(the summary, the equivalent command)."""
        if not any(v for v in axis_values):
            return EMPTY, "# fill one or more sweep boxes above"
        try:
            sweep, specs = self.plan(name_text, axis_values, form_values)
        except UserError as exc:
            return f"**Not queueable yet:** {self.words.say(str(exc))}", "# not queueable yet: see above"
        earlier = sum(sweep.tag in (r.get("tags") or ()) for r in self.ctx.store.list_runs(include_archived=True))
        adds = f" (adding to its {earlier} earlier runs)" if earlier else ""
        text = (
            f"**{sweep.count_text()}**, tagged `{sweep.tag}`{adds}. "
            f"{time_text(estimate_many(specs, self.ctx.store, self.gpus))}"
        )
        return text, sweep.to_cli(parse_tags(tag_text))

    def queue(self, name_text, axis_values, tag_text, form_values) -> tuple:
        """(the message, the run ids queued); a refusal queues nothing and raises UserError in the form's words."""
        try:
            if not any(v for v in axis_values):
                raise UserError("fill at least one sweep box with several values (models, losses, seeds, ...)")
            sweep, _ = self.plan(name_text, axis_values, form_values)
            run_ids = submit_sweep(self.ctx.queue, sweep, parse_tags(tag_text), by=self.ctx.user().name)
        except UserError as exc:
            raise UserError(self.words.say(str(exc))) from None
        return (
            f"Queued {len(run_ids)} runs (runs {run_ids[0]}-{run_ids[-1]}) as sweep **{sweep.name}**, tagged "
            f"`{sweep.tag}`; the Runs tab's Sweeps view shows their table."
        ), run_ids


def wire_sweep(ctx, box: SweepBox, form: dict, tags, panel, read_spec, words) -> SweepActions:
    """Keep the box's summary and command up to date as anything changes, and queue the sweep (the live
    panel then follows its first run)."""
    actions = SweepActions(ctx, read_spec, words)

    def split(values):
        n = len(AXES)
        return values[0], values[1 : 1 + n], values[1 + n], values[2 + n :]

    def queue(*values):
        try:
            text, run_ids = actions.queue(*split(values))
        except UserError as exc:
            return f"**Not queued:** {exc}", gr.skip()
        follow, note = panel.followed_update(run_ids[0])
        return f"{text} {note}".strip(), follow

    inputs = [box.name, *box.axes.values(), tags, *form.values()]
    preview = lambda *values: actions.preview(*split(values))  # noqa: E731 - the box's live summary
    busy = "⏳ Checking every run and queueing the sweep…"
    wire_box(box, inputs, preview, queue, [box.message, panel.follow], busy, "sweep", panel.timer)
    return actions
