"""Reader for the IDX format used by MNIST and Fashion-MNIST (plain or .gz), and an IDX folder as an ImageSet."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import torch

from ..errors import DataError
from .imageset import ImageSet

_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: Path) -> np.ndarray:
    """Return the array stored in an IDX file; raise DataError if it is damaged."""
    opener = gzip.open if str(path).endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:
        raise DataError(f"cannot read IDX file {path}: {e}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _DTYPES:
        raise DataError(f"{path} is not an IDX file (bad magic number)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path} is truncated (header incomplete)")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = np.dtype(_DTYPES[raw[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise DataError(
            f"{path} is truncated or corrupt: expected {expected} data bytes for shape "
            f"{shape}, found {len(raw) - header}"
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def find_idx_pair(folder: Path, split: str) -> tuple[Path, Path]:
    """Locate the images/labels files of a split ('train' or 'test') in `folder`."""
    prefix = "train" if split == "train" else "t10k"
    found = []
    for kind in ("images-idx3-ubyte", "labels-idx1-ubyte"):
        candidates = [folder / f"{prefix}-{kind}{ext}" for ext in (".gz", "")]
        hit = next((c for c in candidates if c.is_file()), None)
        if hit is None:
            raise DataError(
                f"no {prefix}-{kind}[.gz] in {folder}; an IDX dataset folder needs "
                f"train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
                f"t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz"
            )
        found.append(hit)
    return found[0], found[1]


def load_idx_split(folder: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Images (N,H,W uint8) and labels (N int64) of one split."""
    img_path, lbl_path = find_idx_pair(folder, split)
    images = read_idx(img_path)
    labels = read_idx(lbl_path).astype(np.int64)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise DataError(
            f"{folder}: images {images.shape} and labels {labels.shape} do not match"
        )
    return images.astype(np.uint8), labels


def has_idx(path: Path) -> bool:
    """Whether `path` holds the train split of an IDX dataset."""
    try:
        find_idx_pair(path, "train")
        return True
    except DataError:
        return False


def load_idx_set(folder: Path, split: str, class_names: list[str] | None, name: str) -> ImageSet:
    """The IDX dataset in `folder` as an ImageSet.

    class_names None: name classes "0".."K-1" after the labels found in the train split."""
    splits = ["train", "test"] if split == "all" else [split]
    parts = [load_idx_split(folder, s) for s in splits]
    images = torch.from_numpy(np.concatenate([p[0] for p in parts]))[:, None]
    labels = torch.from_numpy(np.concatenate([p[1] for p in parts]))
    if class_names is None:
        top = int(load_idx_split(folder, "train")[1].max()) if split == "test" else int(labels.max())
        class_names = [str(i) for i in range(top + 1)]
    elif labels.numel() and int(labels.max()) >= len(class_names):
        raise DataError(f"{folder}: label {int(labels.max())} has no name in classes.txt ({len(class_names)} names)")
    return ImageSet(images.contiguous(), labels, class_names, name)
