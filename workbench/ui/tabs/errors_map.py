"""The Errors tab's Map view: a run's features of one split in 2-D (UMAP, or PCA where UMAP is too slow, said
on the figure), one Plotly `scattergl` figure coloured by true class, predicted class, correct/wrong or label
quality. Clicking a point shows its image and top-5; a box or lasso selection fills the gallery.

Gradio's Plot reports no clicks, so the page bridges them (`BRIDGE_JS`, installed by the Draw button): a
timer binds Plotly's `plotly_click` and `plotly_selected` events on the map's div (once per div; Plotly's
`react` keeps them across redraws) and writes `{"kind", "points", "nonce"}` as JSON into a hidden textbox,
whose change event reaches `_Handlers.event`. Each point's `customdata` is its image's index in the split.
The server-side work of a click is `_Handlers.pick` on data held in memory (bench/data_quality_features.py
times it: target < 300 ms).
"""

import json
from dataclasses import dataclass
from typing import Any

import gradio as gr
import numpy as np

from workbench.ensemble import lab
from workbench.errors import UserError
from workbench.inspect import analysis, gallery, projection
from workbench.inspect import label_quality as lq
from workbench.inspect import sources as sv
from workbench.predict import features as wf
from workbench.predict import maps
from workbench.predict.models import ModelCache
from workbench.ui import plots, widgets
from workbench.ui.widgets import LAST
from workbench.views import data_map as dm

SELECTION_SHOWN = 120  # images of a box/lasso selection put in the gallery
PICKED_SCALE = 8
SPLITS = [("test", "test"), ("validation", "val"), ("training (all 50,000)", "train")]
METHODS = [("auto", "auto"), ("UMAP", "umap"), ("PCA", "pca")]
MAPS_KEPT = 3

BRIDGE_JS = """
() => {
  if (window.__workbenchMapBridge) return;
  window.__workbenchMapBridge = setInterval(() => {
    const plot = document.querySelector('#errors-map-plot .js-plotly-plot');
    if (!plot || !plot.on || plot.__workbenchBound) return;
    plot.__workbenchBound = true;
    const send = (kind, points) => {
      const box = document.querySelector('#errors-map-event textarea, #errors-map-event input');
      if (!box) return;
      const setter = Object.getOwnPropertyDescriptor(Object.getPrototypeOf(box), 'value').set;
      setter.call(box, JSON.stringify({kind, points, nonce: Date.now()}));
      box.dispatchEvent(new Event('input', {bubbles: true}));
    };
    const indices = (event) => ((event && event.points) || []).map((p) => p.customdata).filter((i) => i !== undefined);
    plot.on('plotly_click', (event) => send('click', indices(event).slice(0, 1)));
    plot.on('plotly_selected', (event) => { if (event) send('select', indices(event)); });
  }, 300);
}
"""


@dataclass(eq=False)
class MapView:
    split: gr.Radio
    colour: gr.Dropdown
    method: gr.Dropdown
    draw: gr.Button
    message: gr.Markdown
    plot: gr.Plot
    event: gr.Textbox  # hidden: the page's bridge writes clicks and selections here
    drawn: gr.State  # this browser's drawn map: [source key, split, method] (clicks refer to it, not the fields)
    picked: gr.Image
    top5: gr.Plot
    count: gr.Markdown
    selection: gr.Gallery


@dataclass(eq=False)
class Shown:
    """A drawn map, held for clicks: its points, probabilities and images."""

    run: dict
    data: maps.MapData
    points: dm.MapPoints
    probs: np.ndarray
    images: np.ndarray


def label_quality_scores(store, run_id: int, split: str, count: int, cache: dict) -> np.ndarray | None:
    """Each image's label-quality score on the run's `split` (cleanlab's, in [0, 1], higher: the given label
    more likely right; computed once and cached in the store), for the "label quality" colouring. None for the
    training split (a run's own training images are not out-of-sample) or where the scores do not line up
    with the map's `count` points."""
    if split == "train":
        return None
    issues = lq.label_issues(store, lab.Lab(store), f"run:{run_id}", split, cache)
    return issues.score if len(issues.score) == count else None


