"""The Train tab's Search box, beside the Sweep box: an Optuna study whose trials are runs of the form's settings
with the space's values (`learning_rate=log(0.01,1) batch_size=[128,256] epochs=int(2,8)`), tagged `study:NAME`.
Under the boxes, kept up to date as anything changes: what the space searches, the time the budget costs here, the
equivalent `python -m workbench search` command, or every bad part of the space named. **Start search** creates the
study and its driver (`workbench.jobs.study`); the Runs tab's Studies view follows it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import gradio as gr

from workbench.errors import UserError
from workbench.jobs.estimate import estimate
from workbench.jobs.study import StudyDriver
from workbench.specs.flags import parse_tags
from workbench.specs.search import PRUNERS, SAMPLERS, Search, budget_text
from workbench.specs.space import Param
from workbench.ui.tabs.spec_form import command_box, wire_box

EMPTY = (
    "Write the settings to search, one `setting=range` each: `log(a,b)` and `uniform(a,b)` for numbers, "
    "`int(a,b)` for whole numbers, `[a,b,...]` for choices; every other setting comes from the form above."
)
PLACEHOLDER = "learning_rate=log(0.01,1) weight_decay=log(1e-5,1e-3) batch_size=[128,256] epochs=int(2,8)"
NO_COMMAND = "# write a search space above"


@dataclass(eq=False)
class SearchBox:
    name: gr.Textbox
    space: gr.Textbox
    trials: gr.Number
    timeout: gr.Textbox
    sampler: gr.Dropdown
    seed: gr.Textbox
    pruner: gr.Dropdown
    summary: gr.Markdown
    command: gr.Code
    button: gr.Button
    message: gr.Markdown

    @property
    def settings(self) -> list:
        return [self.name, self.space, self.trials, self.timeout, self.sampler, self.seed, self.pruner]


def search_layout() -> SearchBox:
    """The box's components, inside the caller's layout (closed until opened)."""
    with gr.Accordion(
        "Search: an Optuna study, hopeless trials pruned after an epoch", open=False, elem_id="search-box"
    ):
        with gr.Row():
            name = gr.Textbox(
                label="Study name",
                placeholder="e.g. lr-search (default: search-MMDD-HHMM)",
                info="its runs are tagged study:NAME",
                elem_id="search-name",
            )
            trials = gr.Number(20, label="Trials", precision=0, minimum=1, info="the budget", elem_id="search-trials")
            timeout = gr.Textbox(
                label="Time budget", placeholder="e.g. 2h or 90m", info="optional", elem_id="search-timeout"
            )
        space = gr.Textbox(
            label="Space",
            placeholder=PLACEHOLDER,
            lines=2,
            info="log(a,b), uniform(a,b), int(a,b) or [a,b,...] each; augmentations: [flip_crop; flip_crop,cutout]",
            elem_id="search-space",
        )
        with gr.Row():
            sampler = gr.Dropdown(
                list(SAMPLERS),
                value="tpe",
                label="Sampler",
                info="grid: lists only; cmaes: ranges",
                elem_id="search-sampler",
            )
            seed = gr.Textbox(
                label="Sampler seed", placeholder="none", info="the same draws again", elem_id="search-seed"
            )
            pruner = gr.Dropdown(
                list(PRUNERS), value="median", label="Pruner", info="checked after every epoch", elem_id="search-pruner"
            )
        summary = gr.Markdown(EMPTY, elem_id="search-summary")
        command = command_box(NO_COMMAND, "Equivalent search command", "search-command")
        button = gr.Button("Start search", variant="primary", elem_id="search-button")
        message = gr.Markdown(elem_id="search-message")
    return SearchBox(name, space, trials, timeout, sampler, seed, pruner, summary, command, button, message)


class SearchActions:
    """What the box does, without Gradio: `preview` (the summary and the command) and `start`. `read_spec(values)`
    is the form's checked spec (every trial's base); `words` the form's FormWords."""

    def __init__(self, ctx, read_spec, words):
        self.ctx, self.read_spec, self.words = ctx, read_spec, words
        self.gpus = len(ctx.gpu_names)

    def plan(self, settings: list, form_values) -> Search:
        """The checked search. A refusal of the form's own settings is said in the form's words; one of the space
        names its parts as the user wrote them (`learning_rate=log(0,1)`)."""
        name, space, trials, timeout, sampler, seed, pruner = settings
        try:
            base = self.read_spec(form_values)
        except UserError as exc:
            raise UserError(f"the form: {self.words.say(str(exc))}") from None
        search = Search.from_values(
            str(name or "").strip() or datetime.now().strftime("search-%m%d-%H%M"),
            base,
            space=space,
            trials=trials if trials not in (None, "") else 20,
            timeout=timeout,
            sampler=sampler or "tpe",
            seed=str(seed or "").strip() or None,
            pruner=pruner or "median",
        )
        return search.check(available_gpus=self.gpus)

    def preview(self, settings: list, tag_text, form_values) -> tuple:
        """(the summary, the equivalent command)."""
        if not str(settings[1] or "").strip():
            return EMPTY, NO_COMMAND
        try:
            search = self.plan(settings, form_values)
        except UserError as exc:
            return f"**Not startable yet:** {exc}", "# not startable yet: see above"
        taken = search.name in {s["name"] for s in self.ctx.store.list_studies()}
        searched = "; ".join(describe(p) for p in search.space.searched)
        fixed = ", ".join(f"{k}={v}" for k, v in search.space.fixed.items())
        typical = search.space.apply(search.base, search.space.middle())
        cost = budget_text(search, estimate(typical, self.ctx.store, self.gpus).seconds, max(1, self.gpus))
        count = len(search.space.searched)
        text = (
            f"**{count} setting{'s' * (count != 1)} searched** ({searched})"
            + (f", fixed {fixed}" if fixed else "")
            + f"; {search.budget()} trials by {search.sampler}, pruned by {search.pruner}, "
            + f"tagged `{search.tag}`. {cost}"
        )
        if taken:
            text = f"**Study {search.name} exists:** choose another name (the command line continues it). " + text
        return text, search.to_cli(parse_tags(tag_text))

    def start(self, settings: list, tag_text, form_values) -> str:
        """The message; a refusal starts nothing and raises UserError."""
        search = self.plan(settings, form_values)
        driver = StudyDriver.create(
            self.ctx.store, self.ctx.queue, search, tags=parse_tags(tag_text), by=self.ctx.user().name
        ).start()
        self.ctx.studies[search.name] = driver
        return (
            f"Started study **{search.name}**: {search.budget()} trials tagged `{search.tag}`, queued as the devices "
            "allow; the Runs tab's Studies view shows its trials and Optuna's figures."
        )


def describe(param: Param) -> str:
    if param.kind == "choice":
        return f"{param.name} in {', '.join(map(str, param.choices))}"
    scale = "log scale" if param.log else "uniformly"
    return f"{param.name} {param.low:g}…{param.high:g} {scale}{' (whole numbers)' if param.kind == 'int' else ''}"


def wire_search(ctx, box: SearchBox, form: dict, tags, panel, read_spec, words) -> SearchActions:
    """Keep the box's summary and command up to date as anything changes, and start the study (the live panel
    then polls its trials' runs)."""
    actions = SearchActions(ctx, read_spec, words)
    n = len(box.settings)

    def split(values):
        return list(values[:n]), values[n], values[n + 1 :]

    def start(*values):
        try:
            return actions.start(*split(values))
        except UserError as exc:
            return f"**Not started:** {exc}"

    inputs = [*box.settings, tags, *form.values()]
    preview = lambda *values: actions.preview(*split(values))  # noqa: E731 - the box's live summary
    busy = "⏳ Checking the space and starting the study…"
    wire_box(box, inputs, preview, start, [box.message], busy, "search", panel.timer)
    return actions
