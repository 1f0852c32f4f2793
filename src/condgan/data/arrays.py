"""Images you already hold: uint8 arrays with labels and class names, a torch Dataset, or an .npz of them.

`condgan.train(config, data=(images, labels, class_names))` and `data=my_dataset` write the images once
into RUN/data.npz (the same keys `condgan sample --out x.npz` writes: images uint8 N×H×W[×C], labels,
class_names), so the run can be resumed, sampled against and evaluated like any other. An .npz is also a
dataset name on the command line (`condgan train --data images.npz`). Every 10th image of each class is
the held-out 'test' split, as in class folders, unless the file has a `split` array ('train'/'test').
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from ..errors import DataError
from ..untrusted import MAX_PIXELS
from .folders import HELD_OUT_EVERY
from .imageset import ImageSet

MAX_NPZ_IMAGES = 10_000_000


def from_arrays(images, labels, class_names, what: str = "data") -> ImageSet:
    """An ImageSet from uint8 images (N, H, W), (N, H, W, C) or (N, C, H, W), integer labels and class names."""
    x = torch.as_tensor(np.array(images, copy=True)) if not isinstance(images, torch.Tensor) else images.detach().cpu()
    if x.dtype != torch.uint8:
        raise DataError(f"{what}: images must be uint8 (0..255), not {x.dtype}; convert floats with (x * 255).round()")
    if x.dim() == 3:
        x = x[:, None]
    elif x.dim() == 4 and x.shape[-1] in (1, 3) and x.shape[1] not in (1, 3):
        x = x.permute(0, 3, 1, 2)
    if x.dim() != 4 or x.shape[1] not in (1, 3) or x.shape[2] != x.shape[3]:
        raise DataError(f"{what}: images must be square N×H×W, N×H×W×C or N×C×H×W with 1 or 3 channels, "
                        f"got {tuple(x.shape)}")
    if x.shape[2] * x.shape[3] > MAX_PIXELS or len(x) > MAX_NPZ_IMAGES:
        raise DataError(f"{what}: {len(x):,} images of {x.shape[3]}x{x.shape[2]} pixels are more than condgan takes")
    y = torch.as_tensor(np.asarray(labels)).to(torch.int64).flatten()
    names = [str(n) for n in (class_names.tolist() if hasattr(class_names, "tolist") else class_names)]
    if len(y) != len(x):
        raise DataError(f"{what}: {len(x)} images but {len(y)} labels")
    if len(names) < 2 or len(set(names)) != len(names):
        raise DataError(f"{what}: class_names must be at least 2 distinct names, got {names[:10]}")
    if len(y) and (y.min() < 0 or y.max() >= len(names)):
        raise DataError(f"{what}: labels must be in 0..{len(names) - 1} (one per class name), found {int(y.min())}..{int(y.max())}")
    return ImageSet(x.contiguous(), y, names, what)


def from_dataset(dataset, class_names=None, what: str = "dataset") -> ImageSet:
    """An ImageSet from a torch Dataset of (image, label): PIL images, uint8 arrays/tensors, or float tensors
    in [0, 1] (torchvision's ToTensor) or [-1, 1]. Class names from `class_names` or the dataset's `classes`."""
    names = class_names if class_names is not None else getattr(dataset, "classes", None)
    if names is None:
        raise DataError(f"{what}: give class names (data=(dataset, class_names)) or a dataset with a .classes list")
    images, labels = [], []
    for i in range(len(dataset)):
        image, label = dataset[i]
        images.append(_as_uint8_chw(image, f"{what}[{i}]"))
        labels.append(int(label))
    if not images:
        raise DataError(f"{what} is empty")
    return from_arrays(torch.stack(images), labels, list(names), what)


def _as_uint8_chw(image, what: str) -> torch.Tensor:
    if hasattr(image, "convert"):  # a PIL image: grey stays grey, anything else RGB
        image = np.array(image.convert("L" if image.mode in ("1", "L", "I", "I;16", "F") else "RGB"))
    x = torch.as_tensor(np.array(image)) if not isinstance(image, torch.Tensor) else image.detach().cpu()
    if x.dim() == 2:
        x = x[None]
    elif x.dim() == 3 and x.shape[-1] in (1, 3) and x.shape[0] not in (1, 3):
        x = x.permute(2, 0, 1)
    if x.is_floating_point():
        low = float(x.min())
        x = ((x + 1) * 127.5 if low < 0 else x * 255).round().clamp(0, 255)
    if x.dim() != 3:
        raise DataError(f"{what}: an image must be H×W, C×H×W or H×W×C, got {tuple(x.shape)}")
    return x.to(torch.uint8)


def save_npz(data: ImageSet, path: Path) -> Path:
    """Write `data` as an .npz dataset (written to a temporary name, then renamed: complete or absent)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}.npz")
    arr = data.images.permute(0, 2, 3, 1).numpy()
    np.savez_compressed(tmp, images=arr[..., 0] if arr.shape[-1] == 1 else arr, labels=data.labels.numpy(),
                        class_names=np.array(data.class_names))
    os.replace(tmp, path)
    return path


def load_npz(path: Path, split: str) -> ImageSet:
    """An .npz dataset's split ('train', 'test' or 'all')."""
    try:
        with np.load(path, allow_pickle=False) as f:
            missing = [k for k in ("images", "labels", "class_names") if k not in f.files]
            if missing:
                raise DataError(f"{path} lacks {', '.join(missing)}: an .npz dataset holds images (uint8 N×H×W[×C]), "
                                f"labels and class_names")
            data = from_arrays(f["images"], f["labels"], f["class_names"], str(path))
            marks = f["split"].astype(str) if "split" in f.files else None
    except (OSError, ValueError) as e:
        raise DataError(f"{path} is not a readable .npz file ({e})") from None
    if split == "all":
        return data
    if marks is not None:
        keep = torch.from_numpy(marks == split)
    else:  # every 10th image of each class is held out
        rank = torch.zeros(len(data.labels), dtype=torch.int64)
        for k in range(data.num_classes):
            idx = (data.labels == k).nonzero()[:, 0]
            rank[idx] = torch.arange(len(idx))
        keep = (rank % HELD_OUT_EVERY == HELD_OUT_EVERY - 1) == (split == "test")
    if not keep.any():
        raise DataError(f"no images in the {split!r} split of {path}")
    return ImageSet(data.images[keep].contiguous(), data.labels[keep], data.class_names, str(path))
