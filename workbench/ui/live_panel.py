"""The live panel (jobs table, followed run's progress and curves, Cancel / Resume), shared by the
Train and Fine-tune tabs. It polls the store every 2 s, so every page shows the same jobs."""

from dataclasses import dataclass

import gradio as gr

from workbench.errors import UserError
from workbench.ui.layout import column_widths
from workbench.ui.plots import live_curves
from workbench.ui.refresh import Refresh
from workbench.ui.widgets import LAST
from workbench.views import live

POLL_SECONDS = 2.0
# Share of the table's width per column: each fits its header and values unbroken at the panel's
# narrowest (PANEL_MIN_WIDTH); the name takes the rest and wraps.
JOB_WIDTHS = {"id": 4.5, "status": 12, "epoch": 9, "progress": 12.5, "images/s": 12.5, "elapsed": 11, "remaining": 13.5}


@dataclass(eq=False)
class LivePanel:
    """The panel as its tab and the page use it: `refresh` is one poll, which `timer` runs."""

    store: object  # store.Store
    follow: gr.Dropdown
    timer: gr.Timer
    refresh: Refresh

    def followed_update(self, run_id) -> tuple:
        """(the follow dropdown's update, a note) for a run just queued: followed if its job started; if it
        waits behind another job, the panel follows that one and the note says where the new run stands."""
        runs = live.read_runs(self.store)
        run = next(r for r in runs if r["id"] == run_id)
        note = live.queue_note(run, runs)
        if "behind" not in note:
            return gr.update(choices=live.follow_choices(runs), value=run_id), ""
        return gr.update(choices=live.follow_choices(runs), value=live.default_follow(runs)), f"It waits: {note}."


def start_polling():  # a tab switched to by code (Runs' "clone") fires no select event
    return gr.Timer(active=True)


class _Poll:
    """The panel's handlers, over the store and the job queue."""

    def __init__(self, ctx):
        self.ctx = ctx

    def refresh(self, followed, drawn, notice=""):
        """One poll: jobs table, follow choices, the followed run's status and (if changed) curves,
        Cancel / Resume enabled only where they can act on the followed run, and the Cancel / Resume line
        once what it announced is over (`live.settled_notice`)."""
        store = self.ctx.store
        runs = live.read_runs(store)
        settled = live.settled_notice(notice, runs)
        return *self._panel(store, runs, followed, drawn), gr.skip() if settled is None else settled

    def _panel(self, store, runs, followed, drawn) -> tuple:
        rows = live.jobs_rows(store, runs, nodes=self.ctx.cluster_summary is not None)
        choices = live.follow_choices(runs)
        if followed not in {value for _, value in choices}:
            followed = live.default_follow(runs)
            if followed is None:
                empty = "<p>No runs yet: fill in the form and press the button at its end.</p>"
                return (rows, gr.update(choices=choices, value=None), empty, gr.skip(), drawn, *_buttons(None))
            follow_update = gr.update(choices=choices, value=followed)
        else:
            # Leave the value alone: a poll that started before Train/Fine-tune set the new run must not
            # put the old one back.
            follow_update = gr.update(choices=choices)
        run = next(r for r in runs if r["id"] == followed)
        epochs = store.epochs(followed)
        signature = (followed, len(epochs), run["status"])
        figure = live_curves(run, epochs) if signature != drawn else gr.skip()
        return rows, follow_update, live.status_html(run, epochs, runs), figure, signature, *_buttons(run)

    def act(self, action, run_id):
        if run_id is None:
            return "Choose a run to follow first."
        try:
            run = self.ctx.store.get_run(int(run_id))
            if action == "cancel":
                user = self.ctx.check_owner(run.get("created_by"), "cancel", f"run {run_id}")
                return live.cancel_message(run, self.ctx.queue.cancel(int(run_id), by=user.name))
            epoch = self.ctx.queue.resume(int(run_id), by=self.ctx.user().name)
            return live.resume_message(run, epoch, live.read_runs(self.ctx.store))
        except UserError as exc:
            return f"**{exc}**"


def _buttons(run) -> tuple:
    """Cancel (red) only while the run's job is queued or working; Resume only for a stopped run."""
    cancel = live.can_cancel(run)
    return (
        gr.update(interactive=cancel, variant="stop" if cancel else "secondary"),
        gr.update(interactive=live.can_resume(run)),
    )


def create_live_panel(ctx, prefix: str = "", api_prefix: str = "", active: bool = True) -> LivePanel:
    """Build the panel inside the caller's layout. `prefix` keeps element ids unique per tab; `active`
    starts its poll timer running (the app turns each panel's timer on only while its tab is shown)."""
    gr.Markdown("### Jobs")
    columns = live.job_columns(nodes=ctx.cluster_summary is not None)
    jobs = gr.Dataframe(
        headers=columns,
        value=[],
        interactive=False,
        elem_id=f"{prefix}jobs-table",
        wrap=True,
        column_widths=column_widths(columns, JOB_WIDTHS),
    )
    follow = gr.Dropdown(label="Follow run", choices=[], value=None, elem_id=f"{prefix}follow-run")
    status = gr.HTML(elem_id=f"{prefix}live-panel")
    curves = gr.Plot(label="Live curves", elem_id=f"{prefix}live-curves")
    with gr.Row():
        cancel_button = gr.Button("Cancel", variant="secondary", interactive=False, elem_id=f"{prefix}cancel-button")
        resume_button = gr.Button("Resume", interactive=False, elem_id=f"{prefix}resume-button")
    action_message = gr.Markdown(elem_id=f"{prefix}action-message")
    last_drawn = gr.State(None)

    poll = _Poll(ctx)
    refresh = Refresh(
        poll.refresh,
        [follow, last_drawn, action_message],
        [jobs, follow, status, curves, last_drawn, cancel_button, resume_button, action_message],
    )
    timer = gr.Timer(POLL_SECONDS, active=active)
    refresh.wire(timer.tick, show_progress="hidden", api_name=f"{api_prefix}jobs")
    follow.input(
        poll.refresh,
        [follow, gr.State(None), action_message],
        refresh.outputs,
        show_progress="hidden",
        trigger_mode=LAST,
    )
    # The panel redrawn as soon as the action is taken (Resume: "queued · resuming from epoch N"), not at
    # the next poll seconds later.
    for button, action in ((cancel_button, "cancel"), (resume_button, "resume")):
        button.click(
            lambda r, action=action: poll.act(action, r), follow, action_message, api_name=f"{api_prefix}{action}"
        ).then(poll.refresh, refresh.inputs, refresh.outputs, show_progress="hidden", api_visibility="private")
    return LivePanel(store=ctx.store, follow=follow, timer=timer, refresh=refresh)
