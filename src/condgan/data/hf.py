"""A Hugging Face `datasets` dataset on disk (`--data hf:PATH`): what Dataset.save_to_disk writes (a Dataset
or a DatasetDict), a .parquet file, or a folder of them.

The image column (data.image_column, default 'image') holds images (the datasets Image feature, or
{'bytes', 'path'} cells); the label column (data.label_column, default 'label') is a ClassLabel, whose
names become the class names, or plain integers/strings, named by their sorted unique values. A split
named 'test' (else 'validation') is the test split and the others are the train split; a dataset of one
split holds out every 10th row of each class, as class folders do. Parquet files named test-*/validation-*
(the Hugging Face Hub's layout) form the test split. `datasets` is an optional extra, imported here only.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import torch

from .. import untrusted
from ..errors import DataError
from .csv_rows import label_names
from .folders import HELD_OUT_EVERY, _center_square, _grey_content
from .images import decode, to_array
from .imageset import ImageSet

TEST_SPLITS = ("test", "validation")


def load_hf(where: str, split: str = "train", image_column: str | None = None, label_column: str | None = None,
            image_size: int | None = None, channels: int | None = None, bad_files: str = "skip") -> ImageSet:
    """The `split` ('train', 'test' or 'all') of a dataset saved on disk, as an ImageSet."""
    try:
        import datasets
    except ImportError:
        raise DataError("--data hf:... needs the optional extra: pip install 'condgan[hf]'") from None
    path = Path(where).expanduser()
    if not path.exists():
        raise DataError(f"hf:{where}: {path} does not exist; give a folder written by Dataset.save_to_disk, "
                        f"a .parquet file or a folder of .parquet files")
    image_column, label_column = image_column or "image", label_column or "label"
    parts = _open(path, datasets)
    for part in parts.values():
        for column, flag in ((image_column, "--image-column"), (label_column, "--label-column")):
            if column not in part.column_names:
                raise DataError(f"hf:{where} has no column {untrusted.shown(column)} (its columns: "
                                f"{untrusted.shown(', '.join(part.column_names), 120)}); name it with {flag}")
    names, labels = _labels(parts, label_column, datasets)
    if len(names) < 2:
        raise DataError(f"hf:{where}: the label column {label_column!r} has {len(names)} class(es); a conditional "
                        f"model needs at least 2")
    rows = _rows_of_split(parts, labels, split)
    unlabelled = sum(labels[p][i] < 0 for p, i in rows)  # a ClassLabel's -1: no label
    if unlabelled:
        warnings.warn(f"hf:{where}: skipped {unlabelled} row(s) without a label (-1) in the {split!r} split", stacklevel=2)
        rows = [(p, i) for p, i in rows if labels[p][i] >= 0]
    images, kept = _decode(parts, rows, image_column, image_size or 64, 1 if channels == 1 else 3, bad_files,
                           datasets, f"hf:{where}")
    if not kept:
        raise DataError(f"hf:{where}: no images in the {split!r} split")
    if channels is None and all(_grey_content(x) for x in images):  # grey content: one channel, as folders
        images = images.mean(1, keepdims=True).round().astype(np.uint8)
    y = torch.tensor([labels[p][i] for p, i in kept], dtype=torch.int64)
    return ImageSet(torch.from_numpy(np.ascontiguousarray(images)), y, names, name=f"hf:{where}")


def _open(path: Path, datasets) -> dict:
    """Split name -> Dataset."""
    files = [path] if path.is_file() else sorted(path.glob("*.parquet"))
    if path.is_file() and path.suffix.lower() != ".parquet":
        raise DataError(f"hf:{path}: a file must be .parquet; a saved dataset is a folder (Dataset.save_to_disk)")
    if files:
        import pyarrow
        import pyarrow.parquet

        grouped: dict = {}
        for f in files:
            name = next((s for s in TEST_SPLITS if f.name.lower().startswith(s)), "train")
            grouped.setdefault(name, []).append(f)
        try:
            return {name: datasets.Dataset(pyarrow.concat_tables([pyarrow.parquet.read_table(f) for f in fs]))
                    for name, fs in grouped.items()}
        except (OSError, ValueError, pyarrow.ArrowException) as e:
            raise DataError(f"hf:{path}: not readable parquet ({type(e).__name__}: {untrusted.printable(e, 200)})") from None
    try:
        loaded = datasets.load_from_disk(str(path))
    except (OSError, ValueError, FileNotFoundError) as e:
        raise DataError(f"hf:{path}: not a dataset saved with save_to_disk, nor a folder of .parquet files "
                        f"({type(e).__name__}: {untrusted.printable(e, 200)})") from None
    return dict(loaded) if isinstance(loaded, datasets.DatasetDict) else {"train": loaded}


def _labels(parts: dict, column: str, datasets) -> tuple[list[str], dict]:
    """Class names, and each part's labels as class indices."""
    feature = next(iter(parts.values())).features[column]
    if isinstance(feature, datasets.ClassLabel):
        return list(feature.names), {p: [int(v) for v in d[column]] for p, d in parts.items()}
    values = {p: d[column] for p, d in parts.items()}
    if any(not isinstance(v, (int, str)) or isinstance(v, bool) for vs in values.values() for v in vs):
        raise DataError(f"the label column {column!r} must hold integers, strings or a ClassLabel, not "
                        f"{untrusted.shown(str(feature), 80)}; name another with --label-column")
    names = label_names(v for vs in values.values() for v in vs)
    index = {n: i for i, n in enumerate(names)}
    return names, {p: [index[str(v)] for v in vs] for p, vs in values.items()}


