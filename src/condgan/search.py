"""Nearest-image search with an embedder: an index over a folder, built once and reused.

Embedding a folder is the slow part of a search, so the embeddings are cached
in $CONDGAN_CACHE/search (default ~/.cache/condgan/search), keyed by the
folder's absolute path and the embedder's weights. The cache records the
folder's listing (names, sizes, modification times): when a file is added,
removed or changed, the index is rebuilt. Search itself is exact (one matrix
product with every stored embedding), which is fast to a few hundred thousand
images and needs no extra library.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path

import numpy as np
import torch

from .errors import DataError, UserError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
MAX_INDEX_IMAGES = 1_000_000
BATCH = 500


def cache_root() -> Path:
    return Path(os.environ.get("CONDGAN_CACHE") or Path.home() / ".cache" / "condgan").expanduser() / "search"


def list_images(folder: Path) -> list[Path]:
    """Image files under `folder` (sub-folders included, hidden files not), sorted; clear errors otherwise."""
    folder = Path(folder)
    if not folder.exists():
        raise UserError(f"search folder {folder} does not exist")
    if not folder.is_dir():
        raise UserError(f"--in {folder} is a file; give a folder of images to search")
    files = sorted(f for f in folder.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES
                   and not any(part.startswith(".") for part in f.relative_to(folder).parts))
    if not files:
        raise UserError(f"no images to search in {folder} (looked for {', '.join(sorted(IMAGE_SUFFIXES))})")
    if len(files) > MAX_INDEX_IMAGES:
        raise UserError(f"{folder} holds {len(files):,} images; an index takes at most {MAX_INDEX_IMAGES:,}")
    return files


def _listing(folder: Path, files: list[Path]) -> str:
    """A fingerprint of what the folder holds: changes when any file is added, removed or modified."""
    h = hashlib.sha1()
    for f in files:
        st = f.stat()
        h.update(f"{f.relative_to(folder)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


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
                 reused: bool = False):
        self.embeddings, self.names, self.root, self.reused = embeddings, names, root, reused

    def __len__(self) -> int:
        return len(self.embeddings)

    def nearest(self, query: torch.Tensor, k: int) -> list[dict]:
        scores = self.embeddings @ query
        top = scores.topk(min(k, len(scores)))
        out = []
        for score, i in zip(top.values.tolist(), top.indices.tolist()):
            item = {"score": round(score, 6)}
            if self.names is not None:
                item["path"] = str(self.root / self.names[i])
            else:
                item["index"] = i
            out.append(item)
        return out

    @classmethod
    def for_within(cls, embedder, within) -> "SearchIndex":
        if within is None:  # the run's own training images
            from .data.similar import load_images
            from .config import Config, DataConfig

            if not embedder.data.get("name"):
                raise UserError("this model does not say where its training data is (an export); pass within=FOLDER")
            config = Config(data=DataConfig(**{k: v for k, v in embedder.data.items() if v is not None}))
            return cls(embedder.embed(load_images(config, "train").images))
        if isinstance(within, (str, Path)):
            return cls.of_folder(embedder, Path(within))
        return cls(embedder.embed(within))

    @classmethod
    def of_folder(cls, embedder, folder: Path, progress: bool = False) -> "SearchIndex":
        """The cached index of a folder, or a new one (cached) when there is none or the folder changed."""
        from .data.images import read_image
        from .progress import progress as bar

        folder = Path(folder)
        files = list_images(folder)
        listing, key = _listing(folder, files), _model_key(embedder)
        where = cache_root() / f"{hashlib.sha1(str(folder.resolve()).encode()).hexdigest()[:16]}-{key}.pt"
        if where.is_file():
            try:
                cached = torch.load(where, map_location="cpu", weights_only=True)
                if cached.get("listing") == listing:
                    return cls(cached["embeddings"], list(cached["names"]), folder, reused=True)
            except Exception:  # a damaged cache is rebuilt, never trusted
                pass
        image = embedder.spec["image"]
        names, chunks, skipped = [], [], []
        for start in bar(range(0, len(files), BATCH), desc="indexing", unit="batch", disable=not progress):
            arrays = []
            for f in files[start:start + BATCH]:
                try:
                    arrays.append(read_image(f, image.channels, image.size))
                    names.append(str(f.relative_to(folder)))
                except DataError as e:
                    skipped.append(str(e))
            if arrays:
                chunks.append(embedder.embed(torch.from_numpy(np.stack(arrays))))
        for message in skipped[:10]:
            warnings.warn(f"skipped {message}", stacklevel=2)
        if not names:
            raise UserError(f"none of the {len(files)} image file(s) in {folder} could be read; the first: {skipped[0]}")
        embeddings = torch.cat(chunks)
        try:
            where.parent.mkdir(parents=True, exist_ok=True)
            tmp = where.with_name(f".{where.name}.tmp-{os.getpid()}")
            torch.save({"listing": listing, "names": names, "embeddings": embeddings}, tmp)
            os.replace(tmp, where)
        except OSError as e:  # a read-only cache only costs the next search its time
            warnings.warn(f"could not cache the search index in {where.parent} ({e.strerror})", stacklevel=2)
        return cls(embeddings, names, folder)
