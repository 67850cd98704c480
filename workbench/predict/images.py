"""Uploaded pictures -> the dataset's uint8 image size, refusing what is not a picture or too big.

    picture = read_upload(path, size=32)    # .pixels uint8 [32, 32, 3]; .display uint8 [DISPLAY, DISPLAY, 3]

An upload reaches us as a file Gradio has already written into its own temporary folder (its cache,
`GRADIO_TEMP_DIR`); nothing here writes anything. Before any pixel is decoded the file's size and the
image's dimensions (read from its header) are checked, so a small file that would decode to gigabytes
(an image bomb) is refused from its header. PIL's own guard (`Image.MAX_IMAGE_PIXELS`: a warning above
it, `DecompressionBombError` above twice it) is turned into the same refusal rather than a warning.
Pictures are centre-cropped to a square (CIFAR's images are square; a stretched photo looks like no
training image) and resized with bicubic filtering, as image folders are when a dataset is decoded.
"""

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from workbench.errors import UserError

MAX_FILE_BYTES = 20 * 1024 * 1024  # an upload larger than this is refused before it is opened
MAX_PIXELS = 40_000_000  # width x height from the header; a 40-megapixel photo still passes
MAX_IMAGES = 16  # pictures per request
DISPLAY = 224  # the side of the picture shown with its class-activation map


@dataclass
class Picture:
    name: str
    pixels: np.ndarray  # uint8 [size, size, 3]: what the model's pipeline gets
    display: np.ndarray  # uint8 [DISPLAY, DISPLAY, 3]: the same square, larger, for the overlay


def _square(image: Image.Image) -> Image.Image:
    width, height = image.size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    return image.crop((left, top, left + side, top + side))


def from_image(image: Image.Image, name: str, size: int) -> Picture:
    """A decoded PIL image as a Picture (RGB, centre square, `size` and DISPLAY pixels a side)."""
    square = _square(image.convert("RGB"))
    pixels = square.resize((size, size), Image.Resampling.BICUBIC, reducing_gap=3.0)
    display = square.resize((DISPLAY, DISPLAY), Image.Resampling.BICUBIC, reducing_gap=3.0)
    return Picture(name, np.asarray(pixels, np.uint8), np.asarray(display, np.uint8))


def from_array(pixels: np.ndarray, name: str) -> Picture:
    """A dataset image (uint8 [H, W, 3]) as a Picture: its pixels as they are, enlarged for display."""
    image = Image.fromarray(np.asarray(pixels, np.uint8))
    display = image.resize((DISPLAY, DISPLAY), Image.Resampling.BICUBIC)
    return Picture(name, np.asarray(pixels, np.uint8), np.asarray(display, np.uint8))


def read_upload(path, size: int = 32, *, name: str | None = None) -> Picture:
    """The picture in file `path`, or a UserError saying why it is refused (not an image, a file
    over MAX_FILE_BYTES, dimensions over MAX_PIXELS, a damaged file)."""
    path = Path(path)
    name = name or path.name
    try:
        length = path.stat().st_size
    except OSError as exc:
        raise UserError(f"{name}: the upload cannot be read ({exc.strerror or exc}); upload it again") from None
    if length > MAX_FILE_BYTES:
        raise UserError(
            f"{name} is {length / 2**20:.1f} MB; pictures up to {MAX_FILE_BYTES // 2**20} MB are "
            "accepted (a CIFAR model sees 32x32 pixels: a smaller copy predicts the same)"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:  # reads the header only
                width, height = image.size
                if width * height > MAX_PIXELS:
                    raise UserError(
                        f"{name} is {width:,} x {height:,} pixels; pictures up to "
                        f"{MAX_PIXELS / 1e6:.0f} megapixels are accepted (this one would take "
                        f"{width * height * 3 / 2**30:.1f} GB to decode)"
                    )
                if image.format in ("JPEG", "MPO"):
                    image.draft("RGB", (max(size, DISPLAY), max(size, DISPLAY)))  # decode at a reduced scale
                image.seek(0)  # an animation: its first frame
                image.load()
                return from_image(image, name, size)
    except UserError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise UserError(f"{name} decodes to more pixels than PIL allows (a decompression bomb?); refused") from None
    except UnidentifiedImageError:
        raise UserError(f"{name} is not an image PIL can read (PNG, JPEG, GIF, BMP, WebP, TIFF...)") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise UserError(f"{name} is a damaged or truncated image ({exc})") from None


def read_uploads(paths, size: int = 32) -> tuple:
    """(pictures, refusals): every readable picture of `paths` (at most MAX_IMAGES), and one line per
    refused file, so one bad file among good ones does not hide the others' predictions."""
    paths = [p for p in (paths or []) if p]
    if len(paths) > MAX_IMAGES:
        raise UserError(f"{len(paths)} files uploaded; predict at most {MAX_IMAGES} at a time")
    pictures, refusals = [], []
    for path in paths:
        try:
            pictures.append(read_upload(path, size))
        except UserError as exc:
            refusals.append(str(exc))
    return pictures, refusals