class _Handlers:
    def __init__(self, ctx, view: MapView, cache: dict):
        self.store, self.v, self.cache = ctx.store, view, cache
        self.models = ModelCache(ctx.store, size=1)
        self.shown: dict[tuple, Shown] = {}

    def load(self, key, split, method, progress=None, compute: bool = True) -> Shown:
        kind, number = sv.parse_key(key) if key else (None, None)
        if kind != "run":
            raise UserError(
                "a map needs one model's features: choose a run as source A "
                "(not an ensemble or a cross-validation request)"
            )
        wanted = (int(number), wf.check_split(split), method)
        if wanted not in self.shown:
            if not compute:
                raise UserError("draw the map first")
            run_id = int(number)
            data = maps.split_map(
                self.store, run_id, split, models=self.models, cache=self.cache, method=method, progress=progress
            )
            images, _ = wf.split_images(self.store, run_id, split, self.cache)
            points = dm.points_from(
                data.projection.coords,
                data.features.logits,
                data.features.labels,
                maps.class_names(self.store, run_id, data),
                label_quality_scores(self.store, run_id, split, len(data.projection.coords), self.cache),
            )
            while len(self.shown) >= MAPS_KEPT:
                self.shown.pop(next(iter(self.shown)))
            self.shown[wanted] = Shown(self.store.get_run(run_id), data, points, data.probs, images)
        return self.shown[wanted]

    def drawn_map(self, drawn) -> Shown:
        """The map this browser drew last (`MapView.drawn`: [key, split, method]), from memory."""
        key, split, method = drawn or (None, None, None)
        return self.load(key, split, method, compute=False)

    def figure(self, shown: Shown, colour: str):
        title, note = maps.describe(shown.run, shown.data)
        return dm.map_figure(shown.points, colour, title=title, note=note, validate=False)

    # Gradio injects a request's progress bar through this default
    def draw(self, key, split, colour, method, progress=gr.Progress()):  # noqa: B008
        v = self.v

        def report(done, total):
            progress(done / max(1, total), desc=f"features: {done:,} / {total:,} images")

        try:
            shown = self.load(key, split, method, report)
            options = dm.colour_options(shown.points)
            colour = colour if colour in options else options[0]
            fig = self.figure(shown, colour)
        except UserError as exc:
            return {v.message: f"**{exc}**"}
        p = shown.data.projection
        took = "read from the store's files" if shown.data.cached else f"{p.method.upper()} took {p.seconds:.1f} s"
        return {
            v.plot: fig,
            v.drawn: [key, split, method],
            v.colour: gr.update(choices=options, value=colour),
            v.message: f"{len(shown.points.labels):,} images · {took}. Click a point for its image; drag a box "
            "(or the lasso in the toolbar) to fill the gallery.",
        }

    def recolour(self, drawn, colour):
        try:
            return {self.v.plot: self.figure(self.drawn_map(drawn), colour)}
        except UserError:
            return {}  # nothing drawn yet: the colour applies at the next draw

    def pick(self, shown: Shown, index: int):
        """The clicked image, enlarged, and its top-5 probabilities (the click's server-side work)."""
        if not 0 <= index < len(shown.images):
            raise UserError(f"no image {index} in this split ({len(shown.images):,} images)")
        names, labels = shown.points.class_names, shown.data.features.labels
        picked, _ = gallery.page(shown.images, [index], shown.probs, labels, names, per_page=1, scale=PICKED_SCALE)[0]
        title = f"Image #{index} (true: {names[labels[index]]})"
        return picked, plots.top5_bars([(shown.run["name"], analysis.top5(shown.probs[index], names))], title)

    def event(self, text, drawn):
        v = self.v
        try:
            message = json.loads(text or "{}")
            points = [int(i) for i in message.get("points", [])]
        except (ValueError, TypeError, AttributeError):
            return {}
        try:
            shown = self.drawn_map(drawn)
            if message.get("kind") == "click" and points:
                image, figure = self.pick(shown, points[0])
                return {v.picked: gr.update(value=image, label=f"Image #{points[0]}"), v.top5: figure}
            chosen = np.asarray([i for i in points if 0 <= i < len(shown.images)], np.int64)
            data = shown.data.features
            items = gallery.page(
                shown.images, chosen, shown.probs, data.labels, shown.points.class_names, per_page=SELECTION_SHOWN
            )
        except UserError as exc:
            return {v.message: f"**{exc}**"}
        more = f" (the first {SELECTION_SHOWN} shown)" if len(chosen) > SELECTION_SHOWN else ""
        return {v.selection: items, v.count: f"{len(chosen):,} images selected{more}"}


def create_map_view(ctx, source: gr.Dropdown, cache: dict) -> MapView:
    """The view's components and events, under the Errors tab's source A (`source`); `cache` is the tab's
    datasets-and-images cache (`workbench.inspect.sources`)."""
    c: dict[str, Any] = {}
    with gr.Row():
        c["split"] = gr.Radio(SPLITS, value="test", label="Split to map", scale=2)
        c["colour"] = gr.Dropdown(
            [dm.TRUE_CLASS, dm.PREDICTED_CLASS, dm.CORRECT], value=dm.TRUE_CLASS, label="Colour by"
        )
        c["method"] = gr.Dropdown(
            METHODS,
            value="auto",
            label="Projection",
            elem_id="errors-map-method",
            info=f"auto: UMAP up to {projection.UMAP_LIMIT:,} images, else PCA",
        )
        c["draw"] = gr.Button("Draw the map", variant="primary")
    c["message"] = gr.Markdown(elem_id="errors-map-message")
    c["plot"] = gr.Plot(label="Map of the split's features", elem_id="errors-map-plot")
    c["event"] = gr.Textbox(visible="hidden", elem_id="errors-map-event")
    c["drawn"] = gr.State(None)
    c["picked"], c["top5"] = widgets.picked_row("The point you click", "errors-map-picked", PICKED_SCALE)
    c["count"] = gr.Markdown(elem_id="errors-map-count")
    c["selection"] = gr.Gallery(
        label="The selected images", columns=8, height="auto", allow_preview=False, elem_id="errors-map-gallery"
    )
    v = MapView(**c)
    h = _Handlers(ctx, v, cache)
    inputs = [source, v.split, v.colour, v.method]
    v.draw.click(h.draw, inputs, [v.plot, v.drawn, v.colour, v.message]).then(None, js=BRIDGE_JS)
    v.colour.input(h.recolour, [v.drawn, v.colour], [v.plot], trigger_mode=LAST)
    v.event.change(h.event, [v.event, v.drawn], [v.picked, v.top5, v.message, v.selection, v.count])
    v.plot.change(None, js=BRIDGE_JS)
    source.input(lambda key: f"Press **Draw the map** for {key or 'a run'}." if key else "", [source], [v.message])
    return v
