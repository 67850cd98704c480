"""The Train tab's Distil box: train the form's model with a teacher (a saved ensemble whose members kept
their checkpoints, or one run), and the Ensemble tab's "Distil into one model", which fills the form from
the current saved ensemble (the student: its first member's model and recipe) and opens the box.

The spec is `workbench.specs.distill.DistillSpec`: every setting of the form, plus the teacher, the
temperature, alpha and the mode. A teacher that cannot teach (a member without a checkpoint, another split,
a fine-tune) is refused when **Distil** is pressed, the member named, before anything is queued.
"""

from dataclasses import dataclass

import gradio as gr

from workbench.constants import DISTILL_MODES, RunKind, RunStatus
from workbench.errors import UserError
from workbench.jobs.estimate import estimate
from workbench.specs import DistillSpec, spec_class
from workbench.specs.distill import HELP
from workbench.specs.flags import parse_tags
from workbench.ui.forms import FORM_FIELDS, spec_to_fields
from workbench.ui.tabs.spec_form import command_box, command_line, wire_submit
from workbench.views.live import estimate_text

MODE_CHOICES = [("online: the teacher scores each augmented batch", "online"), ("cached: computed once", "cached")]
assert [value for _, value in MODE_CHOICES] == list(DISTILL_MODES)


@dataclass(eq=False)
class DistillBox:
    accordion: gr.Accordion
    teacher: gr.Dropdown
    temperature: gr.Number
    alpha: gr.Number
    mode: gr.Radio
    command: gr.Code
    button: gr.Button
    message: gr.Markdown
    estimate: gr.Markdown

    @property
    def settings(self) -> list:
        return [self.teacher, self.temperature, self.alpha, self.mode]

    @property
    def clone_targets(self) -> list:
        """What `filled` updates."""
        return [self.accordion, *self.settings, self.command, self.message]

    def filled(self, store, distill: dict | None, note: str) -> dict:
        """Updates for the Runs tab's Clone: a distillation run's teacher settings into the box (opened, with
        `note` on its teacher), or the box closed and cleared for any other run."""
        if not distill:
            return {self.accordion: gr.Accordion(open=False), self.teacher: gr.update(value=None), self.message: ""}
        return {
            self.accordion: gr.Accordion(open=True),
            self.teacher: gr.update(choices=teacher_choices(store), value=distill["teacher"]),
            self.temperature: distill["temperature"],
            self.alpha: distill["alpha"],
            self.mode: distill["distill_mode"],
            self.command: distill["command"],
            self.message: note,
        }


def teacher_choices(store) -> list[tuple[str, str]]:
    """Saved ensembles, then completed runs that may teach, as (label, --teacher value)."""
    ensembles = [
        (f"ensemble {e['id']}: {e['name']} (runs {', '.join(map(str, e['members']))})", f"ensemble:{e['id']}")
        for e in reversed(store.list_ensembles())
    ]
    runs = [
        (f"run {r['id']}: {r['name']}", f"run:{r['id']}")
        for r in store.list_runs(status=RunStatus.COMPLETED, order="-id")
        if r["kind"] in (RunKind.SCRATCH, RunKind.DISTILL)
    ]
    return ensembles + runs


def distill_layout() -> DistillBox:
    """The box's components, inside the caller's layout (closed until opened)."""
    defaults = DistillSpec()
    with gr.Accordion(
        "Distil: train this model with a teacher (an ensemble or a run)", open=False, elem_id="distill-box"
    ) as accordion:
        with gr.Row():
            teacher = gr.Dropdown(
                [],
                value=None,
                label="Teacher",
                info="a saved ensemble whose members kept checkpoints, or a completed run",
                allow_custom_value=True,
                scale=3,
                elem_id="distill-teacher",
            )
            temperature = gr.Number(
                defaults.temperature, label="Temperature T", info="2: measured here (README)", elem_id="distill-t"
            )
            alpha = gr.Number(defaults.alpha, label="Alpha", info="share of the soft targets", elem_id="distill-alpha")
        mode = gr.Radio(MODE_CHOICES, value=defaults.distill_mode, label="Mode", elem_id="distill-mode")
        gr.Markdown(
            "Loss: alpha · T² · KL(teacher_T ‖ student_T) + (1 − alpha) · the form's loss on the labels. "
            "The student is the form above: its model, recipe and data (the teacher's split)."
        )
        command = command_box("", "Equivalent command", "distill-command")
        estimate = gr.Markdown(elem_id="distill-estimate")
        message = gr.Markdown(elem_id="distill-message")
        button = gr.Button("Distil", variant="primary", elem_id="distill-button")
    return DistillBox(accordion, teacher, temperature, alpha, mode, command, button, message, estimate)


