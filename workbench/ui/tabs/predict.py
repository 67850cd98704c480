"""Predict tab: a completed run or a saved ensemble on uploaded pictures or chosen test images: top-5
classes with probabilities (an ensemble's and each member's) and a class-activation map per model.

The work is `workbench.predict` (no Gradio there). Uploads arrive as files Gradio wrote into its own
temporary folder; they are read (checked before decoding: `workbench.predict.images`) and never copied;
the maps go back as arrays, which Gradio serves through its own file route, so the tab works the same
through a share link with a login as on localhost.
"""

import logging
from dataclasses import dataclass
from typing import Any

import gradio as gr

from workbench.errors import UserError
from workbench.predict.images import MAX_IMAGES, read_uploads
from workbench.predict.service import Predictor, parse_indices
from workbench.ui import plots, widgets
from workbench.ui.refresh import Refresh
from workbench.ui.widgets import LAST

log = logging.getLogger(__name__)
TABLE_COLUMNS = ["picture", "true class", "source", "1st", "2nd", "3rd", "4th", "5th"]
ANY_COUNT = 8  # test images picked per class
NOTHING_YET = (
    "**Nothing to predict with yet**: this tab uses completed runs that kept a checkpoint, and saved "
    "ensembles. Train one in the Train tab (its **Fast recipe** button gives a good model in about 15 "
    "minutes on a CPU), then press Refresh."
)


@dataclass(eq=False)
class PredictView:
    source: gr.Dropdown
    empty: gr.Markdown  # shown while there is nothing to predict with, saying how to get something
    refresh: gr.Button
    uploads: gr.File
    predict_uploads: gr.Button
    test_class: gr.Dropdown
    test_indices: gr.Textbox
    pick: gr.Button
    predict_test: gr.Button
    message: gr.Markdown
    gallery: gr.Gallery
    top5: gr.Plot
    table: gr.Dataframe
    shown: gr.State  # per gallery item: (title, [(label, top-5 pairs)]) of its picture


@dataclass(eq=False)
class PredictTab:
    view: PredictView
    refresh: Refresh  # the source choices


def _percent(pair) -> str:
    name, probability = pair
    return f"{name} {100 * probability:.1f}%"


def result_outputs(results, refusals=()) -> tuple:
    """(gallery items, table rows, per-item top-5 state, message) of a list of Predictions."""
    items, rows, shown = [], [], []
    for result in results:
        entries = result.top5()
        title = result.picture.name + (f" (true: {result.true_class})" if result.true_class else "")
        for label, rgb in result.overlays:
            items.append((rgb, f"{result.picture.name} · {label}"))
            shown.append((title, entries))
        for label, pairs in entries:
            rows.append(
                [
                    result.picture.name,
                    result.true_class or "",
                    label,
                    *[_percent(p) for p in pairs],
                    *[""] * (5 - len(pairs)),
                ]
            )
    lines = [f"⚠️ {text}" for text in refusals]
    if results:
        lines.append(f"{len(results)} picture(s) predicted; click a map for its top-5 bars.")
    return items, rows, shown, "\n\n".join(lines)


class _Handlers:
    def __init__(self, ctx, view: PredictView):
        self.predictor, self.v = Predictor(ctx.store), view

    def _shown(self, results, refusals=()):
        v = self.v
        items, rows, shown, message = result_outputs(results, refusals)
        figure = (
            plots.top5_bars(shown[0][1], shown[0][0])
            if shown
            else plots.empty_figure("Top-5 probabilities", "no picture predicted")
        )
        return {v.gallery: items, v.table: rows, v.shown: shown, v.message: message, v.top5: figure}

    def _failed(self, exc):
        if not isinstance(exc, UserError):
            log.exception("Predict tab failed")
            exc = f"Something went wrong ({type(exc).__name__}: {exc}); see the server log."
        return {self.v.message: f"⚠️ **{exc}**"}

    @staticmethod
    def _key(key):
        if not key:
            raise UserError("choose a completed run or a saved ensemble first")
        return key

    def uploads(self, key, files):
        try:
            key = self._key(key)
            paths = [getattr(f, "name", f) for f in (files or [])]
            if not paths:
                raise UserError("upload one or more pictures first (any size; PNG, JPEG, GIF, BMP, WebP...)")
            pictures, refusals = read_uploads(paths, self.predictor.image_size(key))
            results = self.predictor.predict(key, pictures) if pictures else []
            return {**self._shown(results, refusals)}
        except Exception as exc:
            return self._failed(exc)

    def test_images(self, key, text):
        try:
            key = self._key(key)
            indices = parse_indices(text)
            if not indices:
                raise UserError("give test image indices (e.g. 0, 7, 40-43) or pick a class")
            pictures, true = self.predictor.test_images(key, indices)
            return self._shown(self.predictor.predict(key, pictures, true))
        except Exception as exc:
            return self._failed(exc)

    def pick_class(self, key, class_name, seed):
        try:
            indices = self.predictor.class_indices(self._key(key), class_name, ANY_COUNT, seed)
            return {
                self.v.test_indices: ", ".join(map(str, indices)),
                self.v.message: "",
                self.v.pick: gr.update(value=f"Pick {ANY_COUNT} other {class_name} images"),
            }
        except Exception as exc:
            return self._failed(exc)

    def source_changed(self, key):
        """The classes of the chosen source, for picking test images by class."""
        if not key:
            return {self.v.test_class: gr.update(choices=[], value=None)}
        try:
            names = self.predictor.class_names(key)
        except Exception as exc:
            return self._failed(exc)
        return {self.v.test_class: gr.update(choices=names, value=names[0]), self.v.message: ""}

    @staticmethod
    def select(shown, evt: gr.SelectData):
        if not shown or evt.index is None or evt.index >= len(shown):
            return gr.skip()
        title, entries = shown[evt.index]
        return plots.top5_bars(entries, title)

    def refresh(self, key):
        choices = self.predictor.choices()
        return (
            gr.update(choices=choices, value=key if key in {v for _, v in choices} else None),
            gr.update(visible=not choices),
        )


