"""The Ensemble tab's figures: the weight grid's heatmap, greedy selection's trajectory, the reliability diagram
and the members' agreement."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from workbench.ui.plots.style import empty_figure, layout_settings, styled, unvalidated_figure, whole_steps


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
    return styled(fig, title, subtitle=subtitle)


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
    return styled(fig, "Greedy selection (Caruana et al. 2004) on validation")


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
    layout = layout_settings(
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
    return styled(fig, "Member agreement on test (%)", subtitle="low agreement is what an ensemble can use", height=420)
