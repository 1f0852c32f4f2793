"""Nearest-image search with an embedder: an index over a folder, built once and kept up to date.

Embedding a folder is the slow part of a search, so the embeddings are kept
(cache.py: where, and the bound on how much), keyed by the folder's absolute
path and the embedder's weights. Each file's entry records its size and
modification time: a file added or changed (either differs) is embedded again,
a removed one dropped, the rest reused. Search itself is exact (one matrix
product with every stored embedding), which is fast to a few hundred thousand
images and needs no extra library.
"""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import numpy as np
import torch

from ..errors import DataError, UserError
from . import cache

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
MAX_INDEX_IMAGES = 1_000_000
BATCH = 500


def list_images(folder: Path) -> list[Path]:
    """Image files under `folder` (sub-folders included, hidden files not), sorted; clear errors otherwise."""
    folder = Path(folder)
    if not folder.exists():
        raise UserError(f"search folder {folder} does not exist")
    if not folder.is_dir():
        raise UserError(f"search folder {folder} is a file; give a folder of images to search")
    files = sorted(f for f in folder.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES
                   and not any(part.startswith(".") for part in f.relative_to(folder).parts))
    if not files:
        raise UserError(f"no images to search in {folder} (looked for {', '.join(sorted(IMAGE_SUFFIXES))})")
    if len(files) > MAX_INDEX_IMAGES:
        raise UserError(f"{folder} holds {len(files):,} images; an index takes at most {MAX_INDEX_IMAGES:,}")
    return files


def _stats(folder: Path, files: list[Path]) -> dict[str, tuple[int, int]]:
    """Each file's (size, modification time in ns) by its path under the folder: what says it changed."""
    out = {}
    for f in files:
        st = f.stat()
        out[str(f.relative_to(folder))] = (st.st_size, st.st_mtime_ns)
    return out


def digest(named: dict) -> str:
    """A short hash of named tensors (names, shapes, dtypes, bytes): equal only for the same numbers. Keys
    caches of embeddings: an embedder's weights, the images it embedded."""
    h = hashlib.sha1()
    for name, t in sorted(named.items()):
        t = t.detach().cpu().contiguous()
        h.update(f"{name}\0{tuple(t.shape)}\0{t.dtype}\n".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


def _model_key(embedder) -> str:
    return digest(embedder.net.state_dict())


class SearchIndex:
    """Embeddings of a gallery, and what each one is (a path under a folder, or an index)."""

    def __init__(self, embeddings: torch.Tensor, names: list[str] | None = None, root: Path | None = None,
                 embedded: int | None = None, removed: int = 0):
        self.embeddings, self.names, self.root = embeddings, names, root
        self.embedded = len(embeddings) if embedded is None else embedded  # images embedded now, not reused
        self.removed = removed  # entries dropped from the kept index: files no longer there

    @property
    def reused(self) -> bool:
        """Nothing had to be embedded: the kept index was up to date."""
        return self.embedded == 0

    def __len__(self) -> int:
        return len(self.embeddings)

    def nearest(self, query: torch.Tensor, k: int) -> list[dict]:
        scores = self.embeddings @ query
        top = scores.topk(min(k, len(scores)))
        out = []
        for score, i in zip(top.values.tolist(), top.indices.tolist()):
            item = {"score": round(score, 6), "index": i}  # a folder's: its position in the sorted listing (names)
            if self.names is not None:
                item["path"] = str(self.root / self.names[i])
            out.append(item)
        return out

    @classmethod
    def for_within(cls, embedder, within) -> "SearchIndex":
        if within is None:  # the run's own training images
            from ..data.similar import load_images
            from ..config import Config, DataConfig

            if not embedder.data.get("name"):
                raise UserError("this model does not say where its training data is (an export); pass within=FOLDER")
            config = Config(data=DataConfig(**{k: v for k, v in embedder.data.items() if v is not None}))
            return cls(embedder.embed(load_images(config, "train").images))
        if isinstance(within, (str, Path)):
            return cls.of_folder(embedder, Path(within))
        return cls(embedder.embed(within))

    @classmethod
    def of_folder(cls, embedder, folder: Path, progress: bool = False) -> "SearchIndex":
        """The folder's index: the kept one, with new or changed files embedded and removed ones dropped, kept
        again; then the cache is pruned to its bound (cache.py)."""
        folder = Path(folder)
        files = list_images(folder)
        stats = _stats(folder, files)
        max_bytes, max_age_s = cache.limits()  # a mistake in them is said before any work
        where = cache.cache_root() / f"{hashlib.sha1(str(folder.resolve()).encode()).hexdigest()[:16]}-{_model_key(embedder)}.pt"
        kept = cache.read(where) or {"names": [], "stats": [], "embeddings": torch.zeros(0, embedder.dim)}
        old = {n: (tuple(st), i) for i, (n, st) in enumerate(zip(kept["names"], kept["stats"]))}
        reusable = {n: old[n][1] for n, st in stats.items() if n in old and old[n][0] == st}
        new, skipped = _embed_files(embedder, folder, [f for f in files if str(f.relative_to(folder)) not in reusable], progress)
        names = [n for n in stats if n in reusable or n in new]
        if not names:
            raise UserError(f"none of the {len(files)} image file(s) in {folder} could be read; the first: {skipped[0]}")
        embeddings = torch.stack([kept["embeddings"][reusable[n]] if n in reusable else new[n] for n in names])
        if len(reusable) < len(old) or new:  # something changed: keep the index as it is now
            cache.write(where, {"names": names, "stats": [list(stats[n]) for n in names], "embeddings": embeddings})
        cache.prune(where.parent, where, max_bytes, max_age_s)
        return cls(embeddings, names, folder, embedded=len(new), removed=sum(1 for n in old if n not in stats))


def _embed_files(embedder, folder: Path, files: list[Path], progress: bool) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Embeddings of these files by their path under the folder, and why each unreadable one was skipped
    (the first ten are warned about)."""
    from ..data.images import read_image
    from ..progress import progress as bar

    image = embedder.spec["image"]
    out, skipped = {}, []
    for start in bar(range(0, len(files), BATCH), desc="indexing", unit="batch", disable=not progress or not files):
        arrays, names = [], []
        for f in files[start:start + BATCH]:
            try:
                arrays.append(read_image(f, image.channels, image.size))
                names.append(str(f.relative_to(folder)))
            except DataError as e:
                skipped.append(str(e))
        if arrays:
            out.update(zip(names, embedder.embed(torch.from_numpy(np.stack(arrays)))))
    for message in skipped[:10]:
        warnings.warn(f"skipped {message}", stacklevel=3)
    return out, skipped
