"""A split's map as one Plotly figure of `scattergl` points (pure: arrays in, a Figure out; no Gradio, no
store): the Errors tab's Map view and `workbench map RUN --output FILE.html` both draw this.

    points = MapPoints(coords, labels, predicted, confidence, class_names)      # label_quality: optional
    colour_options(points)                     # ["true class", "predicted class", "correct / wrong", ...]
    fig = map_figure(points, "predicted class", title="...", note="PCA: ...")

Each point's `customdata` is its image's index in the split, which a click or a box/lasso selection sends
back (the tab's bridge reads it). Colourings are a table (`COLOURINGS`): a categorical one gives one trace
per category (a legend entry each, all in one figure), a continuous one a single trace on a colour scale.

Label quality: `MapPoints.label_quality` holds cleanlab's label-quality scores (`workbench.inspect.label_quality`,
per image, higher = the given label more likely right); where a caller fills it, "label quality" is offered.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import plotly.colors
import plotly.graph_objects as go

from workbench.ensemble.calibration import softmax
from workbench.errors import UserError, choose

TRUE_CLASS, PREDICTED_CLASS, CORRECT, LABEL_QUALITY = (
    "true class",
    "predicted class",
    "correct / wrong",
    "label quality",
)
HEIGHT = 640
RIGHT_WRONG_COLOURS = {"right": "#9ab7d3", "wrong": "#d62728"}


@dataclass(eq=False)
class MapPoints:
    coords: np.ndarray  # float [N, 2]
    labels: np.ndarray  # int [N]: the given (true) class
    predicted: np.ndarray  # int [N]
    confidence: np.ndarray  # float [N]: the predicted class' probability
    class_names: list
    label_quality: np.ndarray | None = None  # float [N] in [0, 1] (the hook above), None where not computed

    def __post_init__(self):
        n = len(self.coords)
        if np.asarray(self.coords).shape != (n, 2):
            raise UserError(f"map coordinates must be [N, 2]; got {list(np.asarray(self.coords).shape)}")
        for name in ("labels", "predicted", "confidence") + (
            ("label_quality",) if self.label_quality is not None else ()
        ):
            if len(getattr(self, name)) != n:
                raise UserError(f"the map has {n} points but {len(getattr(self, name))} {name.replace('_', ' ')}")


@dataclass(frozen=True)
class Colouring:
    groups: list  # categorical: [(name, bool mask [N], colour)]; empty for a continuous colouring
    values: np.ndarray | None = None  # continuous: float [N]
    scale_title: str = ""


def _by_class(classes: np.ndarray, names: list) -> Colouring:
    palette = list(plotly.colors.qualitative.Plotly) + list(plotly.colors.qualitative.Dark24)
    return Colouring([(name, classes == k, palette[k % len(palette)]) for k, name in enumerate(names)])


COLOURINGS: dict[str, Callable[[MapPoints], Colouring]] = {
    TRUE_CLASS: lambda p: _by_class(np.asarray(p.labels), p.class_names),
    PREDICTED_CLASS: lambda p: _by_class(np.asarray(p.predicted), p.class_names),
    CORRECT: lambda p: Colouring(
        [
            (f"{name} ({int(mask.sum()):,})", mask, RIGHT_WRONG_COLOURS[name])
            for name, mask in (("right", p.predicted == p.labels), ("wrong", p.predicted != p.labels))
        ]
    ),
    LABEL_QUALITY: lambda p: Colouring([], np.asarray(p.label_quality, np.float64), "label quality"),
}


def points_from(coords, logits, labels, class_names, label_quality=None) -> MapPoints:
    """The map's points from a run's logits on the split (predicted class, its probability)."""
    probs = softmax(np.asarray(logits, np.float64))
    return MapPoints(
        np.asarray(coords, np.float32),
        np.asarray(labels, np.int64).reshape(-1),
        probs.argmax(axis=1),
        probs.max(axis=1),
        list(class_names),
        None if label_quality is None else np.asarray(label_quality, np.float64),
    )


def colour_options(points: MapPoints) -> list:
    """The colourings this map can use: label quality only where its scores were given."""
    return [name for name in COLOURINGS if name != LABEL_QUALITY or points.label_quality is not None]


def _hover(points: MapPoints, idx: np.ndarray) -> list:
    names = points.class_names
    return [
        f"#{i} · true {names[points.labels[i]]} · predicted {names[points.predicted[i]]} "
        f"({100 * points.confidence[i]:.0f}%)"
        + (f" · quality {points.label_quality[i]:.2f}" if points.label_quality is not None else "")
        for i in idx
    ]


def _trace(points: MapPoints, idx: np.ndarray, name: str, marker: dict) -> dict:
    return dict(
        type="scattergl",
        mode="markers",
        name=name,
        x=points.coords[idx, 0].tolist(),
        y=points.coords[idx, 1].tolist(),
        customdata=idx.tolist(),
        hovertext=_hover(points, idx),
        hoverinfo="text",
        marker=marker,
    )


def map_figure(points: MapPoints, colour: str, *, title: str, note: str = "", validate: bool = True) -> go.Figure:
    """All points in one figure, coloured by `colour` (one of `colour_options(points)`); `note` (say PCA and
    why) goes under the title. `validate=False` skips Plotly's property checks (a redraw per click)."""
    colour = choose("colouring", colour, colour_options(points))
    coloured = COLOURINGS[colour](points)
    size = 5 if len(points.coords) <= 5000 else 3
    if coloured.groups:
        traces = [
            _trace(points, np.flatnonzero(mask), name, dict(size=size, color=c, opacity=0.8))
            for name, mask, c in coloured.groups
            if mask.any()
        ]
    else:
        idx = np.arange(len(points.coords))
        marker = dict(
            size=size,
            color=np.asarray(coloured.values).tolist(),
            colorscale="RdYlGn",
            cmin=0.0,
            cmax=1.0,
            colorbar=dict(title=dict(text=coloured.scale_title)),
        )
        traces = [_trace(points, idx, colour, marker)]
    layout = dict(
        title=dict(text=title, x=0.01, subtitle=dict(text=note, font=dict(size=12, color="#666"))),
        template="plotly_white",
        height=HEIGHT,
        margin=dict(l=40, r=20, t=110, b=40),
        hovermode="closest",
        dragmode="select",  # a box at once; the lasso is in the toolbar
        legend=dict(orientation="h", yanchor="bottom", y=1.0, xanchor="left", x=0, itemsizing="constant"),
        xaxis=dict(showticklabels=False, zeroline=False, title=dict(text="")),
        yaxis=dict(showticklabels=False, zeroline=False, title=dict(text="")),
        uirevision=title,  # keeps the zoom when only the colouring changes
    )
    return go.Figure(data=traces, layout=layout, _validate=validate)