def _layout() -> PredictView:
    c: dict[str, Any] = {}
    with gr.Row():
        c["source"] = gr.Dropdown(
            [],
            label="Run or saved ensemble",
            elem_id="predict-source",
            scale=4,
            info="completed runs with a checkpoint, and saved ensembles",
        )
        c["refresh"] = gr.Button("Refresh", scale=1)
    c["empty"] = gr.Markdown(NOTHING_YET, visible=False, elem_id="predict-empty")
    with gr.Row(equal_height=False):
        with gr.Column(scale=2, min_width=320):
            c["uploads"] = gr.File(
                label=f"Your pictures (up to {MAX_IMAGES}, any size)",
                file_count="multiple",
                file_types=["image"],
                type="filepath",
                elem_id="predict-uploads",
                height=140,
            )
            c["predict_uploads"] = gr.Button(
                "Predict the uploaded pictures", variant="primary", elem_id="predict-uploads-button"
            )
            gr.Markdown(
                "Each picture's centre square is resized as the run's images were.\n\n"
                "**Or test images** of the run's dataset, by index or class:"
            )
            with gr.Row():
                c["test_class"] = gr.Dropdown([], label="Class", scale=2, min_width=120)
                c["pick"] = gr.Button(f"Pick {ANY_COUNT} of this class", scale=2, min_width=120)
            c["test_indices"] = gr.Textbox(
                label="Test image indices", placeholder="0, 7, 40-43", elem_id="predict-indices"
            )
            c["predict_test"] = gr.Button("Predict these test images", elem_id="predict-test-button")
        with gr.Column(scale=5):
            c["message"] = gr.Markdown(elem_id="predict-message")
            c["gallery"] = widgets.thumbnails(
                "Class-activation maps (Grad-CAM of the top-1 class; click one for its top-5)",
                "predict-gallery",
                columns=4,
            )
            c["top5"] = gr.Plot(
                plots.empty_figure("Top-5 probabilities", "no picture predicted"),
                label="Top-5 probabilities",
                elem_id="predict-top5",
            )
    c["table"] = gr.Dataframe(
        headers=TABLE_COLUMNS,
        value=[],
        interactive=False,
        wrap=True,
        label="Every picture's top-5 (an ensemble: the ensemble, then each member)",
        elem_id="predict-table",
    )
    c["shown"] = gr.State([])
    return PredictView(**c)


def create_predict_tab(ctx) -> PredictTab:
    v = _layout()
    h = _Handlers(ctx, v)
    shown = [v.gallery, v.table, v.shown, v.message, v.top5]
    v.predict_uploads.click(h.uploads, [v.source, v.uploads], shown, api_name="predict_uploads")
    v.predict_test.click(h.test_images, [v.source, v.test_indices], shown, api_name="predict_test")
    v.test_indices.submit(h.test_images, [v.source, v.test_indices], shown)
    seed = gr.State(0)
    v.pick.click(lambda s: s + 1, seed, seed, show_progress="hidden").then(
        h.pick_class, [v.source, v.test_class, seed], [v.test_indices, v.message, v.pick]
    )
    v.source.input(h.source_changed, v.source, [v.test_class, v.message], trigger_mode=LAST)
    v.test_class.input(
        lambda name: gr.update(value=f"Pick {ANY_COUNT} of this class"), v.test_class, v.pick, show_progress="hidden"
    )
    v.gallery.select(h.select, v.shown, v.top5, api_visibility="private")
    refresh = Refresh(h.refresh, [v.source], [v.source, v.empty])
    refresh.wire(v.refresh.click)
    return PredictTab(view=v, refresh=refresh)
