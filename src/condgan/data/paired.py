"""Paired image-to-image data: a source image (mask, edge map, sketch) and its target image.

(Skeleton: the PairSet type is fixed; loaders are filled in below.)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..conditions import ClassField, ImageField, Spec
from ..errors import DataError


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
