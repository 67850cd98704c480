"""The Runs tab's figures: curves of selected runs, per-class accuracy, parameters against accuracy, and accuracy
grouped by setting, loss, augmentation or model."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from workbench.constants import RunStatus
from workbench.ui.plots.style import HEIGHT, empty_figure, palette, styled, whole_steps
from workbench.views import runs as rd


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
    colours = palette()
    for i, (run, epochs) in enumerate(series):
        xs, ys = rd.curve_series(epochs, metric, x_axis)
        color = colours[i % len(colours)]
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
    return styled(fig, title)


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
    return styled(fig, title)


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
    return styled(fig, title)


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
        return styled(empty_figure(title, f"No runs with {metric.lower()} yet"), title, subtitle=subtitle)
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
    return styled(fig, title, subtitle=subtitle, height=height, showlegend=False, margin=dict(l=10, r=20, t=80, b=50))
