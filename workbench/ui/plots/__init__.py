"""Plotly figures shared by the tabs: pure functions from store rows and arrays to a Figure (and the
confusion matrix as a styled table, whose cells Gradio can report clicks on).

No Gradio here. Every figure uses plotly_white's look, a fixed height, a title, axis titles
and a legend; an empty input gives a figure that says what is missing instead of blank axes.
One module per tab (`live`, `runs`, `ensemble`, `errors`) on the shared look (`style`); the tabs use them as
`plots.NAME`, gathered here.
"""

from workbench.ui.plots.ensemble import agreement_heatmap, greedy_trajectory, grid_heatmap, reliability_diagram
from workbench.ui.plots.errors import CONFUSION_CORNER, confusion_table, top5_bars
from workbench.ui.plots.live import LIVE_GAP, LIVE_PANELS, live_curves
from workbench.ui.plots.runs import (
    GROUP_BAR_PX,
    GROUP_LABEL_CHARS,
    GROUP_LINE_PX,
    curves,
    group_label,
    grouped_accuracy,
    params_scatter,
    per_class,
)
from workbench.ui.plots.style import HEIGHT, TEMPLATE, empty_figure, unvalidated_figure, whole_steps

__all__ = [
    "CONFUSION_CORNER",
    "GROUP_BAR_PX",
    "GROUP_LABEL_CHARS",
    "GROUP_LINE_PX",
    "HEIGHT",
    "LIVE_GAP",
    "LIVE_PANELS",
    "TEMPLATE",
    "agreement_heatmap",
    "confusion_table",
    "curves",
    "empty_figure",
    "greedy_trajectory",
    "grid_heatmap",
    "group_label",
    "grouped_accuracy",
    "live_curves",
    "params_scatter",
    "per_class",
    "reliability_diagram",
    "top5_bars",
    "unvalidated_figure",
    "whole_steps",
]