def distill_spec(read_spec, values, teacher, temperature, alpha, mode) -> DistillSpec:
    """The form's run with the box's teacher settings, checked (the teacher itself is checked on queueing)."""
    if not teacher:
        raise UserError(f"choose a teacher: {HELP['teacher']}")
    base = read_spec(values)
    settings = dict(teacher=teacher, temperature=temperature, alpha=alpha, distill_mode=mode)
    return DistillSpec.from_dict({**base.to_dict(), **settings}).validate()


def wire_distill(ctx, box: DistillBox, form: dict, tags, panel, read_spec, words) -> None:
    """The box's choices refreshed when opened, its command following the form, **Distil** queueing."""
    box.accordion.expand(
        lambda: gr.update(choices=teacher_choices(ctx.store)), None, box.teacher, show_progress="hidden"
    )
    fields = list(form.values())

    def preview(tag_text, *values):
        """The command and the time estimate, with the teacher's passes (`workbench.jobs.estimate`)."""
        n = len(fields)
        try:
            spec = distill_spec(read_spec, values[:n], *values[n:])
        except UserError as exc:
            return f"# not runnable yet: {words.say(str(exc))}", ""
        return command_line(spec, parse_tags(tag_text)), estimate_text(estimate(spec, ctx.store, len(ctx.gpu_names)))

    inputs = [tags, *fields, *box.settings]
    gr.on([c.change for c in box.settings], preview, inputs, [box.command, box.estimate], show_progress="hidden")

    def submit(tag_text, *values):
        spec = distill_spec(read_spec, values[: len(fields)], *values[len(fields) :])
        return spec, ctx.queue.submit(spec, tags=parse_tags(tag_text), by=ctx.user().name)

    wire_submit(panel, box.button, submit, inputs, box.message, api_name="distill", words=words)


def wire_distil_button(ctx, button, saved, status, train, box: DistillBox, tabs) -> None:
    """The Ensemble tab's "Distil into one model": the saved ensemble chosen in `saved` becomes the teacher,
    the Train form gets its first member's model and recipe (a new name, the same data and split), the
    Distil box opens, and the page switches to the Train tab."""
    outputs = [*train.form.values(), box.accordion, box.teacher, box.message, train.timer, tabs, status]

    def fill(ensemble_id):
        try:
            if ensemble_id in (None, ""):
                raise UserError("choose a saved ensemble first (Saved ensembles), then Distil into one model")
            ensemble = ctx.store.get_ensemble(int(ensemble_id))
            member = ctx.store.get_run(int(ensemble["members"][0]))
            spec = spec_class(member["kind"]).from_dict(member["spec"])
            if member["kind"] not in (RunKind.SCRATCH, RunKind.DISTILL):
                raise UserError(f"ensemble {ensemble['id']}'s first member is a {member['kind']} run: it cannot teach")
        except UserError as exc:
            return {status: f"**Not filled:** {exc}"}
        fields = spec_to_fields(spec, FORM_FIELDS) | {"name": ""}
        return {
            **{train.form[name]: value for name, value in fields.items()},
            box.accordion: gr.Accordion(open=True),
            box.teacher: gr.update(choices=teacher_choices(ctx.store), value=f"ensemble:{ensemble['id']}"),
            box.message: (
                f"Teacher: ensemble {ensemble['id']} **{ensemble['name']}**; the student is run {member['id']}'s "
                "model and recipe. Change what you want, then press **Distil**."
            ),
            train.timer: gr.Timer(active=True),
            tabs: gr.Tabs(selected="train"),
            status: f"Filled the Train form to distil ensemble {ensemble['id']} into one model.",
        }

    button.click(fill, saved, outputs, api_name="ensemble_distil")
