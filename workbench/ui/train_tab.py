"""Train tab: the RunSpec form, Train (queue and return at once), and the live panel that polls the store.

Lifecycle of a job as the page sees it: validate -> queue (run id) -> poll the store every 2 s (jobs
table, progress bar, curves) -> cancel / resume. Nothing lives in the page: reload it, or open a
second browser, and the same jobs are there.
"""
import gradio as gr

from workbench.cli_args import format_key_values
from workbench.errors import UserError
from workbench.losses import LOSS_PARAMS
from workbench.schedules import SCHEDULE_PARAMS
from workbench.spec import RunSpec
from workbench.ui import live
from workbench.ui.form import FORM_FIELDS, build_form, form_values_to_spec, option_hint

POLL_SECONDS = 2.0


def create_train_tab(ctx) -> dict:
    defaults = RunSpec(data_path=ctx.data_path or "", gpus=-1)
    with gr.Row(equal_height=False):
        with gr.Column(scale=3):
            form = build_form(defaults, len(ctx.gpu_names))
            tags = gr.Textbox(label="Tags", placeholder="comma-separated, e.g. baseline,seed0")
            message = gr.Markdown(elem_id="train-message")
            train_button = gr.Button("Train", variant="primary", elem_id="train-button")
            command = gr.Code(defaults.to_cli(), label="Equivalent command (copy to run it headless)",
                              language="shell", interactive=False, elem_id="train-command", wrap_lines=True)
        with gr.Column(scale=2):
            gr.Markdown("### Jobs")
            jobs = gr.Dataframe(headers=live.JOB_COLUMNS, value=[], interactive=False, elem_id="jobs-table",
                                wrap=True, column_widths=["7%", "33%", "12%", "9%", "9%", "10%", "10%", "10%"])
            follow = gr.Dropdown(label="Follow run", choices=[], value=None, elem_id="follow-run",
                                 allow_custom_value=False)
            status = gr.HTML(elem_id="live-panel")
            curves = gr.Plot(label="Live curves", elem_id="live-curves")
            with gr.Row():
                cancel_button = gr.Button("Cancel", variant="stop", elem_id="cancel-button")
                resume_button = gr.Button("Resume", elem_id="resume-button")
            action_message = gr.Markdown(elem_id="action-message")
    last_drawn = gr.State(None)
    form_list = [form[name] for name in FORM_FIELDS]

    def preview(*values):
        try:
            return form_values_to_spec(*values).validate(available_gpus=len(ctx.gpu_names)).to_cli()
        except UserError as exc:
            return f"# fix the form first: {exc}"

    gr.on([c.change for c in form_list], preview, inputs=form_list, outputs=command, show_progress="hidden")
    form["model"].change(lambda m: gr.update(placeholder=option_hint(m)), form["model"], form["model_kwargs"])
    form["loss"].change(lambda n: gr.update(placeholder=format_key_values(LOSS_PARAMS[n])), form["loss"],
                        form["loss_params"])
    form["schedule"].change(lambda n: gr.update(placeholder=format_key_values(SCHEDULE_PARAMS[n]) or "none"),
                            form["schedule"], form["schedule_params"])

    def submit(tag_text, *values):
        try:
            spec = form_values_to_spec(*values)
            spec = spec.replace(data_path=ctx.check_path(spec.data_path))
            tag_list = [t.strip() for t in (tag_text or "").split(",") if t.strip()]
            run_id = ctx.queue.submit(spec, tags=tag_list)
        except UserError as exc:
            return f"**Not queued:** {exc}", gr.skip()
        return (f"Queued run {run_id}: **{spec.display_name()}**",
                gr.update(choices=live.follow_choices(ctx.store), value=run_id))

    train_button.click(submit, [tags, *form_list], [message, follow], concurrency_limit=1, api_name="train")

    def refresh(followed, drawn):
        """One poll: jobs table, follow choices, the followed run's status and (if changed) curves."""
        rows = live.jobs_rows(ctx.store)
        choices = live.follow_choices(ctx.store)
        ids = {value for _, value in choices}
        if followed not in ids:
            followed = live.default_follow(ctx.store)
        if followed is None:
            empty = "<p>No runs yet: fill in the form and press <b>Train</b>.</p>"
            return rows, gr.update(choices=choices, value=None), empty, gr.skip(), drawn
        run = ctx.store.get_run(followed)
        epochs = ctx.store.epochs(followed)
        signature = (followed, len(epochs), run["status"])
        figure = gr.skip()
        if signature != drawn:
            from workbench.ui.plots import live_curves

            figure = live_curves(run, epochs)
        return rows, gr.update(choices=choices, value=followed), live.status_html(run, epochs), figure, signature

    poll_outputs = [jobs, follow, status, curves, last_drawn]
    timer = gr.Timer(POLL_SECONDS)
    timer.tick(refresh, [follow, last_drawn], poll_outputs, show_progress="hidden", api_name="jobs")
    follow.input(refresh, [follow, gr.State(None)], poll_outputs, show_progress="hidden")

    def act(action, run_id):
        if run_id is None:
            return "Choose a run to follow first."
        try:
            if action == "cancel":
                ctx.queue.cancel(int(run_id))
                return f"Cancelling run {run_id}: it stops after its current batch (resume continues it)."
            ctx.queue.resume(int(run_id))
            return f"Run {run_id} queued to resume from its last checkpoint."
        except UserError as exc:
            return f"**{exc}**"

    cancel_button.click(lambda r: act("cancel", r), follow, action_message, api_name="cancel")
    resume_button.click(lambda r: act("resume", r), follow, action_message, api_name="resume")
    return {"form": form, "form_list": form_list, "tags": tags, "message": message, "train_button": train_button,
            "command": command, "jobs": jobs, "follow": follow, "status": status, "curves": curves,
            "refresh_fn": refresh, "refresh_inputs": [follow, last_drawn], "refresh_outputs": poll_outputs}
