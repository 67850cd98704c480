"""Plotly figures shared by the tabs: pure functions from store rows and arrays to a Figure (and the
confusion matrix as a styled table, whose cells Gradio can report clicks on).

No Gradio here. Every figure uses plotly_white's look, a fixed height, a title, axis titles
and a legend; an empty input gives a figure that says what is missing instead of blank axes.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import plotly.colors
import plotly.graph_objects as go
import plotly.io as pio
from plotly.subplots import make_subplots

from workbench.constants import RunKind, RunStatus
from workbench.views import runs as rd

HEIGHT = 360
# plotly_white's layout without its per-trace-type defaults: Plotly deep-copies and validates a figure's
# template on every figure, ~28 ms for the full one against ~10 ms for this (measured per empty figure).
TEMPLATE = go.layout.Template(layout=pio.templates["plotly_white"].layout)


def _layout_settings(title: str, *, height: int = HEIGHT, subtitle: str = "", **extra) -> dict:
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


def _layout(fig: go.Figure, title: str, **settings) -> go.Figure:
    """The shared style on `fig`, in one layout update (each update re-validates the layout)."""
    return fig.update_layout(**_layout_settings(title, **settings))


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
    return _layout(fig, title)


def _clean(values):
    return [None if v is None or (isinstance(v, float) and math.isnan(v)) else v for v in values]


def whole_steps(last) -> dict:
    """Axis settings for a count (epochs, selection steps): ticks on whole numbers only, at most ~8."""
    last = max(1, math.ceil(last or 1))
    step = next(s for s in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000) if last / s <= 8 or s == 1000)
    return dict(tick0=0 if step > 1 else 1, dtick=step, tickformat="d")


# -- Train tab -----------------------------------------------------------------------------------
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
        return _clean([None if e.get(key) is None else scale * e[key] for e in epochs])

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
        _layout_settings(
            title,
            legend=dict(orientation="h", yanchor="top", y=-0.28, xanchor="center", x=0.5),
            margin=dict(l=60, r=20, t=60, b=80),
            **layout,
        ),
    )


def _axis(name: str, column: int) -> str:
    """Plotly's name of the `column`th plot's axis: x, x2, x3 (and xaxis, xaxis2, ...)."""
    return name if column == 1 else f"{name}{column}"


# -- Runs tab ------------------------------------------------------------------------------------
def curves(
    series: list[tuple[dict, list[dict]]],
    metric: str = "Validation accuracy",
    x_axis: str = "Epoch",
    smoothing: float = 0.0,
) -> go.Figure:
    """One line per run of `metric`; with smoothing > 0 the raw line is drawn faint behind the
    EMA-smoothed one (2 traces per run, the raw one out of the legend)."""
    title = f"{metric} by {x_axis.lower()}"
    if not series:
        return empty_figure(title, "Select runs above to compare their curves")
    fig = go.Figure()
    palette = _palette()
    for i, (run, epochs) in enumerate(series):
        xs, ys = rd.curve_series(epochs, metric, x_axis)
        color = palette[i % len(palette)]
        name = rd.run_label(run)
        if smoothing and smoothing > 0:
            fig.add_trace(
                go.Scatter(
                    x=xs,
                    y=ys,
                    mode="lines",
                    name=f"{name} (raw)",
                    opacity=0.25,
                    line=dict(color=color, width=1),
                    legendgroup=name,
                    showlegend=False,
                    hoverinfo="skip",
                )
            )
            ys = rd.ema(ys, smoothing)
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=ys,
                mode="lines+markers" if len(xs) <= 30 else "lines",
                name=name,
                line=dict(color=color),
                legendgroup=name,
            )
        )
    x_title = "epoch" if x_axis == "Epoch" else "wall time (minutes of training)"
    y_title = metric.lower() + (" (%)" if "accuracy" in metric.lower() else "")
    fig.update_xaxes(title_text=x_title)
    if x_axis == "Epoch":
        fig.update_xaxes(**whole_steps(max((len(epochs) for _, epochs in series), default=1)))
    fig.update_yaxes(title_text=y_title, type="log" if metric == "Learning rate" else None)
    return _layout(fig, title)


def per_class(results: list[tuple[dict, list[str], np.ndarray]]) -> go.Figure:
    """Grouped bars: one trace per run of its test accuracy (%) per class."""
    title = "Per-class test accuracy"
    if not results:
        return empty_figure(title, "Select runs with stored test predictions")
    fig = go.Figure()
    for run, names, accuracy in results:
        values = [None if np.isnan(a) else round(100.0 * float(a), 2) for a in accuracy]
        fig.add_trace(go.Bar(x=list(names), y=values, name=rd.run_label(run)))
    fig.update_layout(barmode="group")
    fig.update_xaxes(title_text="class")
    fig.update_yaxes(title_text="test accuracy (%)")
    return _layout(fig, title)


def params_scatter(runs: list[dict], metric: str = "Test accuracy") -> go.Figure:
    """Completed runs: parameters (log x) against the accuracy, one trace per model."""
    title = f"Parameters vs {metric.lower()}"
    column = rd.accuracy_column(metric)
    points = [r for r in runs if r["status"] == RunStatus.COMPLETED and r.get("params") and r.get(column) is not None]
    if not points:
        return empty_figure(title, f"No completed runs with a parameter count and {metric.lower()} yet")
    fig = go.Figure()
    by_model: dict[str, list] = {}
    for run in points:
        by_model.setdefault(rd.run_model(run) or "?", []).append(run)
    for model, group in sorted(by_model.items()):
        fig.add_trace(
            go.Scatter(
                x=[r["params"] for r in group],
                y=[100.0 * r[column] for r in group],
                mode="markers",
                name=model,
                marker=dict(size=10, opacity=0.85),
                text=[rd.run_label(r) for r in group],
                hovertemplate="%{text}<br>%{x:,} parameters<br>%{y:.2f}%<extra>" + model + "</extra>",
            )
        )
    fig.update_xaxes(title_text="parameters (log scale)", type="log")
    fig.update_yaxes(title_text=metric.lower() + " (%)")
    return _layout(fig, title)


GROUP_LABEL_CHARS = 26  # a group's name wraps at its " · " into lines of about this many characters
GROUP_LINE_PX = 15  # height per label line (12 px tick font) ...
GROUP_BAR_PX = 14  # ... plus this much per bar, so a bar is never thinner than its name


def group_label(name: str, n: int, width: int = GROUP_LABEL_CHARS) -> str:
    """A group's name for the y axis: wrapped at its " · " separators into lines of about `width`
    characters (a part longer than that is a line of its own, never cut), the run count on the last line."""
    lines: list[str] = []
    for part in str(name).split(" · "):
        if lines and len(lines[-1]) + 3 + len(part) <= width:
            lines[-1] += " · " + part
        else:
            lines.append(part)
    lines[-1] += f" (n={n})"
    return " ·<br>".join(lines)


def grouped_accuracy(groups: list[dict], by: str = "Setting", metric: str = "Test accuracy") -> go.Figure:
    """Horizontal bars of the mean accuracy per group, best on top, std error bars; each group's name on
    the y axis (wrapped, its run count after it), the subtitle what the spread is over (a setting's seeds,
    or everything a coarser group pools), each bar's hover what it pools. Rotated names under upright bars
    left ~70 px of plot and were cut at 1024 px: the figure grows with the groups and their name lines."""
    spread = "over seeds" if by == "Setting" else f"over runs: each bar pools every setting with that {by.lower()}"
    title = f"{metric} by {by.lower()}"
    subtitle = f"mean ± std {spread}"
    if not groups:
        return _layout(empty_figure(title, f"No runs with {metric.lower()} yet"), title, subtitle=subtitle)
    labels = [group_label(g["group"], g["n"]) for g in groups]
    lines = sum(label.count("<br>") + 1 for label in labels)
    height = max(HEIGHT, 150 + GROUP_LINE_PX * lines + GROUP_BAR_PX * len(groups))
    fig = go.Figure(
        go.Bar(
            y=labels,
            x=[g["mean"] for g in groups],
            orientation="h",
            name="mean",
            error_x=dict(type="data", array=[g["std"] for g in groups], visible=True),
            customdata=[g["pools"] for g in groups],
            hovertemplate="%{y}<br>mean %{x:.2f}%<br>pools: %{customdata}<extra></extra>",
        )
    )
    # Best first from the top; the names' width taken from the plot, not cut (automargin).
    fig.update_yaxes(autorange="reversed", automargin=True, ticksuffix=" ")
    fig.update_xaxes(title_text=f"{metric.lower()} (%), mean ± std", automargin=True, rangemode="tozero")
    return _layout(fig, title, subtitle=subtitle, height=height, showlegend=False, margin=dict(l=10, r=20, t=80, b=50))


def _palette() -> list[str]:
    return list(plotly.colors.qualitative.Plotly)


# -- Ensemble tab ----------------------------------------------------------------------------------
def grid_heatmap(grid: dict, names: list[str]) -> go.Figure:
    """Validation accuracy over the first two members' weights (for three members: the best over the
    third weight at each cell)."""
    weights, accuracy = np.asarray(grid["weights"]), np.asarray(grid["accuracy"])
    title = "Grid search: validation accuracy (%)"
    if weights.shape[1] not in (2, 3):
        return empty_figure(title, "a heatmap needs 2 or 3 members; see the table of top combinations")
    axis = np.unique(np.round(weights[:, :2], 6))
    index = {v: i for i, v in enumerate(axis)}
    cells = np.full((len(axis), len(axis)), np.nan)
    for (w1, w2), acc in zip(np.round(weights[:, :2], 6), accuracy):
        i, j = index[w2], index[w1]
        cells[i, j] = acc if np.isnan(cells[i, j]) else max(cells[i, j], acc)
    fig = go.Figure(
        go.Heatmap(
            x=axis,
            y=axis,
            z=100 * cells,
            colorscale="Viridis",
            colorbar=dict(title="val %"),
            hovertemplate="w1 %{x}<br>w2 %{y}<br>val %{z:.2f}%<extra></extra>",
        )
    )
    fig.update_xaxes(title_text=f"weight of {names[0]}")
    fig.update_yaxes(title_text=f"weight of {names[1]}")
    subtitle = f"the best weight of {names[2]} at each cell" if weights.shape[1] == 3 else ""
    return _layout(fig, title, subtitle=subtitle)


def greedy_trajectory(trajectory: dict, best_step: int) -> go.Figure:
    """Validation accuracy and NLL of the running ensemble after each greedy selection step."""
    steps = list(range(1, len(trajectory["accuracy"]) + 1))
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(go.Scatter(x=steps, y=100 * np.asarray(trajectory["accuracy"]), name="val accuracy (%)"))
    fig.add_trace(go.Scatter(x=steps, y=trajectory["nll"], name="val NLL"), secondary_y=True)
    fig.add_vline(x=best_step, line_dash="dot", annotation_text=f"chosen: step {best_step}")
    fig.update_xaxes(title_text="selection step", **whole_steps(len(steps)))
    fig.update_yaxes(title_text="accuracy (%)", secondary_y=False)
    fig.update_yaxes(title_text="NLL", secondary_y=True)
    return _layout(fig, "Greedy selection (Caruana et al. 2004) on validation")


def reliability_diagram(curves: dict) -> go.Figure:
    """Accuracy against confidence per bin, for the ensemble and each member (test split)."""
    traces = [
        dict(
            type="scatter",
            x=[0, 1],
            y=[0, 1],
            mode="lines",
            name="perfect calibration",
            line=dict(color="#999", dash="dash"),
        )
    ]
    for i, (name, curve) in enumerate(curves.items()):
        filled = np.asarray(curve["counts"]) > 0
        traces.append(
            dict(
                type="scatter",
                x=np.asarray(curve["confidence"])[filled],
                y=np.asarray(curve["accuracy"])[filled],
                mode="lines+markers",
                name=f"{name} (ECE {100 * curve['ece']:.1f}%)",
                line=dict(width=4 if i == 0 else 1.5),
            )
        )
    # The legend under the plot: inside, it covered the curves it names.
    layout = _layout_settings(
        "Reliability on the test split",
        height=480,
        legend=dict(orientation="h", yanchor="top", y=-0.18, xanchor="left", x=0),
        xaxis=dict(title=dict(text="confidence"), range=[0, 1]),
        yaxis=dict(title=dict(text="accuracy"), range=[0, 1]),
    )
    return unvalidated_figure(traces, layout)  # redrawn on every slider move


def agreement_heatmap(matrix: np.ndarray, names: list[str]) -> go.Figure:
    """How often each pair of members predicts the same class (test split)."""
    fig = go.Figure(
        go.Heatmap(
            z=100 * np.asarray(matrix),
            x=names,
            y=names,
            colorscale="Blues",
            zmin=0,
            zmax=100,
            text=[[f"{100 * v:.1f}" for v in row] for row in matrix],
            texttemplate="%{text}",
            colorbar=dict(title="agree %"),
        )
    )
    fig.update_yaxes(autorange="reversed")
    return _layout(
        fig, "Member agreement on test (%)", subtitle="low agreement is what an ensemble can use", height=420
    )


# -- Errors tab ----------------------------------------------------------------------------------------
CONFUSION_CORNER = "true \\ predicted"  # the header of the confusion table's first column


def confusion_table(matrix: np.ndarray, class_names: list[str]):
    """The confusion matrix as a table (a pandas Styler) rather than a heatmap, because a table's cell
    click reaches the server with its row and column and a Plotly click does not. Column 0 names the
    true class, then one column of counts per predicted class; mistakes are shaded red by their count,
    the diagonal green."""
    import pandas as pd  # noqa: PLC0415 - pandas: a second at import, only this table needs it

    matrix = np.asarray(matrix)
    names = [str(n) for n in class_names]
    table = pd.DataFrame(matrix, columns=names)
    table.insert(0, CONFUSION_CORNER, names)
    diagonal = np.eye(len(names), dtype=bool)
    most = {True: max(1, int(matrix[diagonal].max(initial=0))), False: max(1, int(matrix[~diagonal].max(initial=0)))}

    def shade(count: int, on_diagonal: bool) -> str:
        if count <= 0:
            return ""
        alpha = 0.12 + 0.6 * count / most[on_diagonal]
        rgb = "22, 163, 74" if on_diagonal else "220, 38, 38"
        return f"background-color: rgba({rgb}, {alpha:.2f})"

    styles = [[""] + [shade(int(matrix[i, j]), i == j) for j in range(len(names))] for i in range(len(names))]
    return table.style.apply(lambda frame: pd.DataFrame(styles, index=frame.index, columns=frame.columns), axis=None)


def top5_bars(entries: list[tuple[str, list[tuple[str, float]]]], title: str) -> go.Figure:
    """Grouped bars: the top-5 class probabilities of one image for the source and each member."""
    fig = go.Figure()
    for name, pairs in entries:
        fig.add_trace(go.Bar(x=[c for c, _ in pairs], y=[100 * p for _, p in pairs], name=name))
    fig.update_yaxes(title_text="probability (%)", range=[0, 100])
    return _layout(fig, title, barmode="group")
