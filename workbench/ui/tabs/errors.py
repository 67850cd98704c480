"""Errors tab: which images a run or a saved ensemble gets wrong, by confusion cell and confidence,
and where two sources disagree. Predictions come from stored logits; images are rebuilt from the
run's dataset and checked against the stored labels' fingerprint (`workbench.inspect.sources`)."""
import tempfile
from dataclasses import dataclass

import gradio as gr
import numpy as np

from workbench.ensemble import lab
from workbench.errors import UserError
from workbench.inspect import analysis, gallery
from workbench.inspect import sources as sv
from workbench.ui import plots
from workbench.ui.refresh import Refresh

PER_PAGE = 64
PICKED_SCALE = 8  # the clicked image, 32 -> 256 pixels
ANY = "any"
SORTS = [("confidently wrong first", "confident"), ("lowest true-class probability first", "true_low"),
         ("random", "random")]
COMPARE = [("off", "off"), ("A right, B wrong", "a_right_b_wrong"), ("B right, A wrong", "b_right_a_wrong"),
           ("both wrong", "both_wrong")]
PER_CLASS_COLUMNS = ["class", "images", "errors", "precision %", "recall %"]


@dataclass(eq=False)
class ErrorsView:
    """The tab's components."""
    source: gr.Dropdown  # source A: a run or a saved ensemble
    split: gr.Radio
    refresh: gr.Button
    message: gr.Markdown
    confusion: gr.Plot
    per_class: gr.Dataframe
    true_class: gr.Dropdown
    predicted_class: gr.Dropdown
    sort: gr.Dropdown
    seed: gr.Number
    compare: gr.Radio
    source_b: gr.Dropdown
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
        return [self.source, self.split, self.true_class, self.predicted_class, self.sort, self.seed, self.compare,
                self.source_b]


@dataclass(eq=False)
class ErrorsTab:
    view: ErrorsView
    refresh: Refresh  # the choices of sources A and B


def select_indices(a, b, true_class, predicted_class, sort, seed, mode) -> np.ndarray:
    """The images to show: A's mistakes (filtered and sorted), or a comparison of A and B."""
    if mode != "off":
        if b is None:
            raise UserError("choose a second source (B) to compare with")
        if b.labels.shape != a.labels.shape or not np.array_equal(b.labels, a.labels):
            raise UserError("A and B were evaluated on different images (splits differ); compare sources on one split")
        chosen = analysis.compare(a.probs, b.probs, a.labels)[mode]
        keep = np.ones(len(chosen), bool)
        if true_class is not None:
            keep &= a.labels[chosen] == true_class
        if predicted_class is not None:
            keep &= analysis.predictions(a.probs)[chosen] == predicted_class
        return chosen[keep]
    return analysis.misclassified(a.probs, a.labels, true_class=true_class, predicted_class=predicted_class,
                                  sort=sort, seed=int(seed or 0))


def per_class_rows(source) -> list:
    rows = []
    for row in analysis.per_class(source.labels, source.probs, source.class_names):
        pct = lambda v: None if v is None else round(100 * v, 1)  # noqa: E731
        rows.append([row.get("name", row["class"]), row["count"], row["errors"], pct(row["precision"]),
                     pct(row["recall"])])
    return rows


def _class_value(value, names):
    return None if value in (None, ANY) else names.index(value)


