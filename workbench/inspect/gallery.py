"""Images for the Errors tab: one page of a `gr.Gallery`, and a captioned PNG grid to download.

  page(images, indices, probs, labels, class_names, page=0, per_page=64, scale=3, probs_b=None)
      -> [(PIL.Image, "predicted: dog (87%) · true: cat"), ...]   the `page`-th slice of `indices`
  page_count(n, per_page)                                          pages needed for n images (at least 1)
  export_grid(images, indices, probs, labels, class_names, path, columns=8, scale=3, title="", probs_b=None)
      -> path   one PNG with the first EXPORT_LIMIT selected images, a caption under each, `title` on top

With `probs_b` (a second source's predictions on the same images, when two are compared) every caption
gives both predictions: "A: dog (87%) · B: cat (91%) · true: cat".

`images` is the uint8 [N, H, W, 3] array the predictions belong to (`sources_view.split_images`),
`indices` index into it (e.g. `analysis.misclassified`), `probs` [N, K] and `labels` [N] are the
source's. Only the page's rows are touched, so a page costs the same for 100 or 10,000 images.
Images are enlarged by `scale` with nearest-neighbour (32x32 -> 96x96 at scale 3): pixels stay sharp.
"""

import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from workbench.errors import UserError

EXPORT_LIMIT = 256  # images in one exported grid; more would make a PNG too large to look at
# Pillow's default font in pixels: at its own 10 px a space is 2 px wide and the title read "testsplit".
TITLE_SIZE = 14
CAPTION_SIZE = 12


def page_count(n: int, per_page: int) -> int:
    """Pages needed to show `n` images `per_page` at a time; 1 for no images (an empty first page)."""
    per_page = _positive(per_page, "per_page")
    return max(1, math.ceil(int(n) / per_page))


def _positive(value, name: str) -> int:
    if int(value) != value or value < 1:
        raise UserError(f"{name} must be a whole number >= 1; got {value!r}")
    return int(value)


def _check(images, indices, probs, labels, class_names, probs_b=None):
    if probs_b is not None and np.shape(probs_b) != np.shape(probs):
        raise UserError(
            f"the second source's predictions have shape {list(np.shape(probs_b))}, the first's "
            f"{list(np.shape(probs))}; compare sources on the same images"
        )
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
        raise UserError(f"images must be uint8 [N, height, width, 3]; got {images.dtype} {list(images.shape)}")
    probs, labels = np.asarray(probs), np.asarray(labels).reshape(-1)
    if probs.ndim != 2 or probs.shape[0] != len(images) or len(labels) != len(images):
        raise UserError(
            f"{len(images)} images but predictions of shape {list(probs.shape)} and {len(labels)} "
            "labels; the predictions must belong to these images"
        )
    if len(class_names) != probs.shape[1]:
        raise UserError(f"{len(class_names)} class names for predictions over {probs.shape[1]} classes")
    indices = np.asarray(indices, dtype=np.int64).reshape(-1)
    if len(indices) and (indices.min() < 0 or indices.max() >= len(images)):
        raise UserError(f"image indices must be in [0, {len(images) - 1}]")
    return images, indices, probs, labels


def _upscale(batch: np.ndarray, scale: int) -> np.ndarray:
    """Nearest-neighbour enlargement of uint8 [B, H, W, 3] by an integer factor."""
    if scale == 1:
        return batch
    b, h, w, c = batch.shape
    out = np.broadcast_to(batch[:, :, None, :, None, :], (b, h, scale, w, scale, c))
    return out.reshape(b, h * scale, w * scale, c)


def _predicted(indices, probs, class_names) -> list:
    """(predicted name, probability of the prediction) for each index."""
    rows = probs[indices]
    pred = rows.argmax(axis=1)
    conf = rows[np.arange(len(indices)), pred]
    return [(str(class_names[p]), float(q)) for p, q in zip(pred, conf)]


def _labelled(indices, probs, labels, class_names, probs_b=None) -> list:
    """(true name, [(predicted name, probability)] of A, then of B when given) for each index."""
    sources = [_predicted(indices, p, class_names) for p in (probs, probs_b) if p is not None]
    return [(str(class_names[t]), list(found)) for t, *found in zip(labels[indices], *sources)]


