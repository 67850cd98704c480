"""The Ensemble tab's "this run's snapshots": one click puts a run's stored snapshots (`--snapshots M`,
`workbench.training.snapshots`) in the members box, which then scores them as it scores any selection.
Only the wiring is in `workbench.ui.tabs.ensemble`."""

from typing import Any

import gradio as gr

from workbench.constants import Derived, RunStatus
from workbench.ensemble import lab
from workbench.views import runs as rd


def snapshot_parents(store: Any) -> list[tuple[str, int]]:
    """Runs with at least one completed snapshot, as dropdown choices (label, id)."""
    parents: dict[int, int] = {}
    for run in store.list_runs(status=RunStatus.COMPLETED):
        if run.get("parent_run") and str(run.get("derived") or "").startswith(Derived.SNAPSHOT):
            parents[int(run["parent_run"])] = parents.get(int(run["parent_run"]), 0) + 1
    choices = []
    for parent_id, count in sorted(parents.items()):
        try:
            parent = store.get_run(parent_id)
        except Exception:  # the parent was deleted: its snapshots stay runs of their own
            parent = {"id": parent_id, "name": "(deleted)"}
        choices.append(rd.run_choice(parent, f" · {count} snapshots"))
    return choices


def snapshot_choices(store: Any) -> Any:
    """The picker's update: its runs now (the tab's refresh, when it opens or Refresh runs is clicked)."""
    return gr.update(choices=snapshot_parents(store))


def snapshot_members(store: Any, parent_id: Any, limit: int) -> tuple[list[int], str]:
    """The completed snapshots of run `parent_id` (at most `limit`, the tab's sliders), and a note."""
    if parent_id in (None, ""):
        return [], "**Pick a run with snapshots first** (trained with Snapshots >= 2 on the Train form)."
    snaps = [
        r
        for r in store.derived_runs(int(rd.chosen_run_id(parent_id)))
        if r["status"] == RunStatus.COMPLETED and str(r["derived"]).startswith(Derived.SNAPSHOT)
    ]
    ids = [int(r["id"]) for r in snaps]
    note = "" if len(ids) <= limit else f"**Run {parent_id} has {len(ids)} snapshots; the first {limit} are picked.**"
    return ids[:limit], note


def add_snapshot_picker() -> tuple[gr.Dropdown, gr.Button]:
    """The picker's components, inside the caller's layout."""
    with gr.Row():
        parents = gr.Dropdown(
            [],
            value=None,
            label="A run's snapshots",
            scale=4,
            elem_id="ensemble-snapshot-run",
            info="runs trained with snapshots (cosine cycles)",
        )
        button = gr.Button("Use this run's snapshots", scale=1, elem_id="ensemble-use-snapshots")
    return parents, button


def wire_snapshot_picker(ctx: Any, parents: gr.Dropdown, button: gr.Button, runs: gr.Dropdown, limit: int) -> Any:
    """Refresh the picker's runs when it gets the focus (the tab's refresh fills it too); the button fills
    `runs`. Returns the click's event, for the tab to chain its selection handler on."""
    parents.focus(lambda: snapshot_choices(ctx.store), None, parents)

    def pick(parent_id: Any) -> Any:
        ids, _ = snapshot_members(ctx.store, parent_id, limit)  # more than the sliders: the first ones
        choices = [rd.run_choice(c) for c in lab.candidates(ctx.store) if c["eligible"]]
        return gr.update(choices=choices, value=ids)

    return button.click(pick, parents, runs)
