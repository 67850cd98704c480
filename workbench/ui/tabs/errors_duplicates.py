"""The Errors tab's Near-duplicates view: each test image beside its nearest training image by the run's
penultimate-layer features (cosine similarity), the pairs at or above an adjustable threshold, their count,
and the run's test accuracy on all test images and on those without a near-duplicate (ciFAIR's figure).

The features are computed once per run (minutes for 60,000 images on a CPU) and kept in the store's files
(`workbench.predict.maps.near_duplicates`); moving the threshold only re-filters the pairs in memory.
"""

from dataclasses import dataclass
from typing import Any

import gradio as gr
import numpy as np
from PIL import Image

from workbench.errors import UserError
from workbench.inspect import duplicates as dup
from workbench.inspect import gallery
from workbench.inspect import sources as sv
from workbench.predict import features as wf
from workbench.predict import maps
from workbench.predict.models import ModelCache
from workbench.ui import widgets
from workbench.ui.widgets import LAST

PER_PAGE = 24
SCALE = 3  # 32 -> 96 pixels per image
GAP = 6  # white pixels between the test image and its training image
REPORTS_KEPT = 2  # runs whose nearest-neighbour results stay in memory
# The pairs (2:1 tiles) with their whole caption under them, pixels sharp, as the Errors gallery's tiles; the
# Map view's selection gallery and clicked image alike (the app adds this to its CSS).
CSS = """
#errors-duplicates img, #errors-map-gallery img, #errors-map-picked img { image-rendering: pixelated; }
#errors-duplicates .thumbnail-item, #errors-map-gallery .thumbnail-item {
  aspect-ratio: auto; height: auto; display: flex; flex-direction: column; }
#errors-duplicates .thumbnail-item img { aspect-ratio: 2 / 1; height: auto; }
#errors-map-gallery .thumbnail-item img { aspect-ratio: 1 / 1; height: auto; }
#errors-duplicates .caption-label, #errors-map-gallery .caption-label { position: static; max-width: none;
  white-space: normal; overflow: visible; text-overflow: clip; text-align: left; }
#errors-duplicates .grid-container, #errors-map-gallery .grid-container { padding-top: 30px; }
"""


@dataclass(eq=False)
class DuplicatesView:
    threshold: gr.Slider
    find: gr.Button
    summary: gr.Markdown
    previous: gr.Button
    page: gr.Number
    next: gr.Button
    pairs: gr.Gallery


def pair_image(test_image: np.ndarray, train_image: np.ndarray, scale: int = SCALE) -> Image.Image:
    """The test image and its training image side by side, enlarged (nearest neighbour), a white gap between."""
    left, right = (np.repeat(np.repeat(im, scale, axis=0), scale, axis=1) for im in (test_image, train_image))
    gap = np.full((left.shape[0], GAP, 3), 255, np.uint8)
    return Image.fromarray(np.concatenate([left, gap, right], axis=1).astype(np.uint8))


def summary_text(report: maps.DuplicateReport, threshold: float) -> str:
    acc = report.accuracy(threshold)
    pct = lambda v: "–" if v is None else f"{100 * v:.2f}%"  # noqa: E731
    n_train = len(report.train_labels)
    lines = [
        f"**{acc['duplicates']:,} of {acc['images']:,} test images** have a training image at cosine similarity "
        f"≥ {threshold:.3f} (nearest of all {n_train:,} official training images; the run's features).",
        f"Test accuracy of run {report.run_id} (plain logits): **{pct(acc['full'])}** on all {acc['images']:,} · "
        f"**{pct(acc['clean'])}** on the {acc['clean_images']:,} without a near-duplicate (it gets "
        f"{acc['duplicates_right']:,} of the {acc['duplicates']:,} duplicates right).",
    ]
    if acc["duplicates"]:
        lines.append(
            f"{report.label_mismatches(threshold):,} of the pairs carry different labels (a wrong label on one "
            "side, or not a duplicate after all)."
        )
    return "\n\n".join(lines)


