"""The Errors tab's "Likely label errors" view (issue 24): source A's split ranked by cleanlab's label quality,
one card at a time, with verdicts (label error / correct / unsure / relabel as X) and keyboard shortcuts.

Reviews go to the store (`store.reviews`), keyed by the dataset's identity, its part and the image's index
there, not by run: every source of the same images sees them, and each verdict is one short transaction (two
browsers reviewing at once lose nothing). Where a card is in the queue lives in the page (`cursor`), so every
browser has its own. The ranking is `workbench.inspect.label_quality`'s, the queue and the export
`workbench.inspect.review_queue`'s. `create_review_view(ctx, source, split)` is all the Errors tab wires.
"""

import functools
from dataclasses import dataclass
from typing import Any, Literal

import gradio as gr

from workbench.constants import Verdict
from workbench.ensemble import lab
from workbench.errors import UserError
from workbench.inspect import gallery
from workbench.inspect import label_quality as lq
from workbench.inspect import review_queue as rq
from workbench.ui import widgets
from workbench.ui.widgets import LAST

CARD_SCALE = 8  # 32 -> 256 pixels
QUEUE_SHOWN = 16  # the next cards, as thumbnails
SPLIT_WORDS = {"val": "validation", "train": "training (out-of-fold)"}
BUTTONS: tuple[tuple[Verdict, str, str, Literal["stop", "secondary"]], ...] = (
    (Verdict.LABEL_ERROR, "Label error [E]", "review-error", "stop"),
    (Verdict.CORRECT, "Correct [C]", "review-correct", "secondary"),
    (Verdict.UNSURE, "Unsure [U]", "review-unsure", "secondary"),
)
# Keyboard shortcuts while the view is on screen and no text field has the focus: the keys click its buttons. A key
# pressed again before the card it acted on has been replaced is ignored (up to 3 s): two quick presses are two
# verdicts for two cards, never a second verdict for the card the first one was meant for.
SHORTCUTS_JS = """
<script>
let reviewActedOn = null, reviewActedAt = 0;
document.addEventListener("keydown", (event) => {
  const card = document.getElementById("review-card");
  if (!card || card.offsetParent === null || event.ctrlKey || event.metaKey || event.altKey) return;
  const tag = (event.target && event.target.tagName || "").toLowerCase();
  if (tag === "input" || tag === "textarea" || tag === "select" || event.target.isContentEditable) return;
  const keys = {e: "review-error", c: "review-correct", u: "review-unsure", r: "review-relabel",
                j: "review-next", arrowright: "review-next", k: "review-previous", arrowleft: "review-previous"};
  const id = keys[event.key.toLowerCase()];
  const button = id && document.getElementById(id);
  if (!button) return;
  event.preventDefault();
  const shown = (document.getElementById("review-info") || {}).innerText || "";
  if (shown === reviewActedOn && Date.now() - reviewActedAt < 3000) return;
  reviewActedOn = shown; reviewActedAt = Date.now();
  button.click();
});
</script>
"""
RANK_AGAIN = "Source A or the split changed: **Rank source A's labels** to review its images."
HELP = (
    "Keys: **E** label error · **C** correct · **U** unsure · **R** relabel as the class chosen (the suggested one "
    "unless you change it) · **J**/→ next · **K**/← previous. Reviews belong to the images, not to the source: "
    "train with them (dataset option `reviews=exclude` or `reviews=relabel`) and the leaderboard shows each run's "
    "accuracy on the reviewed test set beside the original."
)


@dataclass(eq=False)
class ReviewView:
    which: gr.Radio
    hide_reviewed: gr.Checkbox
    start: gr.Button
    progress: gr.Markdown
    message: gr.Markdown
    cursor: gr.Number
    shown: gr.Number  # the split's row on the card: what a verdict is for (hidden)
    card: gr.Image
    info: gr.Markdown
    verdicts: list  # the three verdict buttons, in BUTTONS' order
    relabel_to: gr.Dropdown
    relabel: gr.Button
    previous: gr.Button
    next: gr.Button
    queue: gr.Gallery
    export: gr.Button
    export_file: gr.File

    @property
    def selection(self) -> list:
        return [self.which, self.hide_reviewed, self.cursor]


