"""The live panel (jobs table, followed run's progress and curves, Cancel / Resume), shared by the
Train and Fine-tune tabs. It polls the store every 2 s, so every page shows the same jobs."""
from dataclasses import dataclass

import gradio as gr

from workbench.errors import UserError
from workbench.ui.layout import column_widths
from workbench.ui.plots import live_curves
from workbench.ui.refresh import Refresh
from workbench.ui.views import live

POLL_SECONDS = 2.0
# Share of the table's width per column: each fits its header and values unbroken at the panel's
# narrowest (PANEL_MIN_WIDTH); the name takes the rest and wraps.
JOB_WIDTHS = {"id": 4.5, "status": 12, "epoch": 9, "progress": 12.5, "images/s": 12.5, "elapsed": 11,
              "remaining": 13.5}


@dataclass(eq=False)
class LivePanel:
    """The panel as its tab and the page use it: `refresh` is one poll, which `timer` runs."""
    store: object  # store.Store
    follow: gr.Dropdown
    timer: gr.Timer
    refresh: Refresh

    def followed_update(self, run_id):
        """The follow dropdown set to a run just queued."""
        return gr.update(choices=live.follow_choices(self.store), value=run_id)


def start_polling():  # a tab switched to by code (Runs' "clone") fires no select event
    return gr.Timer(active=True)


class _Poll:
    """The panel's handlers, over the store and the job queue."""

    def __init__(self, ctx):
        self.ctx = ctx

    def refresh(self, followed, drawn):
        """One poll: jobs table, follow choices, the followed run's status and (if changed) curves."""
        store = self.ctx.store
        rows = live.jobs_rows(store)
        choices = live.follow_choices(store)
        if followed not in {value for _, value in choices}:
            followed = live.default_follow(store)
            if followed is None:
                empty = "<p>No runs yet: fill in the form and press the button under it.</p>"
                return rows, gr.update(choices=choices, value=None), empty, gr.skip(), drawn
            follow_update = gr.update(choices=choices, value=followed)
        else:
            # Leave the value alone: a poll that started before Train/Fine-tune set the new run must not
            # put the old one back.
            follow_update = gr.update(choices=choices)
        run = store.get_run(followed)
        epochs = store.epochs(followed)
        signature = (followed, len(epochs), run["status"])
        figure = live_curves(run, epochs) if signature != drawn else gr.skip()
        return rows, follow_update, live.status_html(run, epochs), figure, signature

    def act(self, action, run_id):
        if run_id is None:
            return "Choose a run to follow first."
        try:
            if action == "cancel":
                self.ctx.queue.cancel(int(run_id))
                return f"Cancelling run {run_id}: it stops after its current batch (resume continues it)."
            self.ctx.queue.resume(int(run_id))
            return f"Run {run_id} queued to resume from its last checkpoint."
        except UserError as exc:
            return f"**{exc}**"


def create_live_panel(ctx, prefix: str = "", api_prefix: str = "", active: bool = True) -> LivePanel:
    """Build the panel inside the caller's layout. `prefix` keeps element ids unique per tab; `active`
    starts its poll timer running (the app turns each panel's timer on only while its tab is shown)."""
    gr.Markdown("### Jobs")
    jobs = gr.Dataframe(headers=live.JOB_COLUMNS, value=[], interactive=False, elem_id=f"{prefix}jobs-table",
                        wrap=True, column_widths=column_widths(live.JOB_COLUMNS, JOB_WIDTHS))
    follow = gr.Dropdown(label="Follow run", choices=[], value=None, elem_id=f"{prefix}follow-run")
    status = gr.HTML(elem_id=f"{prefix}live-panel")
    curves = gr.Plot(label="Live curves", elem_id=f"{prefix}live-curves")
    with gr.Row():
        cancel_button = gr.Button("Cancel", variant="stop", elem_id=f"{prefix}cancel-button")
        resume_button = gr.Button("Resume", elem_id=f"{prefix}resume-button")
    action_message = gr.Markdown(elem_id=f"{prefix}action-message")
    last_drawn = gr.State(None)

    poll = _Poll(ctx)
    refresh = Refresh(poll.refresh, [follow, last_drawn], [jobs, follow, status, curves, last_drawn])
    timer = gr.Timer(POLL_SECONDS, active=active)
    refresh.wire(timer.tick, show_progress="hidden", api_name=f"{api_prefix}jobs")
    follow.input(poll.refresh, [follow, gr.State(None)], refresh.outputs, show_progress="hidden",
                 trigger_mode="always_last")
    cancel_button.click(lambda r: poll.act("cancel", r), follow, action_message, api_name=f"{api_prefix}cancel")
    resume_button.click(lambda r: poll.act("resume", r), follow, action_message, api_name=f"{api_prefix}resume")
    return LivePanel(store=ctx.store, follow=follow, timer=timer, refresh=refresh)
