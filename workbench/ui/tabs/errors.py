"""Errors tab: which images a run, a saved ensemble or a cross-validation request's out-of-fold matrix (the
training split) gets wrong, by confusion cell and confidence, and where two sources disagree. Predictions come
from stored logits; images are rebuilt from the run's dataset and checked against the stored labels'
fingerprint (`workbench.inspect.sources`). The split follows the source: val or test for a run or an ensemble,
the training split for a cross-validation request. Which images the filters choose is
`workbench.ui.tabs.errors_selection`'s."""

from dataclasses import dataclass
from typing import Any

import gradio as gr
import numpy as np

from workbench.ensemble import lab
from workbench.errors import UserError
from workbench.inspect import analysis, gallery
from workbench.inspect import sources as sv
from workbench.ui import plots, widgets
from workbench.ui.refresh import Refresh
from workbench.ui.tabs.errors_duplicates import create_duplicates_view
from workbench.ui.tabs.errors_map import create_map_view
from workbench.ui.tabs.errors_selection import (
    ANY,
    COMPARE,
    SORTS,
    SPLIT_NAMES,
    Selection,
    class_value,
    compare_note,
    no_match_message,
    per_class_rows,
    select_indices,
)
from workbench.ui.tabs.label_review import ReviewView, create_review_view
from workbench.ui.widgets import LAST

PER_PAGE = 64
CONFUSION_MIN_WIDTH = 640  # px: the matrix's 11 columns in the page font (measured: 615 px at 1024)
PICKED_SCALE = 8  # the clicked image, 32 -> 256 pixels
PER_CLASS_COLUMNS = ["class", "images", "errors", "precision %", "recall %"]
SPLIT_CHOICES = {split: [(name, split)] for split, name in SPLIT_NAMES.items()}


@dataclass(eq=False)
class ErrorsView:
    """The tab's components."""

    source: gr.Dropdown  # source A: a run, a saved ensemble or a cross-validation request (cv:NAME)
    split: gr.Radio  # its choices follow source A (`split_update`)
    refresh: gr.Button
    message: gr.Markdown
    confusion: gr.Dataframe  # a table, not a heatmap: its cell clicks reach the server (`pick_cell`)
    per_class: gr.Dataframe
    true_class: gr.Dropdown
    predicted_class: gr.Dropdown
    sort: gr.Dropdown
    seed: gr.Number
    compare: gr.Radio
    source_b: gr.Dropdown
    compare_note: gr.Markdown  # beside B: why a comparison shows nothing
    previous: gr.Button
    page: gr.Number
    next: gr.Button
    count: gr.Markdown
    gallery: gr.Gallery
    picked: gr.Image  # the clicked image, enlarged
    top5: gr.Plot
    export: gr.Button
    export_file: gr.File

    @property
    def filters(self) -> list:
        """What chooses the images, in the order the handlers take them (`_Handlers.selection`)."""
        return [
            self.source,
            self.split,
            self.true_class,
            self.predicted_class,
            self.sort,
            self.seed,
            self.compare,
            self.source_b,
        ]


@dataclass(eq=False)
class ErrorsTab:
    view: ErrorsView
    refresh: Refresh  # the choices of sources A and B
    review: ReviewView  # "Likely label errors": source A's labels ranked and reviewed (`ui.tabs.label_review`)


def split_update(key, split) -> tuple:
    """(the split source `key` is shown on, the split radio's update): `split` where the source has it, else its
    first (a cv source: the training split; a run or an ensemble: test)."""
    try:
        offered = list(sv.splits_of(key)) if key else list(sv.SPLITS)
    except UserError:
        offered = list(sv.SPLITS)
    if split not in offered:
        split = "test" if "test" in offered else offered[0]
    choices = [choice for name in ("test", "val", "train") if name in offered for choice in SPLIT_CHOICES[name]]
    return split, gr.update(choices=choices, value=split)


