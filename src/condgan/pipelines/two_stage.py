"""Two generators in a row (the two-stage task)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..data.imageset import resolve_class, to_float, to_uint8
from ..errors import UserError
from ..progress import progress
from ..conditions import Spec
from .base import Pipeline, as_output, check_count


class TwoStage(Pipeline):
    """Two generators in a row: G1(label A) -> intermediate, G2(intermediate, label B) -> image.

    `sample(label_a="sandal", label_b="red", n=4, seed=0, return_intermediate=True)`; `translate` runs G2
    alone on intermediates of your own; `save_grid` and `save_npz` write every (A, B) pair.
    """

    task = "two-stage"
    needs = ("image", "mask", "label_a", "label_b")
    components = ("generator1", "generator2")
    spec_arguments = {"generator1": [("num_classes", "label_a", "num_classes"), ("channels", "mask", "channels"),
                                     ("image_size", "mask", "height")],
                      "generator2": [("num_classes", "label_b", "num_classes"), ("source_channels", "mask", "channels"),
                                     ("channels", "image", "channels"), ("height", "image", "height"),
                                     ("width", "image", "width")]}
    card_tags = ("gan", "conditional-image-generation")
    pipeline_tag = "unconditional-image-generation"

    def usage(self) -> str:
        return (f"images, intermediates = model.sample(label_a={self.label_a_names[0]!r}, "
                f"label_b={self.label_b_names[0]!r}, n=4, seed=0, return_intermediate=True)")

    def __init__(self, g1: torch.nn.Module, g2: torch.nn.Module, spec: Spec, data: dict | None = None,
                 device: str | torch.device = "cpu"):
        super().__init__(g2, spec, data, device)
        self.g1, self.g2 = g1.eval().requires_grad_(False).to(device), self.net

    @classmethod
    def from_components(cls, nets: dict, spec: Spec, data: dict, device) -> "TwoStage":
        return cls(nets["generator1"], nets["generator2"], spec, data, device)

    def networks(self) -> dict[str, torch.nn.Module]:
        return {"generator1": self.g1, "generator2": self.g2}

    @property
    def data(self) -> dict:
        """The run's data config, as keyword arguments for `condgan.data.twolabel.load_two_label`."""
        return {k: self._data.get(k) for k in ("name", "data_dir", "classes", "image_size", "paths_outside")}

    @property
    def label_a_names(self) -> list[str]:
        return list(self.spec["label_a"].class_names)

    @property
    def label_b_names(self) -> list[str]:
        return list(self.spec["label_b"].class_names)

    @property
    def label_b_rgb(self) -> torch.Tensor | None:
        """(K_B, 3) uint8: the colour of each label B, when label B names colours (the built-in palette,
        or colour names / '#rrggbb' in your manifest); else None."""
        from ..data.twolabel import palette_rgb

        return palette_rgb(self.label_b_names)

    @property
    def image_size(self) -> tuple[int, int]:
        return self.spec["image"].size

    def noise2(self, n: int, seed: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Noise for G1 and for G2, both drawn from one seed."""
        g = torch.Generator()
        if seed is None:
            g.seed()
        else:
            g.manual_seed(seed)
        return torch.randn(n, self.g1.arguments["z_dim"], generator=g), torch.randn(n, self.g2.arguments["z_dim"], generator=g)

    def ids(self, labels, which: str) -> torch.Tensor:
        names = self.label_a_names if which == "a" else self.label_b_names
        if isinstance(labels, (str, int)):
            labels = [labels]
        if isinstance(labels, torch.Tensor):
            labels = labels.tolist()
        try:
            return torch.tensor([resolve_class(lbl, names) for lbl in labels], dtype=torch.int64)
        except UserError as e:
            raise UserError(f"label {which.upper()}: {e}") from None

    @torch.no_grad()
    def __call__(self, z1: torch.Tensor, z2: torch.Tensor, labels_a, labels_b,
                 batch_size: int = 500) -> tuple[torch.Tensor, torch.Tensor]:
        """(images (N, 3, H, W), intermediates (N, C, H, W)), floats in [-1, 1], for noises and integer labels."""
        a, b = torch.as_tensor(labels_a, dtype=torch.int64), torch.as_tensor(labels_b, dtype=torch.int64)
        if not len(z1) == len(z2) == len(a) == len(b):
            raise UserError(f"expected as many noises as labels, got {len(z1)}, {len(z2)}, {len(a)} and {len(b)}")
        images, masks = [], []
        for i in range(0, len(a), batch_size):
            m = self.g1(z1[i:i + batch_size].to(self.device), a[i:i + batch_size].to(self.device))
            images.append(self.g2(z2[i:i + batch_size].to(self.device), m, b[i:i + batch_size].to(self.device)).float().cpu())
            masks.append(m.float().cpu())
        if not images:
            h, w = self.image_size
            return torch.empty(0, 3, h, w), torch.empty(0, self.spec["mask"].channels, h, w)
        return torch.cat(images), torch.cat(masks)

    def sample(self, label_a, label_b, n: int = 1, seed: int | None = None, return_intermediate: bool = False,
               output_type: str = "pt"):
        """`n` images for every (label A, label B) pair of the names (or indices) given, A-major; with
        return_intermediate, also G1's intermediate of each. output_type: 'pt', 'uint8' or 'pil'."""
        check_count(n, "n")
        a, b = self.ids(label_a, "a"), self.ids(label_b, "b")
        check_count(len(a) * len(b) * n, "number of images")
        labels_a = a.repeat_interleave(len(b) * n)
        labels_b = b.repeat_interleave(n).repeat(len(a))
        images, masks = self(*self.noise2(len(labels_a), seed), labels_a, labels_b)
        if return_intermediate:
            return as_output(images, output_type), as_output(masks, output_type)
        return as_output(images, output_type)

    @torch.no_grad()
    def translate(self, intermediates: torch.Tensor, label_b, seed: int | None = 0, output_type: str = "pt"):
        """G2 alone: images for intermediates of your own (uint8, or float in [-1, 1], (N, C, H, W)) under
        label B (one name for all, or one per intermediate)."""
        x = intermediates.unsqueeze(0) if intermediates.dim() == 3 else intermediates
        x = to_float(x) if x.dtype == torch.uint8 else x.float()
        if tuple(x.shape[1:]) != (self.spec["mask"].channels, *self.image_size):
            raise UserError(f"intermediates must be {(self.spec['mask'].channels, *self.image_size)}, got {tuple(x.shape[1:])}")
        b = self.ids(label_b, "b")
        b = b.expand(len(x)) if len(b) == 1 else b
        if len(b) != len(x):
            raise UserError(f"{len(x)} intermediates but {len(b)} labels B")
        _, z2 = self.noise2(len(x), seed)
        out = torch.cat([self.g2(z2[i:i + 500].to(self.device), x[i:i + 500].to(self.device), b[i:i + 500].to(self.device)).float().cpu()
                         for i in range(0, len(x), 500)])
        return as_output(out, output_type)

    def sample_pairs(self, n_per_pair: int, seed: int = 0, progress_bar: bool = False):
        """`n_per_pair` images of every (A, B) pair: uint8 images (N, 3, H, W), uint8 intermediates (N, C, H, W),
        int64 labels A and labels B."""
        check_count(n_per_pair, "n_per_pair")
        ka, kb = len(self.label_a_names), len(self.label_b_names)
        labels_a = torch.arange(ka).repeat_interleave(kb * n_per_pair)
        labels_b = torch.arange(kb).repeat_interleave(n_per_pair).repeat(ka)
        check_count(len(labels_a), "number of images")
        z1, z2 = self.noise2(len(labels_a), seed)
        images, masks = [], []
        for i in progress(range(0, len(labels_a), 500), desc="sampling", unit="batch", disable=not progress_bar):
            x, m = self(z1[i:i + 500], z2[i:i + 500], labels_a[i:i + 500], labels_b[i:i + 500])
            images.append(to_uint8(x))
            masks.append(to_uint8(m))
        return torch.cat(images), torch.cat(masks), labels_a, labels_b

    def palette_or_mean_colours(self) -> torch.Tensor:
        """label_b_rgb, or, when label B does not name colours, the mean colour of each label B's real
        training images (scaled so its largest component is 255)."""
        if self.label_b_rgb is not None:
            return self.label_b_rgb
        from ..data.twolabel import load_two_label

        data = load_two_label(split="train", **self.data)
        mean = torch.stack([data.images[data.labels_b == k].float().mean(dim=(0, 2, 3)) for k in range(len(self.label_b_names))])
        return (mean * 255 / mean.amax(1, keepdim=True).clamp(min=1e-6)).round().to(torch.uint8)

    def save_npz(self, path: str | Path, n_per_pair: int, seed: int = 0, progress: bool = False) -> Path:
        """Samples of every (A, B) pair for any external evaluator: images (uint8 N×H×W×3), intermediates
        (uint8 N×H×W), labels_a, labels_b, label_a_names, label_b_names, label_b_rgb (K×3 uint8)."""
        images, masks, labels_a, labels_b = self.sample_pairs(n_per_pair, seed, progress)
        path = Path(path)
        np.savez_compressed(path, images=images.permute(0, 2, 3, 1).numpy(), intermediates=masks[:, 0].numpy(),
                            labels_a=labels_a.numpy(), labels_b=labels_b.numpy(),
                            label_a_names=np.array(self.label_a_names), label_b_names=np.array(self.label_b_names),
                            label_b_rgb=self.palette_or_mean_colours().numpy())
        return path

    def save_grid(self, path: str | Path, labels_a=None, labels_b=None, n: int = 1, seed: int = 0) -> Path:
        """Rows = label A (n each), columns = label B; each image with its intermediate on its left."""
        from ..visual import save_sheet

        a = self.ids(self.label_a_names if labels_a is None else labels_a, "a")
        b = self.ids(self.label_b_names if labels_b is None else labels_b, "b")
        check_count(len(a) * len(b) * n, "number of images", 10_000)
        labels_a = a.repeat_interleave(n).repeat_interleave(len(b))  # row-major: (A, i) rows, B columns
        labels_b = b.repeat(len(a) * n)
        images, masks = self(*self.noise2(len(labels_a), seed), labels_a, labels_b)
        rows = len(a) * n
        columns = []
        for j in range(len(b)):
            columns += [masks.view(rows, len(b), *masks.shape[1:])[:, j], images.view(rows, len(b), *images.shape[1:])[:, j]]
        names_b = [self.label_b_names[i] for i in b.tolist()]
        return save_sheet(columns, [x for name in names_b for x in ("", name)], Path(path),
                          row_names=[self.label_a_names[i] for i in a.tolist() for _ in range(n)],
                          title="rows: label A, columns: label B (intermediate | image)")
