"""The one in-memory dataset type every condgan dataset becomes.

Images are kept as uint8 (N, C, H, W): 60k Fashion-MNIST images are 47 MB, and
indexing one tensor per batch is much faster on CPU than a DataLoader with
per-item Python work. It also makes the data order a pure function of a seeded
generator, which exact resume relies on.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import DataError
from ..untrusted import printable
from .cache import DiskImages


@dataclass
class ImageSet(torch.utils.data.Dataset):
    images: torch.Tensor  # uint8 (N, C, H, W); or data.cache.DiskImages, read from disk on indexing
    labels: torch.Tensor  # int64 (N,)
    class_names: list[str]
    name: str = "dataset"

    def __post_init__(self):
        if self.images.dtype != torch.uint8 or self.images.dim() != 4:
            raise DataError(f"{self.name}: images must be uint8 (N, C, H, W), got {tuple(self.images.shape)} {self.images.dtype}")
        if len(self.images) != len(self.labels):
            raise DataError(f"{self.name}: {len(self.images)} images but {len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i):
        return to_float(self.images[i]), self.labels[i]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def channels(self) -> int:
        return self.images.shape[1]

    @property
    def image_size(self) -> int:
        return self.images.shape[-1]

    def counts(self) -> list[int]:
        return torch.bincount(self.labels, minlength=self.num_classes).tolist()

    def subset(self, class_names: list[str]) -> "ImageSet":
        """Keep only the named classes, relabelled 0..k-1 in the order given."""
        indices = [resolve_class(c, self.class_names) for c in class_names]
        if len(set(indices)) != len(indices):
            raise DataError(f"--classes names a class twice: {', '.join(class_names)}")
        remap = torch.full((self.num_classes,), -1, dtype=torch.int64)
        for new, old in enumerate(indices):
            remap[old] = new
        keep = remap[self.labels] >= 0
        images = self.images.select(keep.nonzero()[:, 0]) if isinstance(self.images, DiskImages) else self.images[keep]
        return ImageSet(images, remap[self.labels[keep]], [self.class_names[i] for i in indices], self.name)


def to_float(images_uint8: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float [-1, 1], the range every generator outputs."""
    return images_uint8.float().div_(127.5).sub_(1.0)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """float [-1, 1] -> uint8 [0, 255]."""
    return images.detach().add(1.0).mul(127.5).round_().clamp_(0, 255).to(torch.uint8)


def resolve_class(name: str | int, class_names: list[str]) -> int:
    """Class index for a name (case-insensitive) or an index; clear error otherwise."""
    if isinstance(name, int) or (isinstance(name, str) and name.strip().isdigit() and name.strip() not in class_names):
        idx = int(name)
        if 0 <= idx < len(class_names):
            return idx
        raise DataError(f"label {idx} is out of range: this model has {len(class_names)} classes (0..{len(class_names) - 1}: {', '.join(class_names)})")
    if not isinstance(name, str):
        raise DataError(f"a label must be a class name or an index, not {type(name).__name__}")
    if name in class_names:  # the exact name wins: folders 'Boot' and 'boot' can both be chosen
        return class_names.index(name)
    key = _normalise(name)
    matches = [i for i, c in enumerate(class_names) if _normalise(c) == key]
    if len(matches) == 1:
        return matches[0]
    known = ", ".join(printable(c, 40) for c in class_names[:50]) + (" ..." if len(class_names) > 50 else "")
    if matches:
        raise DataError(f"class '{printable(name, 60)}' is ambiguous: it matches {', '.join(repr(class_names[i]) for i in matches)}; "
                        f"give the exact name")
    raise DataError(f"unknown class '{printable(name, 60)}'; known classes: {known}")


def _normalise(name: str) -> str:
    return name.strip().lower().replace("_", "-").replace(" ", "-")
