"""Assemble the workbench page: a header with the devices and store, then one tab per module."""

import html
from dataclasses import dataclass
from typing import Any

import gradio as gr

from workbench.ui.layout import FORM_AND_PANEL_CSS
from workbench.ui.tabs.audit import AuditTab, create_audit_tab
from workbench.ui.tabs.distill_form import wire_distil_button
from workbench.ui.tabs.ensemble import EnsembleTab, create_ensemble_tab
from workbench.ui.tabs.errors import ErrorsTab, create_errors_tab
from workbench.ui.tabs.errors_duplicates import CSS as ERRORS_VIEWS_CSS
from workbench.ui.tabs.finetune import create_finetune_tab
from workbench.ui.tabs.label_review import SHORTCUTS_JS
from workbench.ui.tabs.predict import PredictTab, create_predict_tab
from workbench.ui.tabs.runs import TITLES, RunsTab, create_runs_tab, wire_clone
from workbench.ui.tabs.spec_form import FormTab
from workbench.ui.tabs.train import create_train_tab

CSS = """
#live-status p { margin: 0.4em 0; }
footer { display: none !important; }
/* Tables in the page's own font, snug cells; a header never splits a word (cells get widths that fit theirs). */
.table-wrap table, .table-wrap .virtual-row {
  font-family: var(--font); font-size: 13px; font-variant-numeric: tabular-nums;
}
.table-wrap .cell-wrap { padding: 4px 6px; }
.table-wrap th { font-size: 12px; }
/* A header's words get the cell's width less 2 px a side (6 px cut "Augment" and "Reviewed" at 1024 px). */
.table-wrap th .cell-wrap { padding: 4px 2px; }
.table-wrap th span.text { word-break: normal; overflow-wrap: normal; }
/* A refused value: its field outlined, the reason as its info line; the form's message above its button alike. */
.block.refused {
  border: 1px solid var(--error-border-color) !important; background: var(--error-background-fill) !important;
}
.block.refused .info-text, .prose.refused { color: var(--error-text-color); }
.block.refused:has(> [data-testid="markdown-wrapper"]) { padding: 6px 12px !important; }
/* Errors gallery: pixels stay sharp when enlarged; the whole caption (prediction, confidence, true class) under
   its image, wrapped, instead of one line cut short over it. */
#errors-gallery img, #errors-picked img { image-rendering: pixelated; }
#errors-gallery .thumbnail-item { aspect-ratio: auto; height: auto; display: flex; flex-direction: column; }
#errors-gallery .thumbnail-item img { aspect-ratio: 1 / 1; height: auto; }
#errors-gallery .caption-label { position: static; max-width: none; white-space: normal; overflow: visible;
  text-overflow: clip; text-align: left; }
/* Its scroll box as tall as two and a half rows of 8 at any width: whole captions, and a peek at what is below. */
#errors-gallery .gallery-container { container-type: inline-size; }
#errors-gallery .grid-wrap { max-height: calc(2.5 * ((100cqw - 56px) / 8 + 56px) + 24px) !important; height: auto; }
/* Predict: the captions (picture, model, class) under each map, wrapped, not cut short over it. */
#predict-gallery .grid-wrap { height: auto !important; min-height: 0; }
/* Both galleries: the first row under the gallery's label (26 px, floated over the box), not behind it (the tiles'
   tops were hidden). */
#predict-gallery .grid-container, #errors-gallery .grid-container { padding-top: 30px; }
#predict-gallery .grid-container { grid-template-columns: repeat(auto-fill, minmax(190px, 1fr)) !important; }
#predict-gallery .thumbnail-item { aspect-ratio: auto; height: auto; display: flex; flex-direction: column; }
#predict-gallery .thumbnail-item img { aspect-ratio: 1 / 1; height: auto; }
#predict-gallery .caption-label { position: static; max-width: none; white-space: normal; overflow: visible;
  text-overflow: clip; text-align: left; }
"""
CSS += FORM_AND_PANEL_CSS + "\n" + ERRORS_VIEWS_CSS
HEAD = SHORTCUTS_JS  # scripts of the page's <head>: the label review's keyboard shortcuts

# tab id -> (title, builder), in page order
TABS = {
    "train": (TITLES["train"], create_train_tab),
    "runs": ("Runs", create_runs_tab),
    "ensemble": ("Ensemble", create_ensemble_tab),
    "finetune": (TITLES["finetune"], create_finetune_tab),
    "errors": ("Errors", create_errors_tab),
    "predict": ("Predict", create_predict_tab),
    "audit": ("Audit", create_audit_tab),
}


