"""`condgan apply`: run a translator over a user's files or over a split of its own dataset."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .data.imageset import to_uint8
from .errors import DataError, UserError
from .progress import progress

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
BATCH = 256


def _hwc(images_uint8: torch.Tensor) -> np.ndarray:
    """(N, C, H, W) -> N×H×W (grey) or N×H×W×3, the layout image tools expect."""
    arr = images_uint8.permute(0, 2, 3, 1).numpy()
    return arr[..., 0] if arr.shape[-1] == 1 else arr


def collect_inputs(inputs: list[Path]) -> list[tuple[Path, Path]]:
    """(file, output path relative to --out): a folder's images keep their sub-folders; names become .png."""
    found = []
    for p in inputs:
        if p.is_dir():
            files = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES and not f.name.startswith("."))
            found += [(f, f.relative_to(p).with_suffix(".png")) for f in files]
        elif p.is_file():
            found.append((p, Path(p.name).with_suffix(".png")))
        else:
            raise UserError(f"input {p} does not exist")
    if not found:
        raise UserError(f"no images found in {', '.join(map(str, inputs))} (looked for {', '.join(sorted(IMAGE_SUFFIXES))})")
    names = [rel for _, rel in found]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise UserError(f"two inputs would both be written as {dup}; give them different names")
    return found


def apply_to_files(tr, inputs: list[Path], out: Path, seed: int = 0, label: str | None = None) -> tuple[list[Path], list[str]]:
    """Translate every input image; unreadable files are skipped with a warning, never half-written."""
    from .data.images import read_image

    found = collect_inputs(inputs)
    sources = {f.resolve() for f, _ in found}
    clash = next((f for f, rel in found if (out / rel).resolve() in sources), None)
    if clash is not None:
        raise UserError(f"writing into {out} would overwrite the input {clash}; choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    written, skipped = [], []
    for start in progress(range(0, len(found), BATCH), desc="translating", unit="batch"):
        chunk, arrays = [], []
        for f, rel in found[start:start + BATCH]:
            try:
                arrays.append(read_image(f, tr.source.channels, tr.source.size))
                chunk.append(rel)
            except DataError as e:
                skipped.append(str(e))
        if not chunk:
            continue
        sources = torch.from_numpy(np.stack(arrays))
        labels = [label] * len(chunk) if label is not None else None
        outputs = _hwc(to_uint8(tr.translate(sources, seed=None if seed is None else seed + start, labels=labels)))
        for rel, image in zip(chunk, outputs):
            target = out / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(target)
            written.append(target)
    if not written:
        raise UserError(f"no readable images among the {len(found)} input file(s); the first: {skipped[0] if skipped else '?'}")
    for message in skipped[:10]:
        warnings.warn(f"skipped {message}", stacklevel=2)
    return written, skipped


def apply_to_split(tr, split: str, out: Path, seed: int = 0) -> int:
    """The translator's outputs for a split of its dataset, beside the sources and targets, as one .npz."""
    pairs = tr.pairs(split)
    outputs = []
    has_labels = pairs.labels is not None and tr.uses_label
    for start in progress(range(0, len(pairs), BATCH), desc="translating", unit="batch"):
        labels = pairs.labels[start:start + BATCH].tolist() if has_labels else None
        outputs.append(to_uint8(tr.translate(pairs.sources[start:start + BATCH], seed=seed + start, labels=labels)))
    arrays = {"images": _hwc(torch.cat(outputs)), "sources": _hwc(pairs.sources), "targets": _hwc(pairs.targets)}
    if pairs.labels is not None:
        arrays.update(labels=pairs.labels.numpy().astype(np.int64), class_names=np.array(pairs.class_names))
    np.savez_compressed(out, **arrays)
    return len(pairs)