class _Handlers:
    """The tab's event handlers; sources are loaded once per (source, split) and kept in `cache`."""

    def __init__(self, ctx, view: ErrorsView):
        self.store, self.room, self.cache, self.v = ctx.store, lab.Lab(ctx.store), {}, view

    def load(self, key, split):
        if not key:
            raise UserError("choose a source: a completed run or a saved ensemble")
        return sv.load_source(self.store, self.room, key, split, self.cache)

    def selection(self, key, split, true_name, predicted_name, sort, seed, mode, key_b):
        a = self.load(key, split)
        b = self.load(key_b, split) if mode != "off" and key_b else None
        indices = select_indices(a, b, _class_value(true_name, a.class_names),
                                 _class_value(predicted_name, a.class_names), sort, seed, mode)
        return a, indices

    def with_images(self, values):
        """`selection(*values)`, refused when the source's images cannot be rebuilt."""
        a, indices = self.selection(*values)
        if a.images_error:
            raise UserError(a.images_error)
        return a, indices

    def images(self, a):
        return sv.split_images(self.store, a.image_run, a.split, self.cache)

    def show(self, page_number, *values):
        """The gallery page and its count line for the current filters."""
        v = self.v
        try:
            a, indices = self.with_images(values)
            pages = gallery.page_count(len(indices), PER_PAGE)
            page_number = min(max(1, int(page_number or 1)), pages)
            if len(indices) == 0:
                return {v.gallery: [], v.page: page_number,
                        v.count: "No images match: every image of this selection is right.", v.message: ""}
            items = gallery.page(self.images(a), indices, a.probs, a.labels, a.class_names, page=page_number - 1,
                                 per_page=PER_PAGE)
        except UserError as exc:
            return {v.gallery: [], v.count: "", v.message: f"**{exc}**"}
        return {v.gallery: items, v.page: page_number,
                v.count: f"{len(indices):,} images · page {page_number} of {pages}", v.message: ""}

    def change_source(self, key, split, *rest):
        """A new source or split: confusion matrix, per-class table, class filters, then the gallery."""
        v = self.v
        try:
            a = self.load(key, split)
        except UserError as exc:
            return {v.message: f"**{exc}**", v.gallery: [], v.page: 1, v.count: ""}
        matrix = analysis.confusion_matrix(a.labels, analysis.predictions(a.probs), a.num_classes)
        accuracy = np.trace(matrix) / max(1, matrix.sum())
        figure = plots.confusion_heatmap(matrix, a.class_names,
                                         f"{a.name} on {'test' if split == 'test' else 'validation'}: "
                                         f"accuracy {100 * accuracy:.2f}%")
        names = [ANY, *a.class_names]
        return {v.confusion: figure, v.per_class: per_class_rows(a), v.true_class: gr.update(choices=names, value=ANY),
                v.predicted_class: gr.update(choices=names, value=ANY),
                **self.show(1, key, split, ANY, ANY, *rest)}

    def pick(self, page_number, key, split, true_name, predicted_name, sort, seed, mode, key_b, evt: gr.SelectData):
        # Gradio injects the event by annotation on named parameters only, hence no *values here.
        try:
            a, indices = self.selection(key, split, true_name, predicted_name, sort, seed, mode, key_b)
            position = (int(page_number or 1) - 1) * PER_PAGE + evt.index
            image = int(indices[position])
            picked, _ = gallery.page(self.images(a), [image], a.probs, a.labels, a.class_names, per_page=1,
                                     scale=PICKED_SCALE)[0]
        except (UserError, IndexError) as exc:
            return gr.skip(), gr.skip(), f"**{exc}**"
        entries = [(f"{a.name}", analysis.top5(a.probs[image], a.class_names))]
        for run_id, probs in a.members.items():
            entries.append((f"member {run_id}: {a.member_names.get(run_id, '')}",
                            analysis.top5(probs[image], a.class_names)))
        true_name = a.class_names[a.labels[image]]
        return (plots.top5_bars(entries, f"Image #{image} (true: {true_name})"),
                gr.update(value=picked, label=f"Image #{image}"), "")

    def export(self, *values):
        try:
            a, indices = self.with_images(values)
            images = self.images(a)
            path = tempfile.NamedTemporaryFile(prefix="errors-", suffix=".png", delete=False).name
            gallery.export_grid(images, indices, a.probs, a.labels, a.class_names, path)
        except UserError as exc:
            return gr.update(visible=False), f"**{exc}**"
        return gr.update(value=path, visible=True), f"Exported {min(len(indices), gallery.EXPORT_LIMIT)} images."

    def refresh(self, key, key_b):
        choices = sv.source_choices(self.store)
        values = {v for _, v in choices}
        return (gr.update(choices=choices, value=key if key in values else None),
                gr.update(choices=choices, value=key_b if key_b in values else None))


