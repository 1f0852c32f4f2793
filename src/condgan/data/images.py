"""Reading one image file, shared by every loader that reads the user's files (folders, pairs, manifests).

Any Pillow mode is accepted, the EXIF orientation is applied (phone photos come out upright, as viewers
show them) and decompression bombs are refused; whatever Pillow raises for a bad file becomes one
DataError naming the file.
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import ExifTags, Image, ImageOps

from ..errors import DataError

# Pillow warns above MAX_IMAGE_PIXELS and raises above twice that. We turn the
# warning into an error too: a 90-megapixel "photo" in a dataset is an attack
# or a mistake, not a training image.
MAX_PIXELS = 64_000_000


def normalise_mode(im: Image.Image, channels: int) -> Image.Image:
    """Any Pillow mode as L (channels=1) or RGB: 16-bit scaled down, transparency composited on white."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(im, dtype=np.float64)
        top = 65535.0 if im.mode.startswith("I;16") or arr.max() > 255 else 255.0
        im = Image.fromarray(np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    if im.mode == "P" and "transparency" in im.info:
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "LA", "PA"):  # transparent pixels become white, as viewers show them
        background = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(background, im.convert("RGBA"))
    return im.convert("L" if channels == 1 else "RGB")


def read_image(path, channels: int, size: tuple[int, int] | None = None) -> np.ndarray:
    """One image file as uint8 (channels, H, W): any Pillow mode, EXIF orientation applied, resized to size=(H, W)."""
    if channels not in (1, 3):
        raise DataError(f"channels must be 1 or 3, not {channels}")
    return to_array(decode(Path(path), channels), size)


@contextmanager
def _reading(path: Path):
    """Turn whatever Pillow raises for a bad file into one DataError naming the file."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    except DataError:
        raise
    except (OSError, ValueError, SyntaxError, KeyError, IndexError, TypeError,
            Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise DataError(f"{path}: not a readable image ({type(e).__name__}: {e})") from None


def _open(path, name=None) -> Image.Image:
    """Open lazily (header only), refusing decompression bombs as folders.load_image does."""
    im = Image.open(path)
    if im.width * im.height > MAX_PIXELS:
        im.close()
        raise DataError(f"{name or path}: {im.width}x{im.height} pixels is too large (limit {MAX_PIXELS}); "
                        f"possible decompression bomb")
    return im


def header_size(path: Path) -> tuple[int, int]:
    """(H, W) as the image will be shown, i.e. after its EXIF orientation, without decoding pixels."""
    with _reading(path), _open(path) as im:
        w, h = im.size
        turned = im.getexif().get(ExifTags.Base.Orientation, 1) in (5, 6, 7, 8)
    return (w, h) if turned else (h, w)


def decode(path, channels: int, name: str | None = None) -> Image.Image:
    """The decoded image upright (EXIF orientation applied), as L (channels=1) or RGB (channels=3).
    `path` may be a file object (an image held in memory, e.g. a dataset's cell), with `name` to show in errors."""
    with _reading(name or path), _open(path, name) as im:
        return normalise_mode(ImageOps.exif_transpose(im), channels)


def to_array(im: Image.Image, size: tuple[int, int] | None) -> np.ndarray:
    """uint8 (C, H, W), resized with LANCZOS (no cropping) when size=(H, W) differs."""
    if size is not None and (im.height, im.width) != tuple(size):
        im = im.resize((size[1], size[0]), Image.Resampling.LANCZOS)
    arr = np.asarray(im, dtype=np.uint8)
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


def resize_square(images: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 (N, C, H, W) -> uint8 (N, C, size, size), bilinear with antialiasing."""
    out = F.interpolate(images.float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return out.round().clamp(0, 255).to(torch.uint8)