def caption(true_name: str, predicted_name: str, prob: float, second: tuple | None = None) -> str:
    """The gallery's caption, the prediction and its confidence first (a caption cut short still says what
    went wrong); with `second` (B's predicted name and probability) both sources' predictions."""
    if second is None:
        return f"predicted: {predicted_name} ({prob:.0%}) · true: {true_name}"
    return f"A: {predicted_name} ({prob:.0%}) · B: {second[0]} ({second[1]:.0%}) · true: {true_name}"


def page(
    images, indices, probs, labels, class_names, page: int = 0, per_page: int = 64, scale: int = 3, probs_b=None
) -> list:
    """[(PIL.Image, caption)] for page `page` (0-based; clamped to the last page) of `indices`."""
    per_page, scale = _positive(per_page, "per_page"), _positive(scale, "scale")
    images, indices, probs, labels = _check(images, indices, probs, labels, class_names, probs_b)
    number = min(max(0, int(page)), page_count(len(indices), per_page) - 1)
    chosen = indices[number * per_page : (number + 1) * per_page]
    if not len(chosen):
        return []
    big = np.ascontiguousarray(_upscale(images[chosen], scale))
    texts = [caption(t, *found[0], *found[1:]) for t, found in _labelled(chosen, probs, labels, class_names, probs_b)]
    return [(Image.fromarray(img), text) for img, text in zip(big, texts)]


def export_grid(
    images, indices, probs, labels, class_names, path, columns: int = 8, scale: int = 3, title: str = "", probs_b=None
) -> str:
    """Write one PNG grid of the selected images (at most EXPORT_LIMIT, in `indices` order) with a
    caption under each ("#index", "true: ...", "pred: ... (87%)", or "A: ..." and "B: ..." with
    `probs_b`), `title`'s lines on top (what was selected: sources, split, filter) and a line saying
    how many are shown; returns `path` (as text)."""
    columns, scale = _positive(columns, "columns"), _positive(scale, "scale")
    images, indices, probs, labels = _check(images, indices, probs, labels, class_names, probs_b)
    if not len(indices):
        raise UserError("no images selected to export; choose a source, split or confusion cell with errors")
    total = len(indices)
    chosen = indices[:EXPORT_LIMIT]
    big = _upscale(images[chosen], scale)
    font, title_font = ImageFont.load_default(CAPTION_SIZE), ImageFont.load_default(TITLE_SIZE)
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    labelled = _labelled(chosen, probs, labels, class_names, probs_b)
    names = ["pred"] if probs_b is None else ["A", "B"]
    captions = [
        (f"#{i}", f"true: {t}", *(f"{n}: {p} ({q:.0%})" for n, (p, q) in zip(names, found)))
        for i, (t, found) in zip(chosen, labelled)
    ]
    line_h = int(max(measure.textbbox((0, 0), "Ag#(%)", font=font)[3], 10)) + 2
    title_h = int(max(measure.textbbox((0, 0), "Ag#(%)", font=title_font)[3], 10)) + 3
    pad = 6
    text_w = max(measure.textlength(line, font=font) for lines in captions for line in lines)
    cell_w = int(max(big.shape[2], text_w)) + pad
    cell_h = big.shape[1] + len(captions[0]) * line_h + pad
    columns = min(columns, len(chosen))
    rows = math.ceil(len(chosen) / columns)
    count = (
        f"{total} images"
        if total <= EXPORT_LIMIT
        else f"first {EXPORT_LIMIT} of {total} images (an export holds at most {EXPORT_LIMIT})"
    )
    heading = [*str(title or "").splitlines(), count]
    header = len(heading) * title_h + pad
    width = max(columns * cell_w + pad, *(int(measure.textlength(line, font=title_font)) + 2 * pad for line in heading))
    canvas = Image.new("RGB", (width, header + rows * cell_h + pad), "white")
    draw = ImageDraw.Draw(canvas)
    for j, line in enumerate(heading):
        draw.text((pad, pad // 2 + j * title_h), line, fill="black", font=title_font)
    for n, (img, lines, (t, found)) in enumerate(zip(big, captions, labelled)):
        x = pad + (n % columns) * cell_w
        y = header + (n // columns) * cell_h
        canvas.paste(Image.fromarray(np.ascontiguousarray(img)), (x, y))
        for j, line in enumerate(lines):
            wrong = j >= 2 and found[j - 2][0] != t
            colour = (200, 0, 0) if wrong else "black"  # a wrong prediction in red
            draw.text((x, y + big.shape[1] + 1 + j * line_h), line, fill=colour, font=font)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path, format="PNG")
    return str(path)
