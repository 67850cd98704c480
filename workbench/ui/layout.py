"""Sizes the page's layout shares: the two columns of the form tabs and the tables' column widths."""

# The Train and Fine-tune tabs: form and live panel side by side where both get these widths,
# stacked below that (at 1024 px the jobs table would otherwise split its words).
FORM_MIN_WIDTH = 600
PANEL_MIN_WIDTH = 600


def column_widths(columns, widths: dict) -> list:
    """A Dataframe's `column_widths` in percent: `widths` by column name; the columns it leaves out
    share what is left (the ones whose text may wrap: names, notes)."""
    flexible = [c for c in columns if c not in widths]
    rest = (100 - sum(widths.get(c, 0) for c in columns)) / max(1, len(flexible))
    return [f"{widths.get(c, rest):g}%" for c in columns]
