"""A source image derived from each grey garment by a fixed, deterministic rule: its silhouette or its edge map.

The built-in pairs (paired.py) and the built-in two-label sets (twolabel.py) derive their sources and
intermediates from real Fashion-MNIST this way, so they need no extra download; the two-stage
evaluation scores a drawn intermediate against the same rule.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage as ndi

from ..errors import DataError

MASK_LEVEL = 10     # grey level (of 255) above which a pixel belongs to the garment
SPECK_LEVEL = 64    # a tiny blob no brighter than this is noise, not part of the garment
EDGE_SIGMA = 0.8    # Gaussian smoothing (pixels) before the Sobel filter, so texture noise does not fire
EDGE_LEVEL = 0.8    # Sobel magnitude (image in [0, 1]) that counts as an edge: a step of roughly a quarter of full range
DERIVE_CHUNK = 10_000  # images derived at once: bounds the float working memory to ~100 MB

_CROSS = ndi.generate_binary_structure(2, 1)[None]  # 4-neighbours within one image of an (N, H, W) stack
_SQUARE = np.zeros((3, 3, 3), dtype=bool)           # 8-neighbours within one image
_SQUARE[1] = True


def derive_source(images_uint8: torch.Tensor, kind: str) -> torch.Tensor:
    """A deterministic source image for each grey garment: its silhouette ('masks') or edge map ('edges').

    images_uint8: uint8 (N, 1, H, W) on a dark background; returns uint8 (N, 1, H, W) with values 0 or 255.
    """
    if kind not in ("edges", "masks"):
        raise DataError(f"source kind must be 'edges' or 'masks', not {kind!r}")
    if images_uint8.dtype != torch.uint8 or images_uint8.dim() != 4 or images_uint8.shape[1] != 1:
        raise DataError(f"derive_source needs grey uint8 (N, 1, H, W) images, got {tuple(images_uint8.shape)} "
                        f"{images_uint8.dtype}")
    derive = _edge_map if kind == "edges" else _silhouette
    chunks = [derive(chunk[:, 0].cpu().numpy()) for chunk in images_uint8.split(DERIVE_CHUNK)]
    on = np.concatenate(chunks) if chunks else np.zeros(images_uint8.shape[:1] + images_uint8.shape[2:], bool)
    return torch.from_numpy(on.astype(np.uint8) * 255)[:, None]


def _silhouette(grey: np.ndarray) -> np.ndarray:
    """Garment shape of each (H, W) image in an (N, H, W) stack: above a low grey level, holes filled, no specks."""
    inside = ndi.binary_fill_holes(grey > MASK_LEVEL, structure=_CROSS)
    return _drop_specks(inside, grey)


def _drop_specks(mask: np.ndarray, grey: np.ndarray) -> np.ndarray:
    """Remove tiny dim blobs (stray noise pixels); small but bright blobs are garment parts and stay.

    So every pixel brighter than SPECK_LEVEL is always inside the silhouette.
    """
    labels, count = ndi.label(mask, structure=_SQUARE)
    sizes = np.bincount(labels.ravel(), minlength=count + 1)
    peaks = np.zeros(count + 1, np.uint8)
    np.maximum.at(peaks, labels.ravel(), grey.ravel())
    largest_speck = max(1, mask.shape[1] * mask.shape[2] // 256)  # 3 pixels at 28x28
    is_speck = (sizes <= largest_speck) & (peaks <= SPECK_LEVEL)
    is_speck[0] = False  # the background
    return mask & ~is_speck[labels]


def _edge_map(grey: np.ndarray) -> np.ndarray:
    """Binary edges of each garment: strong Sobel gradients of the lightly smoothed image, plus the silhouette outline.

    The gradients keep the inner lines (zips, collars, straps) that tell similar classes apart;
    the outline guarantees the shape is there even for dark, low-contrast garments.
    """
    smooth = grey.astype(np.float32) / 255.0
    for axis in (1, 2):
        smooth = ndi.gaussian_filter1d(smooth, EDGE_SIGMA, axis=axis, truncate=2.5)
    strength = np.hypot(_sobel(smooth, along=2, across=1), _sobel(smooth, along=1, across=2))
    shape = _silhouette(grey)
    outline = shape & ~ndi.binary_erosion(shape, structure=_CROSS)
    return (strength > EDGE_LEVEL) | outline


def _sobel(images: np.ndarray, along: int, across: int) -> np.ndarray:
    """Sobel derivative along one image axis of an (N, H, W) stack (never mixing neighbouring images)."""
    return ndi.correlate1d(ndi.correlate1d(images, [-1.0, 0.0, 1.0], axis=along), [1.0, 2.0, 1.0], axis=across)