class _Handlers:
    """The tab's event handlers; sources are loaded once per (source, split) and kept in `cache`."""

    def __init__(self, ctx, view: ErrorsView):
        self.cache: dict[tuple, Any]  # inspect.sources' cache: datasets and split images
        self.store, self.room, self.cache, self.v = ctx.store, lab.Lab(ctx.store), {}, view

    def load(self, key, split):
        if not key:
            raise UserError("choose a source: a completed run, a saved ensemble or a cross-validation request")
        return sv.load_source(self.store, self.room, key, split, self.cache)

    def selection(self, key, split, true_name, predicted_name, sort, seed, mode, key_b) -> Selection:
        a = self.load(key, split)
        b = self.load(key_b, split) if mode != "off" and key_b else None
        indices = select_indices(
            a, b, class_value(true_name, a.class_names), class_value(predicted_name, a.class_names), sort, seed, mode
        )
        return Selection(a, b, indices, true_name or ANY, predicted_name or ANY, sort, int(seed or 0), mode)

    def with_images(self, values) -> Selection:
        """`selection(*values)`, refused when the source's images cannot be rebuilt."""
        chosen = self.selection(*values)
        if chosen.a.images_error:
            raise UserError(chosen.a.images_error)
        return chosen

    def images(self, a):
        return sv.split_images(self.store, a.image_run, a.split, self.cache)

    def show(self, page_number, *values):
        """The gallery page and its count line for the current filters (`ErrorsView.filters`)."""
        v = self.v
        note = compare_note(*values[-2:])  # the filters end with the comparison mode and source B
        if note:
            return {v.gallery: [], v.count: "", v.message: "", v.compare_note: note}
        try:
            chosen = self.with_images(values)
            a, indices = chosen.a, chosen.indices
            pages = gallery.page_count(len(indices), PER_PAGE)
            page_number = min(max(1, int(page_number or 1)), pages)
            if len(indices) == 0:
                return {
                    v.gallery: [],
                    v.page: page_number,
                    v.compare_note: "",
                    v.count: no_match_message(chosen),
                    v.message: "",
                }
            items = gallery.page(
                self.images(a),
                indices,
                a.probs,
                a.labels,
                a.class_names,
                page=page_number - 1,
                per_page=PER_PAGE,
                probs_b=chosen.b.probs if chosen.b else None,
            )
        except UserError as exc:
            return {v.gallery: [], v.count: "", v.message: f"**{exc}**", v.compare_note: ""}
        return {
            v.gallery: items,
            v.page: page_number,
            v.compare_note: "",
            v.count: f"{len(indices):,} images · page {page_number} of {pages}",
            v.message: "",
        }

    def change_source(self, key, split, *rest):
        """A new source or split: the split's choices (they follow the source), confusion matrix, per-class
        table, class filters, then the gallery."""
        v = self.v
        split, split_choice = split_update(key, split)
        try:
            a = self.load(key, split)
        except UserError as exc:
            return {v.message: f"**{exc}**", v.gallery: [], v.page: 1, v.count: "", v.split: split_choice}
        matrix = analysis.confusion_matrix(a.labels, analysis.predictions(a.probs), a.num_classes)
        accuracy = np.trace(matrix) / max(1, matrix.sum())
        title = (
            f"Confusion matrix: {a.name} on {SPLIT_NAMES[a.split]}, accuracy {100 * accuracy:.2f}% "
            "(click a cell to show its images, a class name for its row)"
        )
        names = [ANY, *a.class_names]
        return {
            v.split: split_choice,
            v.confusion: gr.update(value=plots.confusion_table(matrix, a.class_names), label=title),
            v.per_class: per_class_rows(a),
            v.true_class: gr.update(choices=names, value=ANY),
            v.predicted_class: gr.update(choices=names, value=ANY),
            **self.show(1, key, split, ANY, ANY, *rest),
        }

    def pick_cell(self, key, split, sort, seed, mode, key_b, evt: gr.SelectData):
        """A confusion-table click: the row's true class and the column's predicted class filter the
        gallery (a click on the class-name column: the whole row)."""
        try:
            a = self.load(key, split)
        except UserError as exc:
            return {self.v.message: f"**{exc}**"}
        true_name = str((evt.row_value or [""])[0])  # the row's own name: right even in a re-sorted table
        if true_name not in a.class_names:
            return gr.skip()
        column = evt.index[1]
        predicted = ANY if column == 0 else a.class_names[column - 1]
        return {
            self.v.true_class: true_name,
            self.v.predicted_class: predicted,
            **self.show(1, key, split, true_name, predicted, sort, seed, mode, key_b),
        }

    def pick(self, page_number, key, split, true_name, predicted_name, sort, seed, mode, key_b, evt: gr.SelectData):
        # Gradio injects the event by annotation on named parameters only, hence no *values here.
        try:
            chosen = self.selection(key, split, true_name, predicted_name, sort, seed, mode, key_b)
            position = (int(page_number or 1) - 1) * PER_PAGE + evt.index
            image = int(chosen.indices[position])
            picked, _ = gallery.page(
                self.images(chosen.a),
                [image],
                chosen.a.probs,
                chosen.a.labels,
                chosen.a.class_names,
                per_page=1,
                scale=PICKED_SCALE,
            )[0]
        except (UserError, IndexError) as exc:
            return gr.skip(), gr.skip(), f"**{exc}**"
        entries = []
        for letter, source in (("A", chosen.a), ("B", chosen.b)):
            if source is None:
                continue
            prefix = f"{letter}: " if chosen.b else ""  # compared: both sources' probabilities, told apart
            entries.append((f"{prefix}{source.name}", analysis.top5(source.probs[image], source.class_names)))
            for run_id, probs in source.members.items():
                entries.append(
                    (
                        f"{prefix}member {run_id}: {source.member_names.get(run_id, '')}",
                        analysis.top5(probs[image], source.class_names),
                    )
                )
        true_name = chosen.a.class_names[chosen.a.labels[image]]
        return (
            plots.top5_bars(entries, f"Image #{image} (true: {true_name})"),
            gr.update(value=picked, label=f"Image #{image}"),
            "",
        )

    def export(self, *values):
        def write():
            chosen = self.with_images(values)
            a, b = chosen.a, chosen.b
            path = widgets.fresh_folder("workbench-errors-") / chosen.file_name()
            gallery.export_grid(
                self.images(a),
                chosen.indices,
                a.probs,
                a.labels,
                a.class_names,
                path,
                title="\n".join(chosen.describe()),
                probs_b=b.probs if b else None,
            )
            return path, f"Exported {min(len(chosen.indices), gallery.EXPORT_LIMIT)} images to {path.name}."

        return widgets.exported(write)

    def refresh(self, key, key_b):
        choices = sv.source_choices(self.store, cv=True)
        values = {v for _, v in choices}
        return (
            gr.update(choices=choices, value=key if key in values else None),
            gr.update(choices=choices, value=key_b if key_b in values else None),
        )


