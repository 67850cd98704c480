"""The Runs tab: leaderboard with filters, curve/per-class/overview comparisons and per-run actions.

`create_runs_tab(ctx)` builds the tab's contents inside the caller's `gr.Tab` and returns a
`RunsTab`: its components (`view`) and the two refreshes the page also runs when the tab is opened
(`refresh`: leaderboard, filters and run choices; `overview`: the overview figures).
`wire_clone(ctx, runs, tabs, targets)` connects "Clone" once the Train and Fine-tune tabs exist.
While a run is running, `timer` redraws the leaderboard so its training minutes stay live.
What the buttons do to the store is in `workbench.ui.tabs.runs_actions`, plain functions raising
UserError; the handlers here turn their answers into component updates.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from typing import Any

import gradio as gr

from workbench.constants import RunStatus
from workbench.errors import UserError
from workbench.ui import plots
from workbench.ui.refresh import Refresh
from workbench.ui.tabs import runs_export
from workbench.ui.tabs.runs_actions import (
    clone_values,
    curves_figure,
    delete_run,
    export_csv,
    leaderboard,
    load_runs,
    overview_figures,
    per_class_figure,
    run_details,
    save_notes_tags,
    toggle_archive,
)
from workbench.ui.tabs.runs_layout import RunsView, layout
from workbench.ui.tabs.runs_studies import wire_study_view
from workbench.ui.tabs.runs_sweeps import wire_sweep_view
from workbench.ui.widgets import LAST
from workbench.views import runs as rd

log = logging.getLogger(__name__)
TITLES = {"train": "Train", "finetune": "Fine-tune"}  # the tabs "Clone" fills, as the page names them


@dataclass(eq=False)
class RunsTab:
    view: RunsView
    refresh: Refresh  # leaderboard, summary, filter choices and run choices
    overview: Refresh  # the parameters-vs-accuracy and by-group figures
    sweeps: Refresh  # the Sweeps view
    studies: Refresh  # the Studies view

    @property
    def timer(self) -> gr.Timer:
        return self.view.timer


# -- Gradio plumbing -----------------------------------------------------------------------------
def _message(exc: Exception) -> str:
    if isinstance(exc, UserError):
        return str(exc)
    log.exception("Runs tab action failed")
    return f"Something went wrong ({type(exc).__name__}: {exc}); see the server log."


def _guarded(status=None, figure_title: str | None = None):
    """Turn any exception into a warning toast plus the message in the `status` component (the other
    outputs are left as they are), or into a figure titled `figure_title` that explains it."""

    def decorate(fn):
        @functools.wraps(fn)
        def wrapper(*args):
            try:
                return fn(*args)
            except Exception as exc:
                text = _message(exc)
                gr.Warning(text)
                if figure_title is not None:
                    return plots.empty_figure(figure_title, text)
                return gr.skip() if status is None else {status: f"⚠️ {text}"}

        return wrapper

    return decorate


def _choices_update(options, current):
    """New choices for a multiselect filter; the value is left alone (the current one stays a choice)."""
    return gr.update(choices=sorted(set(options) | set(current or [])))


def _ids(choices) -> list[int]:
    ids = []
    for choice in choices or []:
        try:
            ids.append(rd.chosen_run_id(choice))
        except UserError:
            pass
    return ids


class _Handlers:
    """The tab's event handlers: store actions in, component updates out (by component)."""

    def __init__(self, ctx, view: RunsView):
        self.ctx, self.store, self.v = ctx, ctx.store, view
        self.columns = _columns(ctx)

    def refresh_fn(
        self,
        status=(),
        model=(),
        loss=(),
        tag=(),
        show_archived=False,
        show_ensembles=True,
        sort_by=rd.DEFAULT_SORT,
        by=(),
        selection=(),
        pick=None,
    ):
        """The leaderboard, summary, filter choices and run choices. Its parameters are named (not `*values`):
        Gradio takes them as the `runs_refresh` API's, and `pick=None` lets a client leave the pick out."""
        v, store = self.v, self.store
        filters = rd.LeaderboardFilters(status, model, loss, tag, show_archived, show_ensembles, sort_by, by)
        runs = load_runs(store)
        rows = leaderboard(store, filters, runs=runs)
        options = rd.filter_options(runs)
        choices = [rd.run_choice(r) for r in sorted(runs, key=lambda r: -r["id"])]  # values: the run ids
        known = {r["id"] for r in runs}
        ids = _ids(selection)
        kept = [i for i in ids if i in known]
        pick_ids = _ids([pick] if pick else [])
        pick_value = pick_ids[0] if pick_ids and pick_ids[0] in known else None
        # values are only sent when a run went away, so a timer tick never fights a user's edit
        keep: dict[str, Any] = {"value": kept} if len(kept) < len(ids) else {}
        selection_update = gr.update(choices=choices, **keep)
        clear: dict[str, Any] = {"value": pick_value} if pick and not pick_value else {}
        pick_update = gr.update(choices=choices, **clear)
        if not runs and not rows:
            summary = f"### {rd.EMPTY_MESSAGE}"
        else:
            hidden = sum(1 for r in runs if r["archived"]) if not filters.show_archived else 0
            n_runs = sum(1 for r in rows if r["Kind"] != "ensemble")
            summary = (
                f"{n_runs} of {len(runs)} run(s) shown"
                f"{f', {hidden} archived hidden' if hidden else ''}"
                f" · {len(rows) - n_runs} ensemble(s)"
            )
        return {
            v.leaderboard: gr.update(value=rd.display_table(rows, self.columns)),
            v.summary: summary,
            v.status_filter: _choices_update(options["status"], filters.status),
            v.model_filter: _choices_update(options["model"], filters.model),
            v.loss_filter: _choices_update(options["loss"], filters.loss),
            v.tag_filter: _choices_update(options["tag"], filters.tag),
            v.by_filter: _choices_update(options["by"], filters.by),
            v.selection: selection_update,
            v.pick: pick_update,
        }

    def live_fn(self, *values):
        """A timer tick: the leaderboard again while some run is running (its minutes move), else nothing."""
        if not self.store.runs_with_status(RunStatus.RUNNING):
            return gr.skip()
        return self.refresh_fn(*values)

    def overview_fn(self, metric, group_by, show_archived):
        scatter, groups = overview_figures(self.store, metric, group_by, show_archived)
        return {self.v.scatter: scatter, self.v.groups: groups}

    def export_fn(self, *values):
        filters = rd.LeaderboardFilters(*values)  # the export's inputs: RunsView.filters
        path = export_csv(self.store, filters, shown=self.columns, by=self.ctx.user().name)
        return {
            self.v.export_file: gr.update(value=path, visible=True),
            self.v.action_status: "",
        }

    def details_fn(self, choice):
        notes, tags, label, details = run_details(self.store, choice)
        return {self.v.notes: notes, self.v.tags: tags, self.v.archive: gr.update(value=label), self.v.details: details}

    def row_selected(self, evt: gr.SelectData):
        row = dict(zip(self.columns, evt.row_value or []))
        if "Name" not in row or row["Kind"] == "ensemble" or row["ID"] is None:
            return gr.skip()
        return int(row["ID"])  # the pick's value: its choices are `rd.run_choice`s

    def _owner_checked(self, choice, action: str) -> str:
        """The user's name, once they may `action` the picked run (a member: only their own)."""
        run = self.store.get_run(rd.chosen_run_id(choice))
        return self.ctx.check_owner(run.get("created_by"), action, f"run {run['id']}").name

    def save_fn(self, choice, notes, tags):
        return save_notes_tags(self.store, choice, notes, tags, by=self.ctx.user().name)

    def archive_fn(self, choice):
        return toggle_archive(self.store, choice, by=self._owner_checked(choice, "archive"))

    def delete_fn(self, choice, sure):
        by = self._owner_checked(choice, "delete")
        return {self.v.action_status: delete_run(self.store, self.ctx.queue, choice, sure, by=by), self.v.sure: False}


