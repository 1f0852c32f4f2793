"""Tiny synthetic world for the evaluation tests: 16x16 images of 4 class patterns, and a fake generator.

Each class is a fixed random blob pattern; an image is that pattern shifted by up
to 2 pixels, scaled in brightness, plus a low-dimensional "style" texture, all
driven by a noise vector z. The fake generator draws exactly the same
distribution, optionally with its labels permuted (a model that ignores labels).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image

from condgan.data import to_uint8

SIZE = 16
CLASSES = ["bars", "cross", "disc", "ring"]  # sorted, as a folder dataset lists them
Z_DIM = 8


def _templates() -> torch.Tensor:
    y, x = torch.meshgrid(torch.linspace(-1, 1, SIZE), torch.linspace(-1, 1, SIZE), indexing="ij")
    r = (x.square() + y.square()).sqrt()
    shapes = [
        ((x * 4).floor().remainder(2) == 0).float() * (y.abs() < 0.7).float(),  # vertical bars
        ((x.abs() < 0.2) | (y.abs() < 0.2)).float(),               # cross
        (r < 0.5).float(),                                        # disc
        ((r > 0.5) & (r < 0.8)).float(),                           # ring
    ]
    return torch.stack(shapes)[:, None] * 2 - 1  # (4, 1, 16, 16) in [-1, 1]


TEMPLATES = _templates()
STYLE = torch.randn(Z_DIM, SIZE * SIZE, generator=torch.Generator().manual_seed(123)) * 0.08


def render(z: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
    """Float images in [-1, 1] of the given classes, styled by z (N, Z_DIM)."""
    base = TEMPLATES[classes]
    shift = (torch.tanh(z[:, :2]) * 2.4).round().long()
    out = torch.stack([b.roll((int(s[0]), int(s[1])), dims=(1, 2)) for b, s in zip(base, shift)])
    bright = 0.75 + 0.2 * torch.tanh(z[:, 2])
    texture = (z @ STYLE).view(-1, 1, SIZE, SIZE)
    texture = F.avg_pool2d(texture, 3, stride=1, padding=1)
    return ((out + 1) * bright[:, None, None, None] - 1 + texture).clamp(-1, 1)


def write_folder_dataset(root: Path, per_class: int = 200, seed: int = 12345) -> Path:
    """root/<class>/<i>.png, as a user's folder dataset."""
    g = torch.Generator().manual_seed(seed)
    for c, name in enumerate(CLASSES):
        (root / name).mkdir(parents=True, exist_ok=True)
        imgs = to_uint8(render(torch.randn(per_class, Z_DIM, generator=g), torch.full((per_class,), c)))
        for i, im in enumerate(imgs):
            Image.fromarray(im[0].numpy(), "L").save(root / name / f"{i:04d}.png")
    return root


class FakeGenerator:
    """Same attributes as condgan.pipelines.ClassConditional; `perm` maps a requested label to the class drawn."""

    def __init__(self, data_root: Path, perm: list[int] | None = None):
        self.class_names = list(CLASSES)
        self.num_classes = len(CLASSES)
        self.z_dim = Z_DIM
        self.channels = 1
        self.image_size = SIZE
        self.data = {"name": str(data_root), "data_dir": None, "classes": None, "image_size": SIZE, "channels": 1}
        self.perm = torch.tensor(perm if perm is not None else list(range(len(CLASSES))))

    def noise(self, n: int, seed: int | None = None) -> torch.Tensor:
        g = torch.Generator()
        g.manual_seed(seed if seed is not None else 0)
        return torch.randn(n, self.z_dim, generator=g)

    def __call__(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return render(z, self.perm[torch.as_tensor(labels)])

    def sample_per_class(self, n_per_class: int, seed: int = 0):
        labels = torch.arange(self.num_classes).repeat_interleave(n_per_class)
        return to_uint8(self(self.noise(len(labels), seed), labels)), labels
