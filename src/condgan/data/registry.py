"""Turn a dataset name or path into an ImageSet: the single entry point for data."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import DataError
from .folders import load_folder_dataset
from .idx import find_idx_pair, load_idx_split
from .imageset import ImageSet

FASHION_MNIST_CLASSES = ["t-shirt", "trouser", "pullover", "dress", "coat",
                         "sandal", "shirt", "sneaker", "bag", "ankle-boot"]
MNIST_CLASSES = [str(i) for i in range(10)]

DEFAULT_DIRS = {
    "fashion-mnist": ["/usr/share/datasets/fashion-mnist"],
    "mnist": ["/usr/share/datasets/mnist"],
}
HOW_TO_GET = {
    "fashion-mnist": ("install it with `sudo apt-get install dataset-fashion-mnist` (Debian/Ubuntu), "
                      "or download the four *-ubyte.gz files from https://github.com/zalandoresearch/fashion-mnist "
                      "and pass --data-dir FOLDER"),
    "mnist": "put train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz and "
             "t10k-labels-idx1-ubyte.gz in a folder and pass --data-dir FOLDER",
}


def load_dataset(name: str = "fashion-mnist", split: str = "train", data_dir: str | None = None,
                 classes: list[str] | None = None, image_size: int | None = None,
                 channels: int | None = None, bad_files: str = "skip", cache: str = "memory") -> ImageSet:
    """Load a dataset by name ('fashion-mnist', 'mnist', 'fashion-mnist-colours' with one class per
    category and colour) or by path (IDX folder or class folders).
    cache (folders of images only): 'memory', 'disk' or 'auto', see folders.load_folder_dataset; IDX
    files are one compressed array, always decoded into memory."""
    if split not in ("train", "test", "all"):
        raise DataError(f"split must be 'train', 'test' or 'all', not {split!r}")
    key = name.lower()
    from .twolabel import BUILTIN as TWO_LABEL

    if key in TWO_LABEL:  # coloured garments, one class per (category, colour): e.g. 'sandal red'
        from .twolabel import load_two_label

        data = load_two_label(key, split, data_dir).joint_classes()
    elif key in DEFAULT_DIRS:
        folder = _find_idx_folder(key, data_dir)
        data = _load_idx(folder, split, FASHION_MNIST_CLASSES if key == "fashion-mnist" else MNIST_CLASSES, key)
    else:
        path = Path(data_dir or name).expanduser()
        if path.suffix.lower() == ".npz" and path.is_file():
            from .arrays import load_npz

            data = load_npz(path, split)
        elif not path.exists():
            raise DataError(f"data folder {path} does not exist; give a folder of class sub-folders, "
                            f"or a built-in dataset: fashion-mnist, mnist")
        elif _has_idx(path):
            data = _load_idx(path, split, _class_names_file(path), str(path))
        else:
            data = load_folder_dataset(path, split, image_size, channels, bad_files, cache)
    if classes:
        data = data.subset(list(classes))
        if data.num_classes < 2:
            raise DataError("--classes must name at least 2 classes for a conditional model")
    if image_size and data.image_size != image_size:
        data.images = _resize(data.images, image_size)
    if channels and data.channels != channels:
        data.images = data.images.expand(-1, channels, -1, -1).contiguous() if data.channels == 1 else \
            data.images.float().mean(1, keepdim=True).round().to(torch.uint8)
    return data


def _find_idx_folder(key: str, data_dir: str | None) -> Path:
    candidates = [data_dir] if data_dir else [os.environ.get(f"CONDGAN_{key.upper().replace('-', '_')}_DIR")] + DEFAULT_DIRS[key]
    for c in candidates:
        if c and _has_idx(Path(c)):
            return Path(c)
    where = data_dir or " or ".join(DEFAULT_DIRS[key])
    raise DataError(f"{key} not found in {where}: {HOW_TO_GET[key]}")


def _has_idx(path: Path) -> bool:
    try:
        find_idx_pair(path, "train")
        return True
    except DataError:
        return False


def _class_names_file(path: Path) -> list[str] | None:
    f = path / "classes.txt"  # optional: one class name per line
    return [line.strip() for line in f.read_text().splitlines() if line.strip()] if f.is_file() else None


def _load_idx(folder: Path, split: str, class_names: list[str] | None, name: str) -> ImageSet:
    """class_names None: name classes "0".."K-1" after the labels found in the train split."""
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


def _resize(images: torch.Tensor, size: int) -> torch.Tensor:
    out = F.interpolate(images.float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return out.round().clamp(0, 255).to(torch.uint8)
