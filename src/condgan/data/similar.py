"""What a similarity run learns from: images with or without classes, or a CSV of pairs or triplets.

(Also read by the exemplar task, its evaluation, and `condgan search`, which shows a run's own images.)
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import torch

from .. import untrusted
from ..conditions import ImageField, Spec
from ..errors import DataError
from .folders import _is_grayscale, is_unlabelled_folder, load_unlabelled_folder
from .images import read_image
from .registry import load_dataset

MAX_CSV_BYTES = 50_000_000
PAIR_HEADER = ("image_a", "image_b", "similar")
TRIPLET_HEADER = ("anchor", "positive", "negative")
TRUE, FALSE = {"1", "true", "yes", "same", "similar"}, {"0", "false", "no", "different", "dissimilar"}


def load_images(config, split: str):
    """The run's images: a built-in dataset, a folder of class sub-folders, or a folder of images without classes."""
    d = config.data
    path = Path(d.data_dir or d.name).expanduser()
    if d.name.lower() not in ("fashion-mnist", "mnist") and is_unlabelled_folder(path):
        return load_unlabelled_folder(path, split, d.image_size, d.channels, d.bad_files)
    return load_dataset(d.name, split, d.data_dir, d.classes, d.image_size, d.channels, d.bad_files)


def read_csv(path: str | Path, split: str, image_size: int | None, channels: int | None, paths_outside: str | None = "warn"):
    """Fields from a CSV of pairs (image_a,image_b,similar) or triplets (anchor,positive,negative).

    Paths are relative to the CSV's folder (rows naming files outside it: untrusted.paths_outside); every
    10th row is held out as the 'test' split. Each image file is read once. Every mistake names the file and line."""
    path = Path(path).expanduser()
    text = untrusted.read_text(path, "similarity.pairs CSV", MAX_CSV_BYTES)
    reader = csv.reader(io.StringIO(text))
    numbered = [(reader.line_num, r) for r in reader if any(c.strip() for c in r)]  # (line in the file, row)
    rows = [r for _, r in numbered]
    if not rows:
        raise DataError(f"{path} is empty; its first line must be {','.join(PAIR_HEADER)} or {','.join(TRIPLET_HEADER)}")
    header = tuple(c.strip().lower() for c in rows[0])
    if header not in (PAIR_HEADER, TRIPLET_HEADER):
        raise DataError(f"{path}: the first line must be the header {','.join(PAIR_HEADER)} (pairs) or "
                        f"{','.join(TRIPLET_HEADER)} (triplets), not {untrusted.shown(','.join(rows[0]), 80)}")
    pairs = header == PAIR_HEADER
    body = numbered[1:]
    body = [(line, r) for j, (line, r) in enumerate(body) if split == "all" or (j % 10 == 9) == (split == "test")]
    if not body:
        raise DataError(f"{path}: no rows in the {split!r} split (every 10th row is held out for testing; "
                        f"the CSV has {len(rows) - 1} rows)")
    files: dict[str, Path] = {}
    for line, r in body:
        if len(r) != 3:
            raise DataError(f"{path} line {line}: expected 3 columns ({','.join(header)}), found {len(r)}")
        for cell in (r[:2] if pairs else r):
            name = cell.strip()
            f = Path(name).expanduser()
            f = f if f.is_absolute() else path.parent / f
            if not name or not f.is_file():
                raise DataError(f"{path} line {line}: image {untrusted.shown(name, 120)} does not exist "
                                f"(paths are relative to the CSV's folder, {path.parent})")
            files.setdefault(name, f)
        if pairs and r[2].strip().lower() not in TRUE | FALSE:
            raise DataError(f"{path} line {line}: 'similar' must be 1/0, true/false or yes/no, not {untrusted.shown(r[2], 40)}")
    untrusted.paths_outside(path, [(line, cell.strip()) for line, r in body for cell in (r[:2] if pairs else r)], paths_outside)
    if channels is None:
        channels = 1 if all(_is_grayscale(f) is not False for f in list(files.values())[:50]) else 3
    size = image_size or 64
    loaded = {}
    for name, f in files.items():
        try:
            loaded[name] = torch.from_numpy(np.array(read_image(f, channels, (size, size))))
        except DataError as e:
            raise DataError(f"{e} (named in {path})") from None

    def column(i: int) -> torch.Tensor:
        return torch.stack([loaded[r[i].strip()] for _, r in body])

    spec = Spec(image=ImageField(channels, size, size))
    if pairs:
        similar = torch.tensor([r[2].strip().lower() in TRUE for _, r in body], dtype=torch.int64)
        return {"image": column(0), "other": column(1), "similar": similar}, spec
    return {"image": column(0), "positive": column(1), "negative": column(2)}, spec
