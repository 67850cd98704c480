"""The Train tab's live figure: loss, accuracy and learning rate of one run against epoch, side by side."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

from workbench.constants import RunKind
from workbench.ui.plots.style import clean, empty_figure, layout_settings, unvalidated_figure, whole_steps

LIVE_PANELS = (("Loss", "loss"), ("Accuracy (%)", "accuracy (%)"), ("Learning rate", "learning rate"))
LIVE_GAP = 0.12  # between the three plots: room for each one's y tick labels and title, clear of its neighbour


def live_curves(run: dict, epochs: list[dict]) -> go.Figure:
    """Loss (train/val), accuracy (train/val, %) and learning rate against epoch, side by side.

    Built as one dict, unvalidated: the live panel redraws it every poll, and `make_subplots` plus
    Plotly's validation were ~95% of the poll's server time. tests/test_runs_tab.py validates it in full."""
    title = f"Run {run.get('id', '?')}: {run.get('name', '')}"
    if not epochs:
        return empty_figure(title, "waiting for the first epoch...")
    x = [e["epoch"] for e in epochs]

    def col(key, scale=1.0):
        return clean([None if e.get(key) is None else scale * e[key] for e in epochs])

    mode = "lines+markers" if len(epochs) <= 30 else "lines"
    styles = {"train": dict(color="#1f77b4"), "val": dict(color="#ff7f0e")}
    traces = [
        dict(
            type="scatter",
            x=x,
            y=col(key, 100.0 if c == 2 else 1.0),
            name=name,
            mode=mode,
            line=styles[group],
            legendgroup=group,
            showlegend=c == 1,
            xaxis=_axis("x", c),
            yaxis=_axis("y", c),
        )
        for key, name, group, c in (
            ("loss", "training", "train", 1),
            ("val_loss", "validation", "val", 1),
            ("accuracy", "train acc", "train", 2),
            ("val_accuracy", "val acc", "val", 2),
        )
    ]
    traces.append(
        dict(
            type="scatter",
            x=x,
            y=col("lr"),
            name="learning rate",
            mode=mode,
            line=dict(color="#2ca02c"),
            showlegend=False,
            xaxis="x3",
            yaxis="y3",
        )
    )
    width = (1 - 2 * LIVE_GAP) / 3
    # Half an epoch of room at both ends: the last point's marker is not cut by the plot's right edge.
    epoch_axis = dict(title=dict(text="epoch"), range=[min(x) - 0.5, max(x) + 0.5], **whole_steps(max(x)))
    layout: dict[str, Any] = {}
    annotations: list[dict] = []
    shapes: list[dict] = []
    for c, (heading, y_title) in enumerate(LIVE_PANELS, start=1):
        left = (c - 1) * (width + LIVE_GAP)
        layout[_axis("xaxis", c)] = dict(epoch_axis, domain=[left, left + width], anchor=_axis("y", c))
        layout[_axis("yaxis", c)] = dict(title=dict(text=y_title, standoff=4), anchor=_axis("x", c))
        annotations.append(
            dict(
                text=heading,
                x=left + width / 2,
                y=1.0,
                xref="paper",
                yref="paper",
                xanchor="center",
                yanchor="bottom",
                showarrow=False,
                font=dict(size=16),
            )
        )
    layout["yaxis3"].update(exponentformat="e", rangemode="tozero")
    spec = run.get("spec") or {}
    if run.get("kind") == RunKind.FINETUNE and spec.get("head_epochs") and spec.get("finetune_epochs"):
        start = spec["head_epochs"] + 0.5  # where phase 2 (the unfrozen backbone) starts
        shapes = [
            dict(
                type="line",
                x0=start,
                x1=start,
                y0=0,
                y1=1,
                xref=_axis("x", c),
                yref=f"{_axis('y', c)} domain",
                line=dict(dash="dot", color="#888"),
            )
            for c in (1, 2, 3)
        ]
        annotations.append(
            dict(
                text="phase 2: backbone unfrozen",
                x=start,
                xref="x",
                yref="paper",
                y=1.0,
                showarrow=False,
                xanchor="left",
                font=dict(size=10, color="#666"),
            )
        )
    # Legend under the plots: above them it covers the third subplot's title.
    layout.update(annotations=annotations, shapes=shapes)
    return unvalidated_figure(
        traces,
        layout_settings(
            title,
            legend=dict(orientation="h", yanchor="top", y=-0.28, xanchor="center", x=0.5),
            margin=dict(l=60, r=20, t=60, b=80),
            **layout,
        ),
    )


def _axis(name: str, column: int) -> str:
    """Plotly's name of the `column`th plot's axis: x, x2, x3 (and xaxis, xaxis2, ...)."""
    return name if column == 1 else f"{name}{column}"