class _Handlers:
    def __init__(self, ctx, view: ReviewView):
        self.ctx, self.store, self.room, self.v = ctx, ctx.store, lab.Lab(ctx.store), view
        self.cache: dict[Any, Any] = {}  # inspect.sources' cache (datasets, images) and the ranked issues

    def issues(self, key, split) -> lq.LabelIssues:
        if not key:
            raise UserError(
                "choose source A (a completed run, a saved ensemble or a cross-validation request) above, "
                "then review its labels"
            )
        if ("issues", key, split) not in self.cache:
            issues = lq.label_issues(self.store, self.room, key, split, self.cache)
            lq.map_rows(self.store, issues, self.cache)
            self.cache = {k: v for k, v in self.cache.items() if not (isinstance(k, tuple) and k[:1] == ("issues",))}
            self.cache[("issues", key, split)] = issues
        return self.cache[("issues", key, split)]

    def state(self, key, split, which, hide):
        issues = self.issues(key, split)
        reviewed = rq.reviewed_by_official(self.store.reviews(issues.dataset, issues.part))
        return issues, reviewed, rq.candidates(issues, reviewed, which, bool(hide))

    def show(self, key, split, which, hide, cursor, note=""):
        v = self.v
        try:
            issues, reviewed, order = self.state(key, split, which, hide)
            images = lq.issue_images(self.store, issues, self.cache)
        except UserError as exc:
            return {v.message: f"**{exc}**", v.card: None, v.info: "", v.queue: [], v.progress: "", v.shown: -1}
        names = issues.class_names
        progress = rq.progress_text(issues, reviewed)
        if not len(order):
            done = "every flagged image is reviewed" if which == "flagged" else "every image is reviewed"
            return {
                v.message: note,
                v.progress: progress,
                v.card: None,
                v.info: f"Nothing left to review here: {done}. Untick *hide reviewed* to go through them again.",
                v.queue: [],
                v.cursor: 1,
                v.shown: -1,
            }
        cursor = min(max(1, int(cursor or 1)), len(order))
        row = int(order[cursor - 1])
        review = rq.review_of(issues, reviewed, row)
        given, suggested = int(issues.labels[row]), int(issues.suggested[row])
        card = gallery.page(images, [row], issues.probs, issues.labels, names, per_page=1, scale=CARD_SCALE)[0][0]
        split_words = SPLIT_WORDS.get(issues.split, issues.split)
        info = (
            f"**Card {cursor} of {len(order)}** · image **#{row}** of the {split_words} split · given "
            f"**{names[given]}** (p {issues.probs[row, given]:.2f}) · suggested **{names[suggested]}** "
            f"(p {issues.probs[row, suggested]:.2f}) · label quality **{issues.score[row]:.3f}** · "
            f"{'flagged' if issues.flagged[row] else 'not flagged'} · "
            f"your verdict: **{rq.verdict_text(review, names)}**"
        )
        upcoming = order[cursor - 1 : cursor - 1 + QUEUE_SHOWN]
        thumbs = gallery.page(images, upcoming, issues.probs, issues.labels, names, per_page=QUEUE_SHOWN, scale=2)
        captions = [
            f"#{int(r)} {names[int(issues.labels[r])]}→{names[int(issues.suggested[r])]} {issues.score[r]:.2f}"
            + (
                f" [{rq.verdict_text(rq.review_of(issues, reviewed, int(r)), names)}]"
                if rq.review_of(issues, reviewed, int(r))
                else ""
            )
            for r in upcoming
        ]
        default = suggested if suggested != given else next(i for i in range(len(names)) if i != given)
        return {
            v.message: note,
            v.progress: progress,
            v.card: gr.update(value=card, label=f"Image #{row}: given {names[given]}, suggested {names[suggested]}"),
            v.info: info,
            v.queue: [(img, text) for (img, _), text in zip(thumbs, captions)],
            v.cursor: cursor,
            v.shown: row,
            v.relabel_to: gr.update(choices=[(n, i) for i, n in enumerate(names) if i != given], value=default),
        }

    def mark(self, verdict, relabel_to, shown, key, split, which, hide, cursor):
        """Record the verdict for the card shown (`shown`: its row of the split), then show the next one."""
        try:
            issues = self.issues(key, split)
            row = int(shown if shown is not None else -1)
            if not 0 <= row < len(issues.labels):
                raise UserError("no card is shown: rank source A's labels first")
            assert issues.official is not None
            self.store.save_review(
                issues.dataset,
                issues.part,
                int(issues.official[row]),
                verdict,
                given=int(issues.labels[row]),
                label=None if relabel_to is None else int(relabel_to),
                suggested=int(issues.suggested[row]),
                score=float(issues.score[row]),
                by=self.ctx.user().name,
            )
        except UserError as exc:
            return self.show(key, split, which, hide, cursor, note=f"**{exc}**")
        # hidden once reviewed: the next card moves into this place; otherwise step on
        return self.show(key, split, which, hide, cursor if hide else cursor + 1, note=f"Image #{row}: {verdict}.")

    def pick(self, key, split, which, hide, cursor, evt: gr.SelectData):
        return self.show(key, split, which, hide, int(cursor or 1) + evt.index)

    def export(self, key, split):
        def write():
            issues = self.issues(key, split)
            name = issues.dataset.replace("/", "-")
            path = widgets.fresh_folder("workbench-reviews-") / f"label-reviews-{name}.csv"
            count = rq.write_reviews_csv(self.store, issues.dataset, issues.class_names, path)
            return path, f"Exported {count} reviews of {issues.dataset} to {path.name}."

        return widgets.exported(write)


