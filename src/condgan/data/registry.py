"""Turn a dataset name or path into an ImageSet: the single entry point for data."""

from __future__ import annotations

from pathlib import Path

import torch

from ..errors import DataError
from .arrays import load_npz
from .class_csv import load_class_csv
from .folders import load_folder_dataset
from .idx import has_idx, load_idx_set
from .images import resize_square
from .imageset import ImageSet
from .mnist import DEFAULT_DIRS, load_mnist
from .twolabel import BUILTIN as TWO_LABEL
from .twolabel import load_two_label


def load_dataset(name: str = "fashion-mnist", split: str = "train", data_dir: str | None = None,
                 classes: list[str] | None = None, image_size: int | None = None,
                 channels: int | None = None, bad_files: str = "skip", cache: str = "memory",
                 paths_outside: str | None = "warn", image_column: str | None = None,
                 label_column: str | None = None) -> ImageSet:
    """Load a dataset by name ('fashion-mnist', 'mnist', 'fashion-mnist-colours' with one class per
    category and colour) or by path (IDX folder, class folders, an .npz, a CSV of path,label: class_csv.py),
    or 'hf:PATH', a Hugging Face dataset on disk (hf.py; its image_column and label_column).
    cache (folders of images only): 'memory', 'disk' or 'auto', see folders.load_folder_dataset; IDX
    files are one compressed array, always decoded into memory."""
    if split not in ("train", "test", "all"):
        raise DataError(f"split must be 'train', 'test' or 'all', not {split!r}")
    key = name.lower()
    if key in TWO_LABEL:  # coloured garments, one class per (category, colour): e.g. 'sandal red'
        data = load_two_label(key, split, data_dir).joint_classes()
    elif key in DEFAULT_DIRS:
        data = load_mnist(key, split, data_dir)
    elif key.startswith("hf:"):
        from .hf import load_hf

        data = load_hf(name[3:], split, image_column, label_column, image_size, channels, bad_files)
    else:
        path = Path(data_dir or name).expanduser()
        if path.suffix.lower() == ".npz" and path.is_file():
            data = load_npz(path, split)
        elif path.suffix.lower() == ".csv" and path.is_file():
            data = load_class_csv(path, split, image_size, channels, bad_files, paths_outside)
        elif not path.exists():
            raise DataError(f"data {path} does not exist; give a folder of class sub-folders, a CSV (path,label), "
                            f"an .npz, hf:PATH, or a built-in dataset: fashion-mnist, mnist")
        elif has_idx(path):
            data = load_idx_set(path, split, _class_names_file(path), str(path))
        else:
            data = load_folder_dataset(path, split, image_size, channels, bad_files, cache)
    if classes:
        data = data.subset(list(classes))
        if data.num_classes < 2:
            raise DataError("--classes must name at least 2 classes for a conditional model")
    if image_size and data.image_size != image_size:
        data.images = resize_square(data.images, image_size)
    if channels and data.channels != channels:
        data.images = data.images.expand(-1, channels, -1, -1).contiguous() if data.channels == 1 else \
            data.images.float().mean(1, keepdim=True).round().to(torch.uint8)
    return data


def _class_names_file(path: Path) -> list[str] | None:
    f = path / "classes.txt"  # optional: one class name per line
    return [line.strip() for line in f.read_text().splitlines() if line.strip()] if f.is_file() else None
