"""A CSV of labelled images, as people keep them: `path,label[,split]` (the class-conditional task's --data).

Paths are relative to the CSV's folder. Without a `split` column every 10th row of each class is the
'test' split, as in class folders. Images are read like class folders' (any Pillow mode, the channels
from their content, centre-cropped to a square of data.image_size, default 64); bad rows: csv_rows.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .. import untrusted
from ..errors import DataError
from .csv_rows import BadRows, choose_split, file_of, label_names, read_rows
from .folders import _center_square, decide_channels
from .images import decode, to_array
from .imageset import ImageSet

COLUMNS = ("path", "label")


def load_class_csv(path: Path, split: str = "train", image_size: int | None = None, channels: int | None = None,
                   bad_files: str = "skip", paths_outside: str | None = "warn") -> ImageSet:
    """The `split` ('train', 'test' or 'all') of the labelled images a CSV lists."""
    path = Path(path)
    bad = BadRows(path, bad_files)
    rows = read_rows(path, COLUMNS, ("split",), bad)
    names = label_names(r["label"] for _, r in rows)
    if len(names) < 2:
        raise DataError(f"{path}: every row has the label {untrusted.shown(names[0], 60)}; a conditional model "
                        f"needs at least 2 classes")
    untrusted.paths_outside(path, [(n, r["path"]) for n, r in rows], paths_outside)
    if channels is None:  # from every listed image, so both splits get the same channels
        listed = [file_of(path, r["path"]) for _, r in rows]
        channels = decide_channels([[f for f in listed if f.is_file()]])
    index = {name: i for i, name in enumerate(names)}
    size = image_size or 64
    images, labels, tried = [], [], set()
    for n, r in choose_split(rows, split, group=lambda r: r["label"]):
        f, label = file_of(path, r["path"]), index[r["label"]]
        tried.add(label)
        if not f.is_file():
            bad.add(n, f"image {untrusted.shown(r['path'], 120)} does not exist (looked for {f}; paths are "
                       f"relative to the CSV's folder)")
            continue
        try:
            images.append(to_array(_center_square(decode(f, channels)), (size, size)))
        except DataError as e:
            bad.add(n, str(e))
            continue
        labels.append(label)
    bad.warn()
    empty = sorted(tried - set(labels))
    if empty:
        raise DataError(f"{path}: class {untrusted.shown(names[empty[0]], 60)} has no readable images in the {split!r} split")
    if not labels:
        raise DataError(f"{path}: no rows in the {split!r} split")
    return ImageSet(torch.from_numpy(np.stack(images)), torch.tensor(labels, dtype=torch.int64), names, name=str(path))