def _layout(ctx) -> tuple[ErrorsView, ReviewView]:
    c: dict[str, Any] = {}
    with gr.Row():
        c["source"] = gr.Dropdown(
            [], label="Source A (run, saved ensemble or cross-validation)", elem_id="errors-source", scale=3
        )
        c["split"] = gr.Radio(
            [("test", "test"), ("validation", "val")], value="test", label="Split", scale=1, elem_id="errors-split"
        )
        c["refresh"] = gr.Button("Refresh sources", scale=1)
    c["message"] = gr.Markdown(elem_id="errors-message")
    with gr.Accordion("Likely label errors: review source A's labels", open=False, elem_id="review-box"):
        review = create_review_view(ctx, c["source"], c["split"])
    with gr.Row():
        # At least as wide as ten CIFAR-10 class columns need: below that the two tables stack instead of
        # squeezing the matrix into a box narrower than its columns (1024 px windows).
        c["confusion"] = gr.Dataframe(
            value=[],
            interactive=False,
            label="Confusion matrix (click a cell to show its images)",
            elem_id="errors-confusion",
            min_width=CONFUSION_MIN_WIDTH,
        )
        c["per_class"] = gr.Dataframe(
            headers=PER_CLASS_COLUMNS, value=[], interactive=False, label="Per class", min_width=CONFUSION_MIN_WIDTH
        )
    with gr.Row():
        c["true_class"] = gr.Dropdown([ANY], value=ANY, label="True class", elem_id="errors-true")
        c["predicted_class"] = gr.Dropdown([ANY], value=ANY, label="Predicted class", elem_id="errors-predicted")
        c["sort"] = gr.Dropdown(SORTS, value="confident", label="Order")
        c["seed"] = gr.Number(0, label="Random seed", precision=0)
    with gr.Row():
        c["compare"] = gr.Radio(COMPARE, value="off", label="Compare A with B")
        c["source_b"] = gr.Dropdown([], label="Source B", elem_id="errors-source-b")
        c["compare_note"] = gr.Markdown(elem_id="errors-compare-note")
    with gr.Row():
        pager = widgets.pager(ids=(None, "errors-page", None))
        c.update(previous=pager.previous, page=pager.number, next=pager.next)
        c["count"] = gr.Markdown(elem_id="errors-count")
    c["gallery"] = widgets.thumbnails("Images (click one for its top-5 probabilities)", "errors-gallery", columns=8)
    c["picked"], c["top5"] = widgets.picked_row("The image you click", "errors-picked", PICKED_SCALE)
    c["export"], c["export_file"] = widgets.export_row("Export the selection as one PNG", "Exported grid")
    return ErrorsView(**c), review


def create_errors_tab(ctx) -> ErrorsTab:
    v, review = _layout(ctx)
    h = _Handlers(ctx, v)
    with gr.Accordion("Near-duplicates between the test and training images", open=False):
        create_duplicates_view(ctx, v.source, h.cache)
    with gr.Accordion("Map of a split (its features in 2-D)", open=False):
        create_map_view(ctx, v.source, h.cache)
    filters = v.filters
    show_outputs = [v.gallery, v.page, v.count, v.message, v.compare_note]
    source_outputs = [v.split, v.confusion, v.per_class, v.true_class, v.predicted_class, *show_outputs]
    source_inputs = [v.source, v.split, v.sort, v.seed, v.compare, v.source_b]
    v.source.input(h.change_source, source_inputs, source_outputs, api_name="errors_source", trigger_mode=LAST)
    v.split.input(h.change_source, source_inputs, source_outputs, trigger_mode=LAST)
    gr.on(
        [v.true_class.input, v.predicted_class.input, v.sort.input, v.seed.submit, v.compare.input, v.source_b.input],
        lambda *values: h.show(1, *values),
        filters,
        show_outputs,
        api_name="errors_page",
        trigger_mode=LAST,
    )
    widgets.Pager(v.previous, v.page, v.next).wire(h.show, filters, show_outputs)
    v.confusion.select(
        h.pick_cell, source_inputs, [v.true_class, v.predicted_class, *show_outputs], api_visibility="private"
    )
    v.gallery.select(h.pick, [v.page, *filters], [v.top5, v.picked, v.message])
    v.export.click(h.export, filters, [v.export_file, v.message])
    refresh = Refresh(h.refresh, [v.source, v.source_b], [v.source, v.source_b])
    refresh.wire(v.refresh.click)
    return ErrorsTab(view=v, refresh=refresh, review=review)