def _columns(ctx) -> tuple:
    return rd.columns(nodes=ctx.cluster_summary is not None, owners=getattr(ctx, "accounts", None) is not None)


def create_runs_tab(ctx) -> RunsTab:
    """Build the Runs tab inside the caller's `gr.Tab`."""
    v = layout(_columns(ctx))
    h = _Handlers(ctx, v)
    refresh = Refresh(
        _guarded(status=v.summary)(h.refresh_fn),
        [*v.filters, v.selection, v.pick],
        [
            v.leaderboard,
            v.summary,
            v.status_filter,
            v.model_filter,
            v.loss_filter,
            v.tag_filter,
            v.by_filter,
            v.selection,
            v.pick,
        ],
    )
    overview = Refresh(
        _guarded()(h.overview_fn), [v.accuracy_metric, v.group_by, v.show_archived], [v.scatter, v.groups]
    )
    _wire(ctx.store, v, h, refresh, overview)
    runs_export.wire(ctx, v.model_export, v.pick)
    v.timer.tick(
        _guarded(status=v.summary)(h.live_fn),
        refresh.inputs,
        refresh.outputs,
        show_progress="hidden",
        api_visibility="private",
    )
    sweeps, studies = wire_sweep_view(ctx.store, v.sweeps, v.refresh), wire_study_view(ctx, v.studies, v.refresh)
    return RunsTab(view=v, refresh=refresh, overview=overview, sweeps=sweeps, studies=studies)


