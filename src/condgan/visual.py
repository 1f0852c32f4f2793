"""Pictures made during training and sampling: labelled class grids and loss plots."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from PIL import Image, ImageDraw
from torchvision.utils import make_grid

from .data.imageset import to_uint8


def class_grid(images: torch.Tensor, row_names: list[str], scale: int = 2) -> Image.Image:
    """Images (rows*cols, C, H, W) in [-1, 1], row-major, with each row's class name at its left."""
    rows = len(row_names)
    cols = len(images) // rows
    grid = make_grid(images.float().clamp(-1, 1), nrow=cols, padding=2, pad_value=1.0, normalize=True, value_range=(-1, 1))
    arr = to_uint8(grid * 2 - 1).permute(1, 2, 0).numpy()
    picture = Image.fromarray(arr if arr.shape[2] == 3 else arr[..., 0])
    picture = picture.resize((picture.width * scale, picture.height * scale), Image.Resampling.NEAREST).convert("RGB")
    margin = 8 + 7 * max(len(n) for n in row_names)
    out = Image.new("RGB", (picture.width + margin, picture.height), "white")
    out.paste(picture, (margin, 0))
    draw = ImageDraw.Draw(out)
    row_h = picture.height / rows
    for r, name in enumerate(row_names):
        draw.text((4, int(r * row_h + row_h / 2 - 5)), name, fill="black")
    return out


def loss_plot(metrics_file: Path, out: Path) -> None:
    """Plot D and G losses from metrics.jsonl as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = [json.loads(line) for line in Path(metrics_file).read_text().splitlines() if line.strip()]
    records = [r for r in records if "loss_d" in r]
    if not records:
        return
    steps = [r["step"] for r in records]
    fig, ax = plt.subplots(figsize=(7, 3.5), dpi=100)
    ax.plot(steps, [r["loss_d"] for r in records], label="D loss")
    ax.plot(steps, [r["loss_g"] for r in records], label="G loss")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
