"""Diagnostic pictures people look at before the numbers.

- interference grid: one noise vector per column, one label per row; a model
  that obeys its labels changes the class down a column and keeps the style
  (thickness, pose, brightness) along a row;
- latent traversal: interpolation between two noises with the label fixed; the
  class must not change along the way (we report the fraction of frames the
  evaluator still gives the label);
- one sheet of samples per class, and the confusion matrix.

Figures use matplotlib's object API with the Agg canvas, never pyplot, so no
display is needed and no global backend is switched under the user's feet.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..data import to_uint8
from ..pipelines.latents import slerp, truncation_note
from ..visual import drawable_label, save_grid
from .evaluator import Evaluator


def draw_noise(gen, n: int, seed: int, truncation: float | None = None) -> torch.Tensor:
    """gen.noise(n, seed), truncated at ±truncation when asked (pipelines/latents.truncate); a generator of
    one's own whose noise() takes no truncation is called as before when none is asked."""
    return gen.noise(n, seed=seed) if truncation is None else gen.noise(n, seed=seed, truncation=truncation)


@torch.no_grad()
def interference_grid(gen, path: Path, n_cols: int = 8, seed: int = 0, truncation: float | None = None) -> Path:
    """Same noise in every row, one label per row: style should stay, class should change."""
    k = gen.num_classes
    z = draw_noise(gen, n_cols, seed, truncation).repeat(k, 1)
    labels = torch.arange(k).repeat_interleave(n_cols)
    images = gen(z, labels)
    return save_grid(images, path, nrow=n_cols, row_names=list(gen.class_names),
                     title="same noise in each column, one label per row" + truncation_note(truncation))


@torch.no_grad()
def latent_traversal(gen, ev: Evaluator, class_map: torch.Tensor, path: Path, frames: int = 10,
                     pairs_per_class: int = 8, seed: int = 0, truncation: float | None = None) -> dict:
    """Interpolate between two noises inside each label (truncated ones when asked); picture one path per class
    and report the fraction of all frames the evaluator still classifies as that label."""
    k = gen.num_classes
    n = k * pairs_per_class
    z0, z1 = draw_noise(gen, n, seed + 1, truncation), draw_noise(gen, n, seed + 2, truncation)
    t = torch.linspace(0, 1, frames)
    z = slerp(z0.repeat_interleave(frames, 0), z1.repeat_interleave(frames, 0), t.repeat(n))
    labels = torch.arange(k).repeat_interleave(pairs_per_class * frames)
    images = gen(z, labels)
    _, logits = ev.run(to_uint8(images))
    kept = logits.argmax(1) == class_map[labels]
    per_class = kept.view(k, -1).float().mean(1).tolist()
    first_path = images.view(k, pairs_per_class, frames, *images.shape[1:])[:, 0].reshape(-1, *images.shape[1:])
    save_grid(first_path, path, nrow=frames, row_names=list(gen.class_names),
              title="slerp between two noises, label fixed per row" + truncation_note(truncation))
    return {"fraction_kept": kept.float().mean().item(), "per_class": per_class,
            "frames": frames, "paths_per_class": pairs_per_class}


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "class"


def sample_sheets(images: torch.Tensor, labels: torch.Tensor, class_names: list[str], folder: Path,
                  per_class: int = 64, overview_per_class: int = 10, truncation: float | None = None) -> dict:
    """One sheet per class (folder/samples/<class>.png) and an overview with one row per class."""
    folder = Path(folder)
    sheets, rows = {}, []
    for c, name in enumerate(class_names):
        mine = images[labels == c]
        if len(mine) == 0:
            continue
        sheets[name] = str(save_grid(mine[:per_class], folder / "samples" / f"{c:02d}_{_slug(name)}.png",
                                     nrow=int(math.ceil(math.sqrt(min(per_class, len(mine)))))).relative_to(folder))
        row = mine[:overview_per_class]
        if len(row) < overview_per_class:  # pad short classes with white so rows stay aligned
            pad = torch.full((overview_per_class - len(row), *row.shape[1:]), 255, dtype=row.dtype)
            row = torch.cat([row.to(torch.uint8) if row.dtype == torch.uint8 else to_uint8(row), pad])
        rows.append(row if row.dtype == torch.uint8 else to_uint8(row))
    present = [n for c, n in enumerate(class_names) if (labels == c).any()]
    overview = save_grid(torch.cat(rows), folder / "samples.png", nrow=overview_per_class, row_names=present,
                         title="samples, one row per requested label" + truncation_note(truncation))
    return {"overview": overview.name, "per_class": sheets}


def confusion_png(confusion: list[list[int]], class_names: list[str], path: Path, title: str) -> Path:
    """Row-normalised confusion matrix: rows are requested labels, columns the evaluator's verdict."""
    m = torch.tensor(confusion, dtype=torch.float64)
    norm = m / m.sum(1, keepdim=True).clamp(min=1)
    cols = list(class_names) + (["other"] if m.shape[1] > len(class_names) else [])
    size = 2.5 + 0.45 * len(cols)
    fig = Figure(figsize=(size + 1, size), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    im = ax.imshow(norm.numpy(), cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(cols)), [drawable_label(c) for c in cols], rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(class_names)), [drawable_label(c) for c in class_names], fontsize=8)
    ax.set_xlabel("evaluator says")
    ax.set_ylabel("requested label")
    ax.set_title(title, fontsize=9)
    if len(cols) <= 15:
        for i in range(norm.shape[0]):
            for j in range(norm.shape[1]):
                if norm[i, j] >= 0.005:
                    ax.text(j, i, f"{norm[i, j]:.2f}", ha="center", va="center", fontsize=6,
                            color="white" if norm[i, j] > 0.5 else "black")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path
