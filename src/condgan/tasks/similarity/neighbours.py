"""Nearest neighbours among the training images, kept in the run so that a resume does not recompute them.

Two users: the exemplar task (each image's neighbours in a similarity run's embedding: the real images G is
shown for it) and the self-supervised recipe (each image's neighbours in pixel space: another image of the
same kind, so that a second view can show what augmentations cannot make, another sandal rather than the
same one moved; `similarity.neighbour_views`). Files are keyed by what they were made from and are
recomputed, never trusted, when missing, stale or damaged.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from ...models.manifold import most_similar

PIXEL_SIDE = 32  # pixel neighbours are found among thumbnails no larger than this (the shape, not the texture)
PIXEL_DIMS = 64  # ... projected on their first principal components (centred pixels: less noise, faster search)
PIXEL_FILE = "view_neighbours.pt"  # selfsup: every training image's k nearest in pixel space, and their key


@torch.no_grad()
def nearest_neighbours(e: torch.Tensor, k: int, chunk: int = 2048) -> torch.Tensor:
    """(N, k) indices of each embedding's k most similar embeddings, itself included (it is its own nearest)."""
    return most_similar(e, e, k, chunk)[1]


def read_kept(path: Path, key: str) -> dict | None:
    """A kept neighbours file, if it was made with this key; a missing, stale or damaged file is None."""
    try:
        kept = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # missing or damaged: recomputed, never trusted
        return None
    return kept if isinstance(kept, dict) and kept.get("key") == key else None


def _thumbnails(images: torch.Tensor, chunk: int = 4096):
    """Chunks of the uint8 images (N, C, H, W) as float rows, shrunk to at most PIXEL_SIDE px a side."""
    for i in range(0, len(images), chunk):
        x = torch.as_tensor(images[i:i + chunk]).float().div(255)
        if max(x.shape[-2:]) > PIXEL_SIDE:
            x = F.interpolate(x, size=(PIXEL_SIDE, PIXEL_SIDE), mode="area")
        yield x.flatten(1).double()


@torch.no_grad()
def pixel_neighbours(images: torch.Tensor, k: int) -> torch.Tensor:
    """(N, k) indices of each image's k nearest other images: cosine similarity of centred thumbnails projected
    on their PIXEL_DIMS principal components (covariance summed chunk by chunk: a 32-px RGB set needs a
    3,072 x 3,072 matrix, never all images as floats at once)."""
    n = len(images)
    total = sum_outer = None
    for rows in _thumbnails(images):
        total = rows.sum(0) if total is None else total + rows.sum(0)
        sum_outer = rows.T @ rows if sum_outer is None else sum_outer + rows.T @ rows
    mean = total / n
    covariance = sum_outer / n - torch.outer(mean, mean)
    axes = torch.linalg.eigh(covariance).eigenvectors[:, -min(PIXEL_DIMS, len(mean)):]  # largest last
    e = F.normalize(torch.cat([(rows - mean) @ axes for rows in _thumbnails(images)]).float(), dim=1)
    return nearest_neighbours(e, min(k + 1, n))[:, 1:]  # drop the first: the image itself (or its exact copy)


def _key(images, k: int, chunk: int = 4096) -> str:
    """A short hash of the images (read chunk by chunk: they may be a disk cache), k and how neighbours are found."""
    h = hashlib.sha1(f"{tuple(images.shape)}/{k}/{PIXEL_SIDE}/{PIXEL_DIMS}".encode())
    for i in range(0, len(images), chunk):
        h.update(torch.as_tensor(images[i:i + chunk]).contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def kept_pixel_neighbours(images: torch.Tensor, k: int, out: Path, rank: int = 0) -> tuple[torch.Tensor, str]:
    """pixel_neighbours, reused from the run's PIXEL_FILE when it was made from these images and k; and a line
    saying which."""
    from ...training.atomic import atomic_save

    key = _key(images, k)
    path = Path(out) / PIXEL_FILE
    kept = read_kept(path, key)
    if kept is not None:
        return kept["knn"].long(), f"reused the {k} nearest neighbours in pixel space of {len(images):,} images kept in {path}"
    started = time.monotonic()
    knn = pixel_neighbours(images, k)
    if rank == 0:
        Path(out).mkdir(parents=True, exist_ok=True)
        atomic_save({"key": key, "knn": knn.int()}, path)
    return knn, (f"found each of {len(images):,} images' {k} nearest neighbours in pixel space in "
                 f"{time.monotonic() - started:.1f} s (kept in {path})")
