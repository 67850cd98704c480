"""The Runs tab's Studies view: every study (state, trials, best), one study's trials table (state, value, run,
epochs run, parameters), its best trial, and Optuna's own Plotly figures (optimisation history, intermediate values,
parallel coordinates, parameter importances). **Train the best** queues the best trial's settings over seeds (and
more epochs, if given) as a sweep; **Stop** and **Continue** stop a study searching in this app or continue one.
The tables and figures are `workbench.views.studies`'; this module lays them out and refreshes them."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr
import pandas as pd

from workbench.constants import AuditAction
from workbench.errors import UserError
from workbench.jobs.study import StudyDriver, driving
from workbench.specs.sweep import submit_sweep
from workbench.ui.refresh import Refresh
from workbench.views import studies as views

NONE_YET = (
    "No studies yet: start one from the Train tab's **Search** box or `python -m workbench search NAME --space ...`."
)
FIGURE_NAMES = {label: key for key, (label, _) in views.FIGURES.items()}


@dataclass(eq=False)
class StudyView:
    pick: gr.Dropdown
    figure_pick: gr.Dropdown
    summary: gr.Markdown
    studies: gr.Dataframe
    trials: gr.Dataframe
    figure: gr.Plot
    seeds: gr.Textbox
    epochs: gr.Number
    train_best: gr.Button
    stop: gr.Button
    resume: gr.Button
    message: gr.Markdown


def studies_layout() -> StudyView:
    with gr.Accordion("Studies", open=True, elem_id="studies-view"):
        with gr.Row():
            pick = gr.Dropdown(
                [], value=None, label="Study", info="runs tagged study:NAME", scale=2, elem_id="studies-pick"
            )
            figure_pick = gr.Dropdown(
                list(FIGURE_NAMES),
                value=next(iter(FIGURE_NAMES)),
                label="Optuna's figure",
                elem_id="studies-figure-pick",
            )
        summary = gr.Markdown(NONE_YET, elem_id="studies-summary")
        studies = gr.Dataframe(
            value=[],
            headers=views.SUMMARY_COLUMNS,
            interactive=False,
            wrap=True,
            label="Studies",
            elem_id="studies-list",
        )
        trials = gr.Dataframe(
            value=[],
            headers=views.TRIAL_COLUMNS,
            interactive=False,
            wrap=True,
            label="Trials: each a run (value: the final validation accuracy)",
            elem_id="studies-trials",
        )
        figure = gr.Plot(label="Optuna's figure", elem_id="studies-figure")
        with gr.Row():
            seeds = gr.Textbox("0-2", label="Seeds", info="Train the best: one run per seed", elem_id="studies-seeds")
            epochs = gr.Number(
                0, label="Epochs", info="0: the trial's own", precision=0, minimum=0, elem_id="studies-epochs"
            )
        with gr.Row():
            train_best = gr.Button("Train the best", variant="primary", size="md", elem_id="studies-train-best")
            stop = gr.Button("Stop study", size="md", elem_id="studies-stop")
            resume = gr.Button("Continue study", size="md", elem_id="studies-continue")
        message = gr.Markdown(elem_id="studies-message")
    return StudyView(
        pick, figure_pick, summary, studies, trials, figure, seeds, epochs, train_best, stop, resume, message
    )


def show(store, pick=None, figure_label=None) -> dict:
    """Everything the view shows, by component name: the study picked (the newest when none is)."""
    rows = views.summaries(store)
    if not rows:
        return {
            "pick": gr.update(choices=[], value=None),
            "summary": NONE_YET,
            "studies": pd.DataFrame(columns=views.SUMMARY_COLUMNS),
            "trials": pd.DataFrame(columns=views.TRIAL_COLUMNS),
            "figure": None,
        }
    names = [r["Study"] for r in rows]
    name = pick if pick in names else names[-1]
    trials = views.trial_rows(store, name)
    best = views.best(store, name)
    row = store.get_study(name)
    text = f"**{name}**: {row['state']}, {len(trials)} trials."
    if row["error"]:
        text += f" ⚠️ {row['error']}"
    if best:
        shown = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in best["params"].items())
        text += (
            f" Best: trial {best['number']} (run {best['run']}), validation accuracy **{best['value']:.2%}**: {shown}."
        )
    text += f" The study's file for `optuna-dashboard`: `{store.optuna_url()}`."
    which = FIGURE_NAMES.get(figure_label or "", "history")
    return {
        "pick": gr.update(choices=names, value=name),
        "summary": text,
        "studies": pd.DataFrame([[r[c] for c in views.SUMMARY_COLUMNS] for r in rows], columns=views.SUMMARY_COLUMNS),
        "trials": pd.DataFrame([[r[c] for c in views.TRIAL_COLUMNS] for r in trials], columns=views.TRIAL_COLUMNS),
        "figure": views.figure(store, name, which),
    }


class StudyActions:
    """Train the best, Stop, Continue: each returns the message (UserError: refused, nothing done)."""

    def __init__(self, ctx):
        self.ctx = ctx

    def train_best(self, name, seeds, epochs) -> str:
        if not name:
            raise UserError("pick a study first")
        sweep = views.best_as_sweep(self.ctx.store, name, seeds=seeds or "0", epochs=int(epochs) if epochs else None)
        run_ids = submit_sweep(self.ctx.queue, sweep, by=self.ctx.user().name)
        runs = f"run {run_ids[0]}" if len(run_ids) == 1 else f"runs {run_ids[0]}-{run_ids[-1]}"
        return f"Queued the best settings of {name} as sweep **{sweep.name}**: {runs}."

    def stop(self, name) -> str:
        driver = driving(self.ctx.store, name or "")
        if driver is None:
            raise UserError(f"study {name} is not searching in this app")
        user = self.ctx.check_owner(driver.by, "stop", f"study {name}")  # a member stops only their own
        driver.stop()
        self.ctx.store.record(user.name, AuditAction.STOP_STUDY, f"study {name}")
        return f"Study {name} asks no more trials; those running finish and are told to Optuna."

    def resume(self, name) -> str:
        if not name:
            raise UserError("pick a study first")
        if driving(self.ctx.store, name):
            raise UserError(f"study {name} is searching already")
        driver = StudyDriver.resume(self.ctx.store, self.ctx.queue, name).start()
        self.ctx.studies[name] = driver
        self.ctx.store.record(self.ctx.user().name, AuditAction.CONTINUE_STUDY, f"study {name}")
        return f"Study {name} continues: its interrupted trials resume from their checkpoints."


def wire_study_view(ctx, view: StudyView, refresh_button) -> Refresh:
    """The view's refresh, run on its own controls and the tab's Refresh button (and when the tab is opened);
    the three buttons act, then refresh."""
    outputs = [view.pick, view.summary, view.studies, view.trials, view.figure]

    def refresh(pick, figure_label):
        try:
            shown = show(ctx.store, pick, figure_label)
        except UserError as exc:
            return {view.summary: f"⚠️ {exc}"}
        return {getattr(view, key): value for key, value in shown.items()}

    studies = Refresh(refresh, [view.pick, view.figure_pick], outputs)
    studies.on(
        [view.pick.input, view.figure_pick.input, refresh_button.click], api_name="runs_studies", show_progress="hidden"
    )
    actions = StudyActions(ctx)
    for button, act, inputs in (
        (view.train_best, actions.train_best, [view.pick, view.seeds, view.epochs]),
        (view.stop, actions.stop, [view.pick]),
        (view.resume, actions.resume, [view.pick]),
    ):

        def guarded(*values, act=act):
            try:
                return act(*values)
            except UserError as exc:
                return f"**Not done:** {exc}"

        button.click(guarded, inputs, [view.message], concurrency_limit=1).then(
            refresh, studies.inputs, studies.outputs, show_progress="hidden"
        )
    return studies