def _wire(store, v: RunsView, h: _Handlers, refresh: Refresh, overview: Refresh):
    quiet: dict[str, Any] = dict(show_progress="hidden", trigger_mode=LAST)
    private: dict[str, Any] = dict(show_progress="hidden", api_visibility="private")
    refresh.on(
        [
            v.refresh.click,
            v.sort_by.input,
            v.show_archived.input,
            v.show_ensembles.input,
            v.status_filter.input,
            v.model_filter.input,
            v.loss_filter.input,
            v.tag_filter.input,
            v.by_filter.input,
        ],
        api_name="runs_refresh",
        **quiet,
    )
    overview.on(
        [v.refresh.click, v.accuracy_metric.input, v.group_by.input, v.show_archived.input],
        api_name="runs_overview",
        **quiet,
    )
    curves_fn = _guarded(figure_title="Curves")(functools.partial(curves_figure, store))
    per_class_fn = _guarded(figure_title="Per-class test accuracy")(functools.partial(per_class_figure, store))
    gr.on(
        [v.refresh.click, v.selection.input, v.metric.input, v.x_axis.input, v.smoothing.input],
        curves_fn,
        [v.selection, v.metric, v.x_axis, v.smoothing],
        v.curves,
        api_name="runs_curves",
        **quiet,
    )
    v.selection.input(per_class_fn, [v.selection], v.per_class, api_name="runs_per_class", **quiet)
    v.export.click(
        _guarded(status=v.action_status)(h.export_fn),
        v.filters,
        [v.export_file, v.action_status],
        api_name="runs_export",
    )

    details = Refresh(_guarded()(h.details_fn), [v.pick], [v.notes, v.tags, v.archive, v.details])
    details.wire(v.pick.input, show_progress="hidden", api_name="runs_details")
    details.wire(v.leaderboard.select(h.row_selected, None, v.pick, **private).then, **private)

    # After an action: the leaderboard again, and (archive, delete) the picked run's details.
    saved = v.save.click(
        _guarded(status=v.action_status)(h.save_fn), [v.pick, v.notes, v.tags], v.action_status, api_name="runs_save"
    )
    refresh.wire(saved.then, **private)
    archived = v.archive.click(
        _guarded(status=v.action_status)(h.archive_fn), [v.pick], v.action_status, api_name="runs_archive"
    )
    details.wire(refresh.wire(archived.then, **private).then, **private)
    deleted = v.delete.click(
        _guarded(status=v.action_status)(h.delete_fn),
        [v.pick, v.sure],
        [v.action_status, v.sure],
        api_name="runs_delete",
    )
    details.wire(refresh.wire(deleted.then, **private).then, **private)


def wire_clone(ctx, runs: RunsTab, tabs, targets: dict):
    """Runs' "Clone" fills the form the run came from (`targets`: tab id -> its FormTab) and its command
    preview (written here, not left to the form's change events, which a busy page can run with
    half-updated values), switches to that tab and turns on that tab's live-panel timer (a tab switched
    to by code fires no select event); the other form is left as it is."""
    status = runs.view.action_status
    box = getattr(targets.get("train"), "distill", None)  # the Train tab's Distil box: a distillation's teacher
    outputs = [
        *(box.clone_targets if box else ()),
        *(component for target in targets.values() for component in target.form.values()),
        *(target.timer for target in targets.values()),
        *(target.command for target in targets.values()),
        *(target.tags for target in targets.values()),
        runs.timer,
        tabs,
        status,
    ]

    @_guarded(status=status)
    def clone_fn(choice):
        clone = clone_values(ctx.store, choice)
        target = targets[clone.tab]
        return {
            **{target.form[name]: value for name, value in clone.fields.items()},
            **{other.timer: gr.Timer(active=name == clone.tab) for name, other in targets.items()},
            runs.timer: gr.Timer(active=False),
            target.command: clone.command,
            target.tags: clone.tags,
            tabs: gr.Tabs(selected=clone.tab),
            **(box.filled(ctx.store, clone.distill, clone.note) if box else {}),
            status: f"Cloned run {rd.chosen_run_id(choice)} into the {TITLES[clone.tab]} form as "
            f"**{clone.fields['name']}**{f' with its tags ({clone.tags})' if clone.tags else ''}: "
            "change what you want to try and start it." + (f" {clone.note}" if clone.note else ""),
        }

    runs.view.clone.click(clone_fn, [runs.view.pick], outputs, api_name="runs_clone")