@dataclass(eq=False)
class Page:
    """The page's tabs as their builders returned them (`demo.workbench`)."""

    train: FormTab
    runs: RunsTab
    ensemble: EnsembleTab
    finetune: FormTab
    errors: ErrorsTab
    predict: PredictTab
    audit: AuditTab


def header_markdown(ctx) -> str:
    lines = [
        "## CIFAR Workbench",
        f"**Devices:** {html.escape(ctx.device_summary)} · **Store:** `{html.escape(str(ctx.store.path))}`",
    ]
    if ctx.cluster_summary is not None:  # --ray: where the jobs run, as the cluster is when the page loads
        lines.append(f"**Jobs run on the** {html.escape(cluster_line(ctx))}")
    if ctx.interrupted:
        ids = ", ".join(str(i) for i in ctx.interrupted)
        lines.append(
            f"Runs left running by an earlier process were marked *interrupted*: {ids}. "
            "Follow one in the Train tab and press **Resume** to continue it from its last checkpoint."
        )
    return "\n\n".join(lines)


def signed_in(ctx) -> str:
    user = ctx.user()
    rights = "may change anything" if user.is_admin else "may cancel, archive or delete what they made"
    return f"Signed in as **{html.escape(user.name)}** ({user.role}: {rights})"


def cluster_line(ctx) -> str:
    try:
        return ctx.cluster_summary()
    except Exception as exc:  # the cluster went away: say so instead of failing the page
        return f"Ray cluster, which does not answer now ({type(exc).__name__})"


def _polling_only(shown: str, timers: dict) -> dict:
    """The tabs' timers (tab id -> timer), only that of the tab `shown` (if it has one) running."""
    return {timer: gr.Timer(active=name == shown) for name, timer in timers.items()}


def build_app(ctx) -> gr.Blocks:
    with gr.Blocks(title="CIFAR Workbench", fill_width=True) as demo:
        # With a cluster the header is computed at each page load (nodes come and go); otherwise once.
        gr.Markdown(
            (lambda: header_markdown(ctx)) if ctx.cluster_summary is not None else header_markdown(ctx),
            elem_id="header",
        )
        if ctx.accounts is not None:  # a page with logins says whose it is, at each load (each browser its own)
            who = gr.Markdown(elem_id="who")
            demo.load(lambda: signed_in(ctx), None, who, show_progress="hidden", api_visibility="private")
        tab_items: dict[str, Any] = {}
        contents: dict[str, Any] = {}
        with gr.Tabs() as tabs:
            for tab_id, (title, create) in TABS.items():
                with gr.Tab(title, id=tab_id) as tab_items[tab_id]:
                    contents[tab_id] = create(ctx)
        page = Page(**contents)
        forms = {"train": page.train, "finetune": page.finetune}
        wire_clone(ctx, page.runs, tabs, forms)
        ensemble = page.ensemble.view
        wire_distil_button(ctx, ensemble.distil, ensemble.saved, ensemble.message, page.train, page.train.distill, tabs)
        # Only the shown tab polls: both live panels read the same jobs (twice the work for nothing), and
        # the leaderboard's live minutes matter only where they are seen.
        timers = {name: form.timer for name, form in forms.items()} | {"runs": page.runs.timer}
        for tab_id, tab_item in tab_items.items():
            tab_item.select(
                lambda shown=tab_id: _polling_only(shown, timers), None, list(timers.values()), show_progress="hidden"
            )
        # Views of finished runs refresh when their tab is opened (not on a timer: that would undo a
        # user's sort or selection).
        for tab_id, refresh in (
            ("runs", page.runs.refresh),
            ("runs", page.runs.overview),
            ("runs", page.runs.sweeps),
            ("runs", page.runs.studies),
            ("ensemble", page.ensemble.refresh),
            ("errors", page.errors.refresh),
            ("predict", page.predict.refresh),
            ("audit", page.audit.refresh),
        ):
            refresh.wire(tab_items[tab_id].select, show_progress="hidden")
        # Re-attach on every page load: the live panel and the leaderboard come from the store.
        for refresh in (page.train.refresh, page.runs.refresh):
            refresh.wire(demo.load, show_progress="hidden")
    demo.workbench = page
    return demo
