"""Pictures shared by training, sampling and evaluation: labelled image grids and loss plots."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from torchvision.utils import make_grid, save_image

from .data.imageset import to_float
from .untrusted import printable

GRID_COLUMNS = 8  # previews: images per row (the fixed noise of a class grid has this many draws)

# Tried in order for each character of a label (matplotlib falls back glyph by glyph); those not installed are skipped.
LABEL_FONTS = ("DejaVu Sans", "Noto Sans", "Noto Sans CJK JP", "Noto Sans CJK SC", "WenQuanYi Zen Hei",
               "Droid Sans Fallback", "Noto Sans Arabic", "Noto Sans Devanagari", "Liberation Sans")


@functools.lru_cache(maxsize=1)
def _label_fonts() -> tuple[list[str], frozenset[int]]:
    """The installed LABEL_FONTS and every code point they can draw."""
    from matplotlib import font_manager
    from matplotlib.ft2font import FT2Font

    installed = {f.name for f in font_manager.fontManager.ttflist}
    families, drawable = [], set()
    for family in LABEL_FONTS:
        if family not in installed:
            continue
        try:
            path = font_manager.findfont(font_manager.FontProperties(family=family), fallback_to_default=False)
            drawable |= set(FT2Font(path).get_charmap())
            families.append(family)
        except (ValueError, RuntimeError, OSError):
            continue
    return families or ["DejaVu Sans"], frozenset(drawable)


def drawable_label(text) -> str:
    """A class name as a picture can show it: control characters escaped, and characters that no installed font
    can draw written as \\uXXXX (with a warning naming a font package) instead of silently becoming empty boxes."""
    text = printable(text, 40)
    fonts, glyphs = _label_fonts()
    if not glyphs or all(ord(ch) in glyphs for ch in text):
        return text
    missing = "".join(dict.fromkeys(ch for ch in text if ord(ch) not in glyphs))
    _warn_missing_glyphs(missing[:5])
    return "".join(ch if ord(ch) in glyphs else f"\\u{ord(ch):04x}" for ch in text)


@functools.lru_cache(maxsize=64)
def _warn_missing_glyphs(chars: str) -> None:
    import warnings

    warnings.warn(f"no installed font draws {chars!r} in class names; grids show them as \\u escapes "
                  f"(install a font that covers them, e.g. Debian's fonts-noto-cjk)", stacklevel=3)


def _as_float(images: torch.Tensor) -> torch.Tensor:
    return to_float(images) if images.dtype == torch.uint8 else images.float()


def save_grid(images: torch.Tensor, path: Path, nrow: int, row_names: list[str] | None = None,
              title: str | None = None) -> Path:
    """Save images (uint8, or float in [-1, 1]) as a grid; with row_names, label each row on the left."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    images = _as_float(images)
    if not row_names and not title:
        save_image(images, path, nrow=nrow, normalize=True, value_range=(-1, 1), padding=2, pad_value=1.0)
        return path
    grid = make_grid(images, nrow=nrow, normalize=True, value_range=(-1, 1), padding=2, pad_value=1.0)
    h, w = grid.shape[1:]
    scale = max(1.0, 64 / images.shape[-1]) / 100  # inches per pixel: small images are drawn larger
    fig = Figure(figsize=(w * scale + (1.3 if row_names else 0.2), h * scale + (0.5 if title else 0.2)), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.imshow(grid.permute(1, 2, 0).numpy(), interpolation="nearest")
    ax.set_xticks([])
    if row_names:
        step = (h - 2) / len(row_names)
        ax.set_yticks([2 + step * (i + 0.5) for i in range(len(row_names))], [drawable_label(n) for n in row_names],
                      fontsize=8, fontfamily=_label_fonts()[0])
    else:
        ax.set_yticks([])
    if title:
        ax.set_title(printable(title, 200), fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    return path


def save_sheet(columns: list[torch.Tensor], column_names: list[str], path: Path, title: str | None = None,
               row_names: list[str] | None = None) -> Path:
    """Images side by side, one row per item: e.g. source | output | target of a translator, so blur,
    lost detail and ignored inputs show at a glance. Columns may differ in channels (a grey mask beside a
    colour photo): 1 channel is drawn grey, 3 as colour, any other count as its first three planes."""
    columns = [_as_rgb(c) for c in columns]
    n = len(columns[0])
    cells = torch.stack(columns, dim=1).flatten(0, 1)  # item-major: row i holds column 0..k-1 of item i
    grid = make_grid(cells, nrow=len(columns), normalize=True, value_range=(-1, 1), padding=2, pad_value=1.0)
    h, w = grid.shape[1:]
    scale = max(1.0, 64 / cells.shape[-1]) / 100  # inches per pixel, as in save_grid
    fig = Figure(figsize=(w * scale + (1.3 if row_names else 0.2), h * scale + (0.8 if title else 0.5)), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.imshow(grid.permute(1, 2, 0).numpy(), interpolation="nearest")
    ax.xaxis.tick_top()
    ax.set_xticks([2 + (w - 2) / len(columns) * (i + 0.5) for i in range(len(columns))], column_names, fontsize=9)
    ax.tick_params(axis="x", length=0)
    if row_names:
        ax.set_yticks([2 + (h - 2) / n * (i + 0.5) for i in range(n)], [drawable_label(r) for r in list(row_names)[:n]],
                      fontsize=8, fontfamily=_label_fonts()[0])
    else:
        ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9, pad=18)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path


def _as_rgb(images: torch.Tensor) -> torch.Tensor:
    """Any images as 3-channel floats in [-1, 1]."""
    x = _as_float(images)
    c = x.shape[1]
    if c == 1:
        return x.expand(-1, 3, -1, -1)
    if c >= 3:
        return x[:, :3]
    return torch.cat([x, x.new_full((len(x), 3 - c, *x.shape[2:]), -1.0)], dim=1)


def loss_plot(metrics_file: Path, out: Path) -> None:
    """Plot every logged loss (loss_* keys) from metrics.jsonl as a PNG. Drawn on a figure of its own (no pyplot),
    so training inside a notebook leaves the user's matplotlib backend as it was."""
    records = [json.loads(line) for line in Path(metrics_file).read_text().splitlines() if line.strip()]
    records = [r for r in records if any(k.startswith("loss_") for k in r)]
    if not records:
        return
    steps = [r["step"] for r in records]
    fig = Figure(figsize=(7, 3.5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    keys = [k for k in records[-1] if k.startswith("loss_")]  # every loss term the task logs
    for key in keys:
        ax.plot(steps, [r.get(key, float("nan")) for r in records], label=key.removeprefix("loss_").upper() + " loss"
                if key in ("loss_d", "loss_g") else key.removeprefix("loss_") + " term")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out)