def _rows_of_split(parts: dict, labels: dict, split: str) -> list[tuple[str, int]]:
    """(part, row) pairs of `split`: by the parts' names, else every 10th row of each class is 'test'."""
    test = next((s for s in TEST_SPLITS if s in parts), None)
    if test is not None or split == "all":
        wanted = list(parts) if split == "all" else [test] if split == "test" else \
            [p for p in parts if p not in TEST_SPLITS]
        return [(p, i) for p in wanted for i in range(len(labels[p]))]
    rows, seen = [], {}
    for p in parts:
        for i, y in enumerate(labels[p]):
            k = seen[y] = seen.get(y, -1) + 1
            if (k % HELD_OUT_EVERY == HELD_OUT_EVERY - 1) == (split == "test"):
                rows.append((p, i))
    return rows


def _decode(parts: dict, rows: list, column: str, size: int, channels: int, bad_files: str, datasets, what: str):
    """uint8 (N, channels, size, size) of the readable rows, and the (part, row) of each; bad rows warned or refused."""
    raw = {}
    for p, d in parts.items():
        d = d.select_columns([column])
        raw[p] = d.cast_column(column, datasets.Image(decode=False)) if isinstance(d.features[column], datasets.Image) else d
    out, kept, skipped = np.empty((len(rows), channels, size, size), np.uint8), [], []
    for p, i in rows:
        where = f"{what}, split {p}, row {i}"
        try:
            image = _cell_image(raw[p][i][column], channels, where)
        except DataError as e:
            if bad_files == "error":
                raise DataError(f"{e} (set data.bad_files=skip to skip such rows)") from None
            skipped.append(str(e))
            continue
        out[len(kept)] = to_array(_center_square(image), (size, size))
        kept.append((p, i))
    for message in skipped[:10]:
        warnings.warn(f"skipped {message}", stacklevel=3)
    if len(skipped) > 10:
        warnings.warn(f"skipped {len(skipped) - 10} more unreadable images of {what}", stacklevel=3)
    return out[:len(kept)], kept


def _cell_image(cell, channels: int, where: str):
    """One image cell ({'bytes', 'path'} or raw bytes) decoded upright, as L (channels=1) or RGB."""
    data = cell.get("bytes") if isinstance(cell, dict) else cell
    if not isinstance(data, (bytes, bytearray)):
        raise DataError(f"{where}: not an image (expected the Image feature or image bytes, found "
                        f"{type(cell).__name__}); name the image column with --image-column")
    return decode(io.BytesIO(data), channels, where)
