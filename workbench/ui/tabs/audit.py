"""The Audit tab: who did what (queue, cancel, resume, delete, archive, export, review, refusals, failed logins),
newest first, filtered by user or action, and the whole trail as CSV (`store.audit`, `workbench.views.audit`)."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from workbench.constants import AUDIT_ACTIONS, AuditAction
from workbench.ui.refresh import Refresh
from workbench.views import audit as av

ALL = "(all)"


@dataclass(eq=False)
class AuditTab:
    refresh: Refresh


def create_audit_tab(ctx) -> AuditTab:
    """Build the tab inside the caller's `gr.Tab`."""
    store = ctx.store
    with gr.Row():
        user = gr.Dropdown([ALL], value=ALL, label="User", scale=1, elem_id="audit-user")
        action = gr.Dropdown([ALL, *AUDIT_ACTIONS], value=ALL, label="Action", scale=1, elem_id="audit-action")
        refresh_button = gr.Button("Refresh", scale=0, min_width=120)
        download = gr.Button("Download CSV", scale=0, min_width=190, elem_id="audit-csv")
    summary = gr.Markdown()
    table = gr.Dataframe(
        headers=list(av.COLUMNS),
        value=[],
        interactive=False,
        wrap=True,
        max_height=560,
        column_widths=["13%", "10%", "10%", "12%", "55%"],
        elem_id="audit-table",
    )
    file = gr.File(label="Audit trail (CSV)", visible=False, interactive=False)

    def filters(user_value, action_value) -> dict:
        return {
            "user": None if user_value in (None, ALL) else user_value,
            "action": None if action_value in (None, ALL) else action_value,
        }

    def show(user_value, action_value):
        chosen = filters(user_value, action_value)
        rows = store.audit_rows(limit=av.SHOWN, **chosen)
        return {
            table: av.audit_table(rows),
            summary: av.summary(len(rows), chosen["user"], chosen["action"]),
            user: gr.update(choices=[ALL, *store.audit_users()]),
        }

    def export(user_value, action_value):
        chosen = filters(user_value, action_value)
        path = store.audit_csv(Path(tempfile.mkdtemp(prefix="workbench-audit-")) / "audit.csv", **chosen)
        store.record(ctx.user().name, AuditAction.EXPORT, "audit trail", "as CSV")
        return gr.update(value=str(path), visible=True)

    refresh = Refresh(show, [user, action], [table, summary, user])
    refresh.on([refresh_button.click, user.input, action.input], show_progress="hidden", api_name="audit")
    download.click(export, [user, action], file, api_name="audit_csv")
    return AuditTab(refresh)
