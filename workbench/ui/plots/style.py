"""The figures' shared look: plotly_white without its per-trace defaults, a fixed height, a title (and a
subtitle), a legend above, axes on whole steps for counts; a figure that says what is missing instead of blank axes,
and a figure built without Plotly's validation for one redrawn on every interaction."""

from __future__ import annotations

import math

import plotly.colors
import plotly.graph_objects as go
import plotly.io as pio

HEIGHT = 360
# plotly_white's layout without its per-trace-type defaults: Plotly deep-copies and validates a figure's
# template on every figure, ~28 ms for the full one against ~10 ms for this (measured per empty figure).
TEMPLATE = go.layout.Template(layout=pio.templates["plotly_white"].layout)


def layout_settings(title: str, *, height: int = HEIGHT, subtitle: str = "", **extra) -> dict:
    """Shared style; a `subtitle` (a line under the title) keeps the title short enough for a half-width figure."""
    heading = dict(text=title, x=0.01, subtitle=dict(text=subtitle, font=dict(size=12, color="#666")))
    settings = dict(
        title=heading,
        template=TEMPLATE,
        height=height,
        margin=dict(l=60, r=20, t=80 if subtitle else 60, b=50),
        hovermode="closest",
        legend=dict(orientation="h", yanchor="bottom", y=1.02, xanchor="right", x=1),
    )
    return {**settings, **extra}


def styled(fig: go.Figure, title: str, **settings) -> go.Figure:
    """The shared style on `fig`, in one layout update (each update re-validates the layout)."""
    return fig.update_layout(**layout_settings(title, **settings))


def unvalidated_figure(traces: list[dict], layout: dict) -> go.Figure:
    """A Figure built in one go without Plotly's property validation (its `_validate` switch), for a figure
    redrawn on every interaction: validation and update callbacks were four-fifths of an Ensemble slider
    move's server time. A test must build each such figure validated too, so a wrong property still fails."""
    return go.Figure(data=traces, layout=layout, _validate=False)


def empty_figure(title: str, message: str) -> go.Figure:
    """A figure that only says `message` (no runs selected, no data yet, ...)."""
    fig = go.Figure()
    fig.add_annotation(
        text=message, showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5, font=dict(size=14, color="#666")
    )
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return styled(fig, title)


def clean(values):
    return [None if v is None or (isinstance(v, float) and math.isnan(v)) else v for v in values]


def whole_steps(last) -> dict:
    """Axis settings for a count (epochs, selection steps): ticks on whole numbers only, at most ~8."""
    last = max(1, math.ceil(last or 1))
    step = next(s for s in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000) if last / s <= 8 or s == 1000)
    return dict(tick0=0 if step > 1 else 1, dtick=step, tickformat="d")


def palette() -> list[str]:
    return list(plotly.colors.qualitative.Plotly)
