"""What the label review (the Errors tab's "Likely label errors" view) shows and exports, without Gradio.

    order = candidates(issues, reviewed, "flagged", hide_reviewed=True)   # rows of the split, worst first
    progress_text(issues, reviewed)                                       # "12 of 87 flagged reviewed ..."
    write_reviews_csv(store, issues.dataset, issues.class_names, path)

`reviewed` is {official index: review row} of the issues' dataset part (`store.reviews`), so a review made
from any source of the same images shows here.
"""

import csv
from collections import Counter
from pathlib import Path

import numpy as np

from workbench.constants import VERDICTS, Verdict
from workbench.inspect.label_quality import LabelIssues

FILTERS = [("flagged by confident learning", "flagged"), ("every image, lowest label quality first", "all")]
EXPORT_COLUMNS = ("split", "index", "file", "given", "suggested", "verdict", "relabel_as", "reviewed_by", "reviewed_at")


def reviewed_by_official(rows: list) -> dict:
    return {int(r["idx"]): r for r in rows}


def review_of(issues: LabelIssues, reviewed: dict, row: int) -> dict | None:
    assert issues.official is not None, "map_rows fills official before reviews are matched"
    return reviewed.get(int(issues.official[row]))


def candidates(issues: LabelIssues, reviewed: dict, which: str, hide_reviewed: bool) -> np.ndarray:
    """Rows of the split to review, most likely label errors first: flagged ones, or all; without those
    already reviewed when `hide_reviewed`."""
    order = issues.order()
    if which == "flagged":
        order = order[issues.flagged[order]]
    if hide_reviewed and reviewed:
        assert issues.official is not None
        done = np.isin(issues.official[order], np.fromiter(reviewed, np.int64, len(reviewed)))
        order = order[~done]
    return order


def verdict_text(review: dict | None, class_names: list) -> str:
    if review is None:
        return "not reviewed"
    if review["verdict"] == Verdict.RELABEL:
        return f"relabel as {class_names[review['label']]}"
    return str(review["verdict"])


def progress_text(issues: LabelIssues, reviewed: dict) -> str:
    """How far the review is: flagged images reviewed, and the verdicts over the whole split's reviews."""
    assert issues.official is not None
    flagged = issues.official[issues.flagged]
    done = int(np.isin(flagged, np.fromiter(reviewed, np.int64, len(reviewed))).sum()) if reviewed else 0
    rows_here = set(issues.official.tolist())
    here = [r for i, r in reviewed.items() if i in rows_here]
    counts = Counter(str(r["verdict"]) for r in here)
    parts = ", ".join(f"{counts[v]} {v}" for v in VERDICTS if counts[v]) or "none yet"
    share = f" ({done / len(flagged):.0%})" if len(flagged) else ""
    return (
        f"**{done} of {len(flagged)} flagged images reviewed**{share} · verdicts on this split: {parts} "
        f"· {len(issues.labels):,} images, {len(flagged)} flagged by confident learning"
    )


def export_rows(store, dataset: str, class_names: list) -> list:
    """One row per review of the dataset (both parts): EXPORT_COLUMNS, classes by name."""
    rows = []
    files: dict = {}
    for review in store.reviews(dataset):
        part = review["part"]
        if part not in files:
            files[part] = store.review_part(dataset, part).get("files")
        names = files[part]
        name = lambda k: "" if k is None else class_names[int(k)]  # noqa: E731
        rows.append(
            {
                "split": part,
                "index": review["idx"],
                "file": names[review["idx"]] if names else "",
                "given": name(review["given"]),
                "suggested": name(review["suggested"]),
                "verdict": review["verdict"],
                "relabel_as": name(review["label"]),
                "reviewed_by": review["reviewed_by"] or "",
                "reviewed_at": review["reviewed_at"],
            }
        )
    return rows


def write_reviews_csv(store, dataset: str, class_names: list, path: Path) -> int:
    """Write the dataset's reviews to `path` (the `file` column only where the dataset has file names);
    returns how many."""
    rows = export_rows(store, dataset, class_names)
    columns = [c for c in EXPORT_COLUMNS if c != "file" or any(r["file"] for r in rows)]
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return len(rows)