class _Handlers:
    def __init__(self, ctx, view: DuplicatesView, cache: dict):
        self.store, self.v, self.cache = ctx.store, view, cache
        self.models = ModelCache(ctx.store, size=1)
        self.reports: dict[int, maps.DuplicateReport] = {}

    def run_of(self, key) -> int:
        kind, number = sv.parse_key(key) if key else (None, None)
        if kind != "run":
            raise UserError(
                "near-duplicates need one model's features: choose a run as source A "
                "(not an ensemble or a cross-validation request)"
            )
        return int(number)

    def report(self, run_id: int, progress=None) -> maps.DuplicateReport:
        if run_id not in self.reports:
            found = maps.near_duplicates(self.store, run_id, models=self.models, cache=self.cache, progress=progress)
            while len(self.reports) >= REPORTS_KEPT:
                self.reports.pop(next(iter(self.reports)))
            self.reports[run_id] = found
        return self.reports[run_id]

    def show(self, key, threshold, page_number, compute: bool = False, progress=None):
        v = self.v
        try:
            run_id = self.run_of(key)
            threshold = dup.check_threshold(threshold)
            if run_id not in self.reports and not compute:
                return {v.summary: "Press **Find near-duplicates** (features are computed once per run).", v.pairs: []}
            report = self.report(run_id, progress)
            train_images, _ = wf.split_images(self.store, run_id, "train", self.cache)
            test_images, _ = wf.split_images(self.store, run_id, "test", self.cache)
        except UserError as exc:
            return {v.summary: f"**{exc}**", v.pairs: []}
        pairs = report.pairs(threshold)
        pages = gallery.page_count(len(pairs), PER_PAGE)
        page_number = min(max(1, int(page_number or 1)), pages)
        items, names = [], report.class_names
        for i in pairs[(page_number - 1) * PER_PAGE : page_number * PER_PAGE]:
            j = int(report.match.index[i])
            caption = (
                f"{report.match.similarity[i]:.3f} · test #{i} {names[report.test_labels[i]]} ↔ "
                f"train #{j} {names[report.train_labels[j]]}"
            )
            items.append((pair_image(test_images[i], train_images[j]), caption))
        text = summary_text(report, threshold) + f"\n\nPairs, most similar first · page {page_number} of {pages}"
        return {v.summary: text, v.pairs: items, v.page: page_number}

    # Gradio injects a request's progress bar through this default
    def find(self, key, threshold, progress=gr.Progress()):  # noqa: B008
        def report(done, total):
            progress(done / max(1, total), desc=f"features: {done:,} / {total:,} images")

        return self.show(key, threshold, 1, compute=True, progress=report)


def create_duplicates_view(ctx, source: gr.Dropdown, cache: dict) -> DuplicatesView:
    """The view's components and events, under the Errors tab's source A (`source`); `cache` is the tab's
    datasets-and-images cache (`workbench.inspect.sources`)."""
    c: dict[str, Any] = {}
    gr.Markdown(
        "Each test image beside its most similar training image by the run's penultimate-layer features. "
        "Near-duplicates inflate test accuracy (Barz & Denzler 2020, ciFAIR): the figure without them is below."
    )
    with gr.Row():
        c["threshold"] = gr.Slider(
            0.80,
            1.0,
            value=dup.DEFAULT_THRESHOLD,
            step=0.005,
            label="Cosine similarity threshold",
            scale=3,
            elem_id="errors-duplicates-threshold",
        )
        c["find"] = gr.Button("Find near-duplicates", variant="primary", scale=1)
    c["summary"] = gr.Markdown(elem_id="errors-duplicates-summary")
    with gr.Row():
        pager = widgets.pager()
        c.update(previous=pager.previous, page=pager.number, next=pager.next)
    c["pairs"] = widgets.thumbnails(
        "Test image (left) · its nearest training image (right) · similarity", "errors-duplicates", columns=6
    )
    v = DuplicatesView(**c)
    h = _Handlers(ctx, v, cache)
    outputs = [v.summary, v.pairs, v.page]
    v.find.click(h.find, [source, v.threshold], outputs)
    v.threshold.release(lambda key, t: h.show(key, t, 1), [source, v.threshold], outputs)
    source.input(lambda key, t: h.show(key, t, 1), [source, v.threshold], outputs, trigger_mode=LAST)
    pager.wire(lambda page, key, t: h.show(key, t, page), [source, v.threshold], outputs)
    return v
