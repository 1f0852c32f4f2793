"""A class-conditional generator (the cgan task)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ..data.imageset import resolve_class, to_uint8
from ..errors import UserError
from ..progress import progress
from .base import Pipeline, as_output, check_count
from .latents import seed_path


class ClassConditional(Pipeline):
    """A class-conditional generator: `sample(labels, n, seed)`, `interpolate(labels, seed_a, seed_b, steps)`."""

    task = "cgan"
    needs = ("image", "label")
    spec_arguments = {"generator": [("num_classes", "label", "num_classes"), ("channels", "image", "channels"),
                                    ("image_size", "image", "height"), ("image_size", "image", "width")]}
    card_tags = ("gan", "conditional-image-generation")
    pipeline_tag = "unconditional-image-generation"  # the Hub's nearest: it has no class-conditional category

    def usage(self) -> str:
        return (f"images = model.sample({self.class_names[0]!r}, n=4, seed=0)   # float (4, C, H, W) in [-1, 1]\n"
                f"pictures = model.sample({self.class_names[-1]!r}, n=2, output_type=\"pil\")")

    @property
    def class_names(self) -> list[str]:
        return list(self.spec["label"].class_names)

    # ----- facts about the model ----------------------------------------------------------
    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def channels(self) -> int:
        return self.spec["image"].channels

    @property
    def image_size(self) -> int:
        return self.spec["image"].height

    @torch.no_grad()
    def __call__(self, z: torch.Tensor, labels: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
        """Images (N, C, H, W) in [-1, 1] for noise `z` and integer `labels`."""
        labels = torch.as_tensor(labels, dtype=torch.int64)
        if z.dim() != 2 or z.shape[1] != self.z_dim or len(z) != len(labels):
            raise UserError(f"expected z of shape (N, {self.z_dim}) and N labels, got {tuple(z.shape)} and {len(labels)} labels")
        if len(labels) and (labels.min() < 0 or labels.max() >= self.num_classes):
            raise UserError(f"labels must be in 0..{self.num_classes - 1}")
        out = [self.net(z[i:i + batch_size].to(self.device), labels[i:i + batch_size].to(self.device)).float().cpu()
               for i in range(0, len(z), batch_size)]
        return torch.cat(out) if out else torch.empty(0, self.channels, self.image_size, self.image_size)

    def label_ids(self, labels: str | int | Sequence[str | int]) -> torch.Tensor:
        if isinstance(labels, (str, int)):
            labels = [labels]
        return torch.tensor([resolve_class(lbl, self.class_names) for lbl in labels], dtype=torch.int64)

    def sample(self, labels: str | int | Sequence[str | int], n: int = 1, seed: int | None = None,
               output_type: str = "pt", truncation: float | None = None):
        """`n` images of each label in `labels` (names or indices), grouped by label.

        output_type: 'pt' (float tensor in [-1, 1]), 'uint8' (tensor), or 'pil' (list of PIL images).
        truncation: the truncation trick, off (None) by default: latent entries beyond ±truncation are drawn again
        (from the same seed), which trades variety for more typical images; 1.0 to 2.0 is the useful range.
        """
        check_count(n, "n")
        ids = self.label_ids(labels).repeat_interleave(n)
        check_count(len(ids), "number of images")
        return as_output(self(self.noise(len(ids), seed, truncation), ids), output_type)

    def interpolate(self, labels: str | int | Sequence[str | int], seed_a: int, seed_b: int, steps: int = 8,
                    output_type: str = "pt", truncation: float | None = None):
        """`steps` images of each label in `labels` whose noise walks from seed_a's to seed_b's (latents.slerp), grouped
        by label: each label's first image is its `sample(label, n=1, seed=seed_a)`, its last the one of seed_b
        (with the same truncation, whose truncated ends the path joins)."""
        ids = self.label_ids(labels)
        z = seed_path(self.noise(1, seed_a, truncation)[0], self.noise(1, seed_b, truncation)[0], steps)
        check_count(len(ids) * steps, "number of images")
        return as_output(self(z.repeat(len(ids), 1), ids.repeat_interleave(steps)), output_type)

    def sample_per_class(self, n_per_class: int, seed: int = 0, batch_size: int = 500, progress_bar: bool = False,
                         labels: Sequence[int] | None = None, truncation: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 images (N, C, H, W) and int64 labels: `n_per_class` of every class (or of `labels` only);
        truncation as in sample()."""
        check_count(n_per_class, "n_per_class")
        classes = torch.arange(self.num_classes) if labels is None else self.label_ids(list(labels))
        labels = classes.repeat_interleave(n_per_class)
        check_count(len(labels), "number of images")
        z = self.noise(len(labels), seed, truncation)
        chunks = []
        for i in progress(range(0, len(labels), batch_size), desc="sampling", unit="batch", disable=not progress_bar):
            chunks.append(to_uint8(self(z[i:i + batch_size], labels[i:i + batch_size], batch_size)))
        return torch.cat(chunks), labels

    def save_npz(self, path: str | Path, n_per_class: int, seed: int = 0, progress: bool = False,
                 labels: Sequence[str | int] | None = None, truncation: float | None = None) -> Path:
        """Write samples for external evaluation: images uint8 N×H×W[×C], labels, class_names
        (`n_per_class` of every class, or of `labels` only; class_names always lists them all); truncation as in
        sample()."""
        images, labels = self.sample_per_class(n_per_class, seed, progress_bar=progress, labels=labels,
                                               truncation=truncation)
        arr = images.permute(0, 2, 3, 1).numpy()
        if arr.shape[-1] == 1:
            arr = arr[..., 0]
        path = Path(path)
        np.savez_compressed(path, images=arr, labels=labels.numpy(), class_names=np.array(self.class_names))
        return path
