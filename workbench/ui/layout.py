"""Sizes the page's layout shares: the two columns of the form tabs and the tables' column widths."""

# The Train and Fine-tune tabs: form and live panel side by side where both get these widths,
# stacked below that (at 1024 px the jobs table would otherwise split its words), the panel on top: under
# the form it was ~1,500 px down the page at 1024 px (issue 23). FORM_AND_PANEL_CSS does it.
FORM_MIN_WIDTH = 600
PANEL_MIN_WIDTH = 600
FORM_AND_PANEL = "form-and-panel"  # the class of the row holding the two
# wrap-reverse: the row's second line (the panel, once the two no longer fit side by side) goes above its
# first (the form), exactly when the row wraps (no width to keep in step with Gradio's gaps); on one line
# it flips the cross axis only, so flex-end puts both columns' tops at the top.
FORM_AND_PANEL_CSS = f".{FORM_AND_PANEL} {{ flex-wrap: wrap-reverse !important; align-items: flex-end !important; }}"


def column_widths(columns, widths: dict) -> list:
    """A Dataframe's `column_widths` in percent: `widths` by column name; the columns it leaves out
    share what is left (the ones whose text may wrap: names, notes)."""
    flexible = [c for c in columns if c not in widths]
    rest = (100 - sum(widths.get(c, 0) for c in columns)) / max(1, len(flexible))
    return [f"{widths.get(c, rest):g}%" for c in columns]
