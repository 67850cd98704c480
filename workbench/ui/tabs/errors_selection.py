"""Which images the Errors tab shows, without Gradio: the filters' choices (order, comparison), the selection they
make from source A (and B, compared), and what the count line says when it holds no image."""

import re
from dataclasses import dataclass

import numpy as np

from workbench.errors import UserError
from workbench.inspect import analysis
from workbench.inspect import sources as sv

ANY = "any"
SORTS = [
    ("confidently wrong first", "confident"),
    ("lowest true-class probability first", "true_low"),
    ("random", "random"),
]
COMPARE = [
    ("off", "off"),
    ("A right, B wrong", "a_right_b_wrong"),
    ("B right, A wrong", "b_right_a_wrong"),
    ("both wrong", "both_wrong"),
]
PER_CLASS_COLUMNS = ["class", "images", "errors", "precision %", "recall %"]
SPLIT_NAMES = {"test": "test", "val": "validation", "train": "training (out of fold)"}
NO_B = "⚠️ **Choose source B** to compare with A, or set the comparison to off."


@dataclass
class Selection:
    """What the filters chose: source A, source B when comparing, and the images (indices into the split)."""

    a: sv.Source
    b: sv.Source | None
    indices: np.ndarray
    true_name: str
    predicted_name: str
    sort: str
    seed: int
    mode: str

    def describe(self) -> list:
        """Two lines naming the sources, the split and the filter (the exported PNG's title)."""
        a, b = self.a, self.b
        sources = f"A: {a.title}" + (f" · B: {b.title}" if b else "")
        order = dict((value, label) for label, value in SORTS)[self.sort]
        if self.sort == "random":
            order += f", seed {self.seed}"
        if b:
            order = dict((value, label) for label, value in COMPARE)[self.mode] + f" · {order}"
        return [
            sources,
            f"{SPLIT_NAMES[a.split]} split · true class: {self.true_name} · predicted by A: "
            f"{self.predicted_name} · {order}",
        ]

    def file_name(self) -> str:
        parts = ["errors", _short(self.a), self.a.split]
        if self.b:
            parts += ["vs", _short(self.b), self.mode]
        parts += ["true", self.true_name] * (self.true_name != ANY) + ["pred", self.predicted_name] * (
            self.predicted_name != ANY
        )
        return re.sub(r"[^A-Za-z0-9_.-]+", "_", "-".join(parts)) + ".png"


def _short(source: sv.Source) -> str:
    return f"cv-{source.name}" if source.kind == sv.CV else f"{source.kind}{source.id}"


def _scope(true_name: str, predicted_name: str, split: str) -> str:
    """Which images the class filters keep, as the start of a sentence."""
    if true_name != ANY and predicted_name != ANY:
        return f"in this cell (true {true_name}, predicted {predicted_name} by A)"
    if true_name != ANY:
        return f"among the {true_name} images"
    if predicted_name != ANY:
        return f"among the images A predicts as {predicted_name}"
    return f"on the {SPLIT_NAMES[split]} split"


def _all(n: int) -> str:
    return "the one image" if n == 1 else f"all {n:,} images"


def no_match_message(chosen: Selection) -> str:
    """Why a selection holds no image, in what is true of the images the class filters keep: how many
    there are, and how many of them A (and, compared, B) gets right."""
    a, b = chosen.a, chosen.b
    predicted_a = analysis.predictions(a.probs)
    keep = np.ones(len(a.labels), bool)
    if chosen.true_name != ANY:
        keep &= a.labels == a.class_names.index(chosen.true_name)
    if chosen.predicted_name != ANY:
        keep &= predicted_a == a.class_names.index(chosen.predicted_name)
    scope = _scope(chosen.true_name, chosen.predicted_name, a.split)
    n = int(keep.sum())
    if n == 0:
        return f"No images match: there are no images {scope}."
    right_a = predicted_a[keep] == a.labels[keep]
    wrong_a = int((~right_a).sum())
    if b is None or chosen.mode == "off":
        return f"No images match: {scope}, A gets {_all(n)} right."
    if chosen.mode == "a_right_b_wrong":
        fact = f"A gets {_all(n)} wrong" if wrong_a == n else f"B is right on {_all(n - wrong_a)} A gets right"
    elif wrong_a == 0:  # the other two modes need an image A gets wrong
        fact = f"A gets {_all(n)} right"
    elif chosen.mode == "b_right_a_wrong":
        fact = f"B is wrong on {_all(wrong_a)} A gets wrong"
    else:
        fact = f"B is right on {_all(wrong_a)} A gets wrong"
    label = dict((value, label) for label, value in COMPARE)[chosen.mode]
    return f"No images match: {scope}, {fact}, so none is “{label}”."


def compare_note(mode, key_b) -> str:
    """What the field beside B says: a comparison without B has nothing to show."""
    return NO_B if mode != "off" and not key_b else ""


def select_indices(a, b, true_class, predicted_class, sort, seed, mode) -> np.ndarray:
    """The images to show: A's mistakes (filtered and sorted), or a comparison of A and B."""
    if mode != "off":
        if b is None:
            raise UserError("choose a second source (B) to compare with")
        if b.labels.shape != a.labels.shape or not np.array_equal(b.labels, a.labels):
            raise UserError("A and B were evaluated on different images (splits differ); compare sources on one split")
        chosen = analysis.compare(a.probs, b.probs, a.labels)[mode]
        keep = np.ones(len(chosen), bool)
        if true_class is not None:
            keep &= a.labels[chosen] == true_class
        if predicted_class is not None:
            keep &= analysis.predictions(a.probs)[chosen] == predicted_class
        # In the chosen order, as without B (it was image order): by the wrong source's probabilities, B's
        # where only B is wrong, else A's.
        wrong = b if mode == "a_right_b_wrong" else a
        return analysis.ordered(chosen[keep], wrong.probs, a.labels, sort=sort, seed=int(seed or 0))
    return analysis.misclassified(
        a.probs, a.labels, true_class=true_class, predicted_class=predicted_class, sort=sort, seed=int(seed or 0)
    )


def per_class_rows(source) -> list:
    rows = []
    for row in analysis.per_class(source.labels, source.probs, source.class_names):
        pct = lambda v: None if v is None else round(100 * v, 1)  # noqa: E731
        rows.append(
            [row.get("name", row["class"]), row["count"], row["errors"], pct(row["precision"]), pct(row["recall"])]
        )
    return rows


def class_value(value, names):
    return None if value in (None, ANY) else names.index(value)
