"""Assemble the workbench page: a header with the devices and store, then one tab per module."""
import html

import gradio as gr

from workbench.ui.tabs.ensemble import create_ensemble_tab
from workbench.ui.tabs.errors import create_errors_tab
from workbench.ui.tabs.finetune import create_finetune_tab
from workbench.ui.tabs.runs import create_runs_tab, wire_clone
from workbench.ui.tabs.train import create_train_tab

CSS = """
#live-status p { margin: 0.4em 0; }
footer { display: none !important; }
"""


def header_markdown(ctx) -> str:
    lines = ["## CIFAR Workbench",
             f"**Devices:** {html.escape(ctx.device_summary)} · **Store:** `{html.escape(str(ctx.store.path))}`"]
    if ctx.interrupted:
        ids = ", ".join(str(i) for i in ctx.interrupted)
        lines.append(f"Runs left running by an earlier process were marked *interrupted*: {ids}. "
                     "Follow one in the Train tab and press **Resume** to continue it from its last checkpoint.")
    return "\n\n".join(lines)


def _polling_only(shown, forms: dict) -> dict:
    """The live panels' timers, only that of the tab `shown` (if it has one) running."""
    return {form.timer: gr.Timer(active=name == shown) for name, form in forms.items()}


def build_app(ctx) -> gr.Blocks:
    with gr.Blocks(title="CIFAR Workbench", fill_width=True) as demo:
        gr.Markdown(header_markdown(ctx), elem_id="header")
        with gr.Tabs() as tabs:
            with gr.Tab("Train", id="train") as train_tab:
                train = create_train_tab(ctx)
            with gr.Tab("Runs", id="runs") as runs_tab:
                runs = create_runs_tab(ctx)
            with gr.Tab("Ensemble", id="ensemble") as ensemble_tab:
                ensemble = create_ensemble_tab(ctx)
            with gr.Tab("Fine-tune", id="finetune") as finetune_tab:
                finetune = create_finetune_tab(ctx)
            with gr.Tab("Errors", id="errors") as errors_tab:
                errors = create_errors_tab(ctx)
        forms = {"train": train, "finetune": finetune}
        wire_clone(ctx, runs, tabs, forms)
        # Only the shown tab's live panel polls: both panels read the same jobs, twice the work for nothing.
        timers = [form.timer for form in forms.values()]
        for tab, shown in ((train_tab, "train"), (finetune_tab, "finetune"), (runs_tab, None), (ensemble_tab, None),
                           (errors_tab, None)):
            tab.select(lambda shown=shown: _polling_only(shown, forms), None, timers, show_progress="hidden")
        # Views of finished runs refresh when their tab is opened (not on a timer: that would undo a
        # user's sort or selection).
        runs.refresh.wire(runs_tab.select, show_progress="hidden")
        runs.overview.wire(runs_tab.select, show_progress="hidden")
        ensemble.refresh.wire(ensemble_tab.select, show_progress="hidden")
        errors.refresh.wire(errors_tab.select, show_progress="hidden")
        # Re-attach on every page load: the live panel and the leaderboard come from the store.
        train.refresh.wire(demo.load, show_progress="hidden")
        runs.refresh.wire(demo.load, show_progress="hidden")
    demo.workbench = {"train": train, "runs": runs, "ensemble": ensemble, "finetune": finetune, "errors": errors}
    return demo
