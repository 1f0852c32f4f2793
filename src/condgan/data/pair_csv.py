"""A CSV of image pairs, as people keep them: `source,target[,label][,split]` (the translate task's --data).

Paths are relative to the CSV's folder; without a `split` column every 10th row is the 'test' split, as
for pair folders. The pairs are decoded like pair folders' (one common size, channels per side); a label
column gives the pairs classes (sorted names). Bad rows: csv_rows.py.
"""

from __future__ import annotations

from pathlib import Path

import torch

from .. import untrusted
from ..errors import DataError
from .csv_rows import BadRows, choose_split, file_of, label_names, read_rows
from .pair_folders import _Candidate, _Problems, decode_pairs

COLUMNS = ("source", "target")


def read_pair_csv(path: Path, split: str, image_size: int | None, bad_files: str = "skip",
                  paths_outside: str | None = "warn") -> dict:
    """The pairs of `split` a CSV lists: sources, targets, names, and labels with class names when labelled
    (keyword arguments for a PairSet)."""
    bad = BadRows(path, bad_files)
    rows = read_rows(path, COLUMNS, ("label", "split"), bad)
    labelled = "label" in rows[0][1]
    if labelled:
        for n, _ in (row for row in rows if not row[1]["label"]):
            bad.add(n, "empty label (label every pair, or leave the label column out)")
        rows = [(n, r) for n, r in rows if r["label"]]
    names = label_names(r["label"] for _, r in rows) if labelled else None
    untrusted.paths_outside(path, [(n, r[c]) for n, r in rows for c in COLUMNS], paths_outside)
    candidates, by_line = [], {}
    for n, r in choose_split(rows, split):
        a, b = file_of(path, r["source"]), file_of(path, r["target"])
        lost = [r[c] for c, f in zip(COLUMNS, (a, b)) if not f.is_file()]
        if lost:
            bad.add(n, f"image {untrusted.shown(lost[0], 120)} does not exist (paths are relative to the CSV's folder, "
                       f"{path.parent})")
            continue
        candidates.append(_Candidate(str(n), a, b, where=f"{path}, line {n}"))
        by_line[str(n)] = r
    bad.warn()
    sources, targets, kept = decode_pairs(candidates, image_size, _Problems(bad_files))
    if not kept:
        raise DataError(f"{path}: no usable pairs in the {split!r} split")
    pairs = {"sources": sources, "targets": targets, "names": [Path(by_line[k]["source"]).stem for k in kept]}
    if labelled:
        pairs["labels"] = torch.tensor([names.index(by_line[k]["label"]) for k in kept], dtype=torch.int64)
        pairs["class_names"] = names
    return pairs
