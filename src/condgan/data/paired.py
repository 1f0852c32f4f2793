"""Paired image-to-image data: a source image (mask, edge map, sketch) and its target image.

Two kinds of pairs:

* built-in pairs derived from real Fashion-MNIST (`fashion-mnist-masks`,
  `fashion-mnist-edges`): the source is computed from the garment by a fixed,
  deterministic rule, so no extra download is needed and the class labels of
  Fashion-MNIST come along;
* the user's own folders, in either of the two common layouts:
  `root/A/*` + `root/B/*` with matching file names, or pix2pix-style images
  holding A | B side by side (left half A, right half B; an odd width's
  middle column belongs to neither). Both may be split into `root/train` and
  `root/test`; without split folders every 10th pair is held out as 'test'.

A is the source and B the target (direction="AtoB"); "BtoA" swaps them.
All pairs are resized (no cropping) to one common size: the most common
(H, W) of the pairs, or, when `image_size` is given, that size scaled so its
longer side is `image_size` (rounded, aspect ratio kept). Pairs of another
aspect ratio are stretched to it.

The built-ins' sources are derived by derive.py; the folders are listed and decoded by pair_folders.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from ..conditions import ClassField, ImageField, Spec
from ..errors import DataError
from .derive import derive_source
from .images import read_image, resize_square
from .imageset import ImageSet, resolve_class
from .mnist import load_mnist
from .pair_folders import EXPECTED_LAYOUTS, read_pair_folder

# derive_source (derive.py) and read_image (images.py) are also known by this module, where they began
__all__ = ["BUILTIN_PAIRS", "PairSet", "derive_source", "load_pairs", "read_image"]

# name -> how the source is derived from the Fashion-MNIST garment (a `derive_source` kind)
BUILTIN_PAIRS = {"fashion-mnist-edges": "edges", "fashion-mnist-masks": "masks"}
DIRECTIONS = ("AtoB", "BtoA")
SPLITS = ("train", "test", "all")


@dataclass
class PairSet:
    sources: torch.Tensor               # uint8 (N, Cs, H, W)
    targets: torch.Tensor               # uint8 (N, Ct, H, W), same H, W as sources
    labels: torch.Tensor | None = None  # int64 (N,), when the pairs have classes
    class_names: list[str] | None = None
    names: list[str] | None = None      # one identifier per pair (file name, or "test-00042" for built-ins)
    name: str = "pairs"

    def __post_init__(self):
        s, t = self.sources, self.targets
        if s.dtype != torch.uint8 or t.dtype != torch.uint8 or s.dim() != 4 or t.dim() != 4:
            raise DataError(f"{self.name}: sources and targets must be uint8 (N, C, H, W)")
        if len(s) != len(t) or s.shape[2:] != t.shape[2:]:
            raise DataError(f"{self.name}: sources {tuple(s.shape)} and targets {tuple(t.shape)} do not pair up")
        if self.labels is not None and len(self.labels) != len(s):
            raise DataError(f"{self.name}: {len(s)} pairs but {len(self.labels)} labels")
        if self.names is None:
            self.names = [f"{i:05d}" for i in range(len(s))]

    def __len__(self) -> int:
        return len(self.sources)

    def spec(self) -> Spec:
        h, w = self.sources.shape[2:]
        spec = Spec(source=ImageField(self.sources.shape[1], h, w), image=ImageField(self.targets.shape[1], h, w))
        if self.labels is not None:
            spec["label"] = ClassField(tuple(self.class_names))
        return spec

    def fields(self) -> dict[str, torch.Tensor]:
        """The named tensors a training batch is cut from (images stay uint8 here)."""
        out = {"source": self.sources, "image": self.targets}
        if self.labels is not None:
            out["label"] = self.labels
        return out

    def subset(self, indices) -> "PairSet":
        """The pairs at `indices` (a list or int64 tensor), in that order; e.g. a quick evaluation slice."""
        idx = torch.as_tensor(indices, dtype=torch.int64)
        labels = None if self.labels is None else self.labels[idx]
        return PairSet(self.sources[idx], self.targets[idx], labels, self.class_names,
                       [self.names[i] for i in idx.tolist()], self.name)

    def swapped(self) -> "PairSet":
        """The same pairs translated the other way (direction BtoA)."""
        return PairSet(self.targets, self.sources, self.labels, self.class_names, self.names, self.name)


def load_pairs(name: str, split: str = "train", data_dir: str | None = None, direction: str = "AtoB",
               image_size: int | None = None, classes: list[str] | None = None,
               bad_files: str = "skip", paths_outside: str | None = "warn") -> PairSet:
    """Load a built-in pair set by name, or the user's pair folder or CSV of pairs (pair_csv.py) by path
    (`data_dir` is for built-ins only; paths_outside: what CSV rows naming files outside its folder get)."""
    if split not in SPLITS:
        raise DataError(f"split must be 'train', 'test' or 'all', not {split!r}")
    if direction not in DIRECTIONS:
        raise DataError(f"direction must be 'AtoB' (A is the source) or 'BtoA' (B is the source), not {direction!r}")
    if bad_files not in ("skip", "error"):
        raise DataError(f"bad_files must be 'skip' or 'error', not {bad_files!r}")
    if image_size is not None and image_size < 1:
        raise DataError(f"image_size must be a positive number of pixels, not {image_size}")
    if name.lower() in BUILTIN_PAIRS:
        pairs = _load_builtin(name.lower(), split, data_dir, image_size, classes)
    else:
        if classes:
            raise DataError("classes only applies to the built-in pairs (fashion-mnist-edges, fashion-mnist-masks); "
                            "pair folders and CSVs are used whole")
        root = Path(name).expanduser()
        if root.suffix.lower() == ".csv":
            from .pair_csv import read_pair_csv

            pairs = PairSet(**read_pair_csv(root, split, image_size, bad_files, paths_outside), name=str(root))
            return pairs.swapped() if direction == "BtoA" else pairs
        if not root.is_dir():
            raise DataError(f"pair folder {root} does not exist; give a folder of pairs ({EXPECTED_LAYOUTS}), "
                            f"a CSV with the columns source,target[,label][,split], or a built-in: {', '.join(BUILTIN_PAIRS)}")
        sources, targets, names = read_pair_folder(root, split, image_size, bad_files)  # pair_folders.py
        pairs = PairSet(sources, targets, names=names, name=str(root))
    return pairs.swapped() if direction == "BtoA" else pairs


# ---------------------------------------------------------------- built-in pairs

def _load_builtin(name: str, split: str, data_dir: str | None, image_size: int | None,
                  classes: list[str] | None) -> PairSet:
    """Fashion-MNIST garments (its own train/test split and labels) with a source derived from each."""
    garments, names = _fashion_with_names(split, data_dir)
    if classes:
        keep = _rows_of_classes(garments, classes)
        garments, names = garments.subset(list(classes)), [names[i] for i in keep.tolist()]
    sources, targets = derive_source(garments.images, BUILTIN_PAIRS[name]), garments.images
    if image_size and image_size != targets.shape[-1]:
        sources, targets = _resize_builtin(sources, targets, image_size)
    return PairSet(sources, targets, garments.labels, garments.class_names, names, name)


def _fashion_with_names(split: str, data_dir: str | None) -> tuple[ImageSet, list[str]]:
    """Fashion-MNIST for `split`, with names like 'test-00042' that give each image's place in its split."""
    splits = ["train", "test"] if split == "all" else [split]
    parts = [load_mnist("fashion-mnist", s, data_dir) for s in splits]
    names = [f"{s}-{i:05d}" for s, part in zip(splits, parts) for i in range(len(part))]
    data = ImageSet(torch.cat([p.images for p in parts]), torch.cat([p.labels for p in parts]),
                    parts[0].class_names, "fashion-mnist")
    return data, names


def _rows_of_classes(data: ImageSet, classes: list[str]) -> torch.Tensor:
    """Row indices that ImageSet.subset(classes) keeps (it keeps rows in order), so names can follow."""
    wanted = torch.tensor([resolve_class(c, data.class_names) for c in classes], dtype=torch.int64)
    return torch.isin(data.labels, wanted).nonzero().squeeze(1)


def _resize_builtin(sources: torch.Tensor, targets: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Sources are derived at 28x28 and then scaled by nearest neighbour, so they stay binary 0/255."""
    return F.interpolate(sources, size=(size, size), mode="nearest-exact"), resize_square(targets, size)