def _layout() -> ReviewView:
    c: dict[str, Any] = {}
    gr.Markdown(HELP, elem_id="review-help")
    with gr.Row():
        c["which"] = gr.Radio(rq.FILTERS, value="flagged", label="Images", scale=2)
        c["hide_reviewed"] = gr.Checkbox(True, label="Hide reviewed", scale=1)
        c["start"] = gr.Button("Rank source A's labels", variant="primary", scale=1, elem_id="review-start")
    c["progress"] = gr.Markdown(elem_id="review-progress")
    c["message"] = gr.Markdown(elem_id="review-message")
    with gr.Row(equal_height=False):
        c["card"] = widgets.enlarged_image("Card", "review-card", CARD_SCALE)
        with gr.Column(scale=2):
            c["info"] = gr.Markdown(elem_id="review-info")
            with gr.Row():
                c["verdicts"] = [
                    gr.Button(text, variant=variant, elem_id=eid, min_width=120) for _, text, eid, variant in BUTTONS
                ]
            with gr.Row():
                c["relabel_to"] = gr.Dropdown([], label="Relabel as", elem_id="review-relabel-to", min_width=160)
                c["relabel"] = gr.Button("Relabel [R]", elem_id="review-relabel", min_width=120)
            with gr.Row():
                pager = widgets.pager(
                    "Card",
                    previous_text="◀ Previous [K]",
                    next_text="Next [J] ▶",
                    ids=("review-previous", "review-cursor", "review-next"),
                    number_width=80,
                )
                c.update(previous=pager.previous, cursor=pager.number, next=pager.next)
            c["shown"] = gr.Number(-1, precision=0, visible=False, elem_id="review-shown")
    c["queue"] = widgets.thumbnails(
        "Next in line (given→suggested, label quality; click one to review it)",
        "review-queue",
        columns=8,
        height=230,  # one row of thumbnails ("auto" kept a tall empty box below them)
    )
    c["export"], c["export_file"] = widgets.export_row("Export this dataset's reviews as CSV", "Reviews")
    return ReviewView(**c)


def create_review_view(ctx, source: gr.Dropdown, split: gr.Radio) -> ReviewView:
    """The view inside the Errors tab, on its source A and split."""
    v = _layout()
    h = _Handlers(ctx, v)
    inputs = [source, split, *v.selection]
    outputs = [v.message, v.progress, v.card, v.info, v.queue, v.cursor, v.shown, v.relabel_to]
    marked = [v.shown, *inputs]
    v.start.click(
        lambda key, split, which, hide, _: h.show(key, split, which, hide, 1), inputs, outputs, api_name="label_review"
    )
    gr.on(
        [v.which.input, v.hide_reviewed.input],
        lambda key, split, which, hide, _: h.show(key, split, which, hide, 1),
        inputs,
        outputs,
        trigger_mode=LAST,
    )
    widgets.Pager(v.previous, v.cursor, v.next).wire(
        lambda at, key, split, which, hide: h.show(key, split, which, hide, at),
        [source, split, v.which, v.hide_reviewed],
        outputs,
    )
    for (verdict, *_), button in zip(BUTTONS, v.verdicts):
        button.click(
            functools.partial(h.mark, verdict, None), marked, outputs, api_name=f"review_{verdict.name.lower()}"
        )
    v.relabel.click(
        lambda to, *a: h.mark(Verdict.RELABEL, to, *a), [v.relabel_to, *marked], outputs, api_name="review_relabel"
    )
    v.queue.select(h.pick, inputs, outputs)
    v.export.click(h.export, [source, split], [v.export_file, v.message])
    # Another source or split: the card shown was a row of the old one, so it goes (a verdict needs a new ranking).
    cleared: dict[Any, Any] = {
        v.card: None,
        v.shown: -1,
        v.queue: [],
        v.progress: "",
        v.info: "",
        v.message: RANK_AGAIN,
    }
    gr.on([source.input, split.input], lambda: cleared, None, [v.card, v.shown, v.queue, v.progress, v.info, v.message])
    return v
