"""The Errors tab's figures: the confusion matrix as a styled table (its cell clicks reach the server) and one
image's top-5 probabilities."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from workbench.ui.plots.style import styled

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
    return styled(fig, title, barmode="group")
