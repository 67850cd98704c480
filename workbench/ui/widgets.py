"""Components and rows that several views of the page repeat, with their wiring: a pager (◀ previous, a number,
next ▶), a gallery of small images shown whole, one 32-pixel image shown enlarged (beside its top-5 probabilities),
and an export button with the file it writes. The Errors tab's gallery, near-duplicates, map and label review, and
the Predict tab, use them."""

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from workbench.errors import UserError

IMAGE_PIXELS = 32  # a CIFAR image's side
# The trigger mode of an event that redraws a view from its inputs' current values (filters, a source, a
# selection). Gradio's default for .input/.click, "once", drops a trigger while the same event is still running,
# so a filter changed during the last one's redraw was never shown; "always_last" runs once more afterwards.
LAST = "always_last"


@dataclass(eq=False)
class Pager:
    previous: gr.Button
    number: gr.Number
    next: gr.Button

    def wire(self, show: Callable, inputs: list, outputs: list) -> None:
        """`show(number, *inputs)` on Enter in the number, and with one less or one more on ◀ and ▶."""
        with_number = [self.number, *inputs]
        self.number.submit(show, with_number, outputs)
        self.previous.click(lambda at, *values: show((at or 1) - 1, *values), with_number, outputs)
        self.next.click(lambda at, *values: show((at or 1) + 1, *values), with_number, outputs)


def pager(
    label: str = "Page",
    *,
    previous_text: str = "◀ Previous page",
    next_text: str = "Next page ▶",
    ids: tuple[str | None, str | None, str | None] = (None, None, None),
    number_width: int = 160,
) -> Pager:
    """The three components, in the caller's row: the buttons' texts, the number's `label`, and the elem_ids of
    (previous, number, next)."""
    return Pager(
        gr.Button(previous_text, size="sm", elem_id=ids[0]),
        gr.Number(1, label=label, precision=0, minimum=1, elem_id=ids[1], min_width=number_width),
        gr.Button(next_text, size="sm", elem_id=ids[2]),
    )


def thumbnails(label: str, elem_id: str, columns: int, height: int | str = "auto") -> gr.Gallery:
    """A gallery of small images, each shown whole (no crop to a square) and no preview on click: a click is the
    view's own event (top-5, a card to review)."""
    return gr.Gallery(
        label=label, columns=columns, height=height, object_fit="contain", allow_preview=False, elem_id=elem_id
    )


def enlarged_image(label: str, elem_id: str, times: int) -> gr.Image:
    """A box for one 32-pixel image shown `times` larger (the gallery's pick, a map's clicked point, a review card)."""
    side = times * IMAGE_PIXELS
    return gr.Image(label=label, interactive=False, height=side, min_width=side, scale=1, elem_id=elem_id)


def picked_row(label: str, elem_id: str, times: int) -> tuple[gr.Image, gr.Plot]:
    """A row: the image clicked (`enlarged_image`) beside its top-5 probabilities."""
    with gr.Row(equal_height=False):
        image = enlarged_image(label, elem_id, times)
        top5 = gr.Plot(label="Top-5 probabilities", scale=3)
    return image, top5


def export_row(button: str, file_label: str) -> tuple[gr.Button, gr.File]:
    """A row: the export button and the file it writes (hidden until there is one)."""
    with gr.Row():
        return gr.Button(button), gr.File(label=file_label, visible=False, interactive=False)


def fresh_folder(prefix: str) -> Path:
    """A new temporary folder for one export (Gradio serves the file from there)."""
    return Path(tempfile.mkdtemp(prefix=prefix))


def exported(write: Callable[[], tuple[Path, str]]) -> tuple:
    """(the export file's update, the message) for an export button: `write()` gives (the file, what to say);
    a UserError it raises hides the file and becomes the message."""
    try:
        path, message = write()
    except UserError as exc:
        return gr.update(visible=False), f"**{exc}**"
    return gr.update(value=str(path), visible=True), message