def _layout() -> ErrorsView:
    c = {}
    with gr.Row():
        c["source"] = gr.Dropdown([], label="Source A (run or saved ensemble)", elem_id="errors-source", scale=3)
        c["split"] = gr.Radio([("test", "test"), ("validation", "val")], value="test", label="Split", scale=1)
        c["refresh"] = gr.Button("Refresh sources", scale=1)
    c["message"] = gr.Markdown(elem_id="errors-message")
    with gr.Row():
        c["confusion"] = gr.Plot(label="Confusion matrix (pick a cell with the two class filters below)")
        c["per_class"] = gr.Dataframe(headers=PER_CLASS_COLUMNS, value=[], interactive=False, label="Per class")
    with gr.Row():
        c["true_class"] = gr.Dropdown([ANY], value=ANY, label="True class", elem_id="errors-true")
        c["predicted_class"] = gr.Dropdown([ANY], value=ANY, label="Predicted class", elem_id="errors-predicted")
        c["sort"] = gr.Dropdown(SORTS, value="confident", label="Order")
        c["seed"] = gr.Number(0, label="Random seed", precision=0)
    with gr.Row():
        c["compare"] = gr.Radio(COMPARE, value="off", label="Compare A with B")
        c["source_b"] = gr.Dropdown([], label="Source B", elem_id="errors-source-b")
    with gr.Row():
        c["previous"] = gr.Button("◀ Previous page", size="sm")
        c["page"] = gr.Number(1, label="Page", precision=0, minimum=1, elem_id="errors-page")
        c["next"] = gr.Button("Next page ▶", size="sm")
        c["count"] = gr.Markdown(elem_id="errors-count")
    c["gallery"] = gr.Gallery(label="Images (click one for its top-5 probabilities)", columns=8, height="auto",
                              object_fit="contain", allow_preview=False, elem_id="errors-gallery")
    with gr.Row(equal_height=False):
        c["picked"] = gr.Image(label="The image you click", interactive=False, show_label=True, height=PICKED_SCALE * 32,
                               scale=1, min_width=PICKED_SCALE * 32, elem_id="errors-picked")
        c["top5"] = gr.Plot(label="Top-5 probabilities", scale=3)
    with gr.Row():
        c["export"] = gr.Button("Export the selection as one PNG")
        c["export_file"] = gr.File(label="Exported grid", visible=False, interactive=False)
    return ErrorsView(**c)


def create_errors_tab(ctx) -> ErrorsTab:
    v = _layout()
    h = _Handlers(ctx, v)
    filters = v.filters
    show_outputs = [v.gallery, v.page, v.count, v.message]
    source_outputs = [v.confusion, v.per_class, v.true_class, v.predicted_class, v.message, v.gallery, v.page,
                      v.count]
    source_inputs = [v.source, v.split, v.sort, v.seed, v.compare, v.source_b]
    v.source.input(h.change_source, source_inputs, source_outputs, api_name="errors_source")
    v.split.input(h.change_source, source_inputs, source_outputs)
    gr.on([v.true_class.input, v.predicted_class.input, v.sort.input, v.seed.submit, v.compare.input,
           v.source_b.input], lambda *values: h.show(1, *values), filters, show_outputs, api_name="errors_page")
    v.page.submit(h.show, [v.page, *filters], show_outputs)
    v.previous.click(lambda p, *values: h.show((p or 1) - 1, *values), [v.page, *filters], show_outputs)
    v.next.click(lambda p, *values: h.show((p or 1) + 1, *values), [v.page, *filters], show_outputs)
    v.gallery.select(h.pick, [v.page, *filters], [v.top5, v.picked, v.message])
    v.export.click(h.export, filters, [v.export_file, v.message])
    refresh = Refresh(h.refresh, [v.source, v.source_b], [v.source, v.source_b])
    refresh.wire(v.refresh.click)
    return ErrorsTab(view=v, refresh=refresh)
