"""Errors tab: which images a run or a saved ensemble gets wrong, by confusion cell and confidence,
and where two sources disagree. Predictions come from stored logits; images are rebuilt from the
run's dataset and checked against the stored labels' fingerprint (`workbench.inspect.sources`)."""
import tempfile

import gradio as gr
import numpy as np

from workbench.inspect import analysis, gallery
from workbench.ensemble import lab
from workbench.inspect import sources as sv
from workbench.errors import UserError
from workbench.ui import plots

PER_PAGE = 64
ANY = "any"
SORTS = [("confidently wrong first", "confident"), ("lowest true-class probability first", "true_low"),
         ("random", "random")]
COMPARE = [("off", "off"), ("A right, B wrong", "a_right_b_wrong"), ("B right, A wrong", "b_right_a_wrong"),
           ("both wrong", "both_wrong")]
PER_CLASS_COLUMNS = ["class", "images", "errors", "precision %", "recall %"]


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


def create_errors_tab(ctx) -> dict:
    room = lab.Lab(ctx.store)
    cache = {}
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
    c["top5"] = gr.Plot(label="Top-5 probabilities")
    with gr.Row():
        c["export"] = gr.Button("Export the selection as one PNG")
        c["export_file"] = gr.File(label="Exported grid", visible=False, interactive=False)
    filters = [c["source"], c["split"], c["true_class"], c["predicted_class"], c["sort"], c["seed"],
               c["compare"], c["source_b"]]

    def load(key, split):
        if not key:
            raise UserError("choose a source: a completed run or a saved ensemble")
        return sv.load_source(ctx.store, room, key, split, cache)

    def class_value(value, names):
        return None if value in (None, ANY) else names.index(value)

    def selection(key, split, true_name, predicted_name, sort, seed, mode, key_b):
        a = load(key, split)
        b = load(key_b, split) if mode != "off" and key_b else None
        indices = select_indices(a, b, class_value(true_name, a.class_names),
                                 class_value(predicted_name, a.class_names), sort, seed, mode)
        return a, indices

    def show(page_number, *values):
        """The gallery page and its count line for the current filters."""
        try:
            a, indices = selection(*values)
            if a.images_error:
                raise UserError(a.images_error)
            pages = gallery.page_count(len(indices), PER_PAGE)
            page_number = min(max(1, int(page_number or 1)), pages)
            if len(indices) == 0:
                return [], page_number, "No images match: every image of this selection is right.", ""
            images = sv.split_images(ctx.store, a.image_run, a.split, cache)
            items = gallery.page(images, indices, a.probs, a.labels, a.class_names, page=page_number - 1,
                                 per_page=PER_PAGE)
        except UserError as exc:
            return [], gr.skip(), "", f"**{exc}**"
        return items, page_number, f"{len(indices):,} images · page {page_number} of {pages}", ""

    show_outputs = [c["gallery"], c["page"], c["count"], c["message"]]

    def change_source(key, split, *rest):
        """A new source or split: confusion matrix, per-class table, class filters, then the gallery."""
        try:
            a = load(key, split)
        except UserError as exc:
            return (gr.skip(), gr.skip(), gr.skip(), gr.skip(), f"**{exc}**", [], 1, "")
        matrix = analysis.confusion_matrix(a.labels, analysis.predictions(a.probs), a.num_classes)
        accuracy = np.trace(matrix) / max(1, matrix.sum())
        figure = plots.confusion_heatmap(matrix, a.class_names,
                                         f"{a.name} on {'test' if split == 'test' else 'validation'}: "
                                         f"accuracy {100 * accuracy:.2f}%")
        names = [ANY, *a.class_names]
        items, page, count, message = show(1, key, split, ANY, ANY, *rest)
        return (figure, per_class_rows(a), gr.update(choices=names, value=ANY), gr.update(choices=names, value=ANY),
                message, items, page, count)

    source_outputs = [c["confusion"], c["per_class"], c["true_class"], c["predicted_class"], c["message"],
                      c["gallery"], c["page"], c["count"]]
    rest = [c["sort"], c["seed"], c["compare"], c["source_b"]]
    c["source"].input(change_source, [c["source"], c["split"], *rest], source_outputs, api_name="errors_source")
    c["split"].input(change_source, [c["source"], c["split"], *rest], source_outputs)
    gr.on([c["true_class"].input, c["predicted_class"].input, c["sort"].input, c["seed"].submit, c["compare"].input,
           c["source_b"].input], lambda *v: show(1, *v), filters, show_outputs, api_name="errors_page")
    c["page"].submit(show, [c["page"], *filters], show_outputs)
    c["previous"].click(lambda p, *v: show((p or 1) - 1, *v), [c["page"], *filters], show_outputs)
    c["next"].click(lambda p, *v: show((p or 1) + 1, *v), [c["page"], *filters], show_outputs)

    def pick(page_number, key, split, true_name, predicted_name, sort, seed, mode, key_b, evt: gr.SelectData):
        # Gradio injects the event by annotation on named parameters only, hence no *values here.
        try:
            a, indices = selection(key, split, true_name, predicted_name, sort, seed, mode, key_b)
            position = (int(page_number or 1) - 1) * PER_PAGE + evt.index
            image = int(indices[position])
        except (UserError, IndexError) as exc:
            return gr.skip(), f"**{exc}**"
        entries = [(f"{a.name}", analysis.top5(a.probs[image], a.class_names))]
        for run_id, probs in a.members.items():
            entries.append((f"member {run_id}: {a.member_names.get(run_id, '')}", analysis.top5(probs[image], a.class_names)))
        true_name = a.class_names[a.labels[image]]
        return plots.top5_bars(entries, f"Image #{image} (true: {true_name})"), ""

    c["gallery"].select(pick, [c["page"], *filters], [c["top5"], c["message"]])

    def export(*values):
        try:
            a, indices = selection(*values)
            if a.images_error:
                raise UserError(a.images_error)
            images = sv.split_images(ctx.store, a.image_run, a.split, cache)
            path = tempfile.NamedTemporaryFile(prefix="errors-", suffix=".png", delete=False).name
            gallery.export_grid(images, indices, a.probs, a.labels, a.class_names, path)
        except UserError as exc:
            return gr.update(visible=False), f"**{exc}**"
        return gr.update(value=path, visible=True), f"Exported {min(len(indices), gallery.EXPORT_LIMIT)} images."

    c["export"].click(export, filters, [c["export_file"], c["message"]])

    def refresh(key, key_b):
        choices = sv.source_choices(ctx.store)
        values = {v for _, v in choices}
        return (gr.update(choices=choices, value=key if key in values else None),
                gr.update(choices=choices, value=key_b if key_b in values else None))

    c["refresh"].click(refresh, [c["source"], c["source_b"]], [c["source"], c["source_b"]])
    c.update(refresh_fn=refresh, refresh_inputs=[c["source"], c["source_b"]],
             refresh_outputs=[c["source"], c["source_b"]], show_fn=show, change_source_fn=change_source)
    return c
