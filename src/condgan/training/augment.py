"""Differentiable augmentation (Zhao et al., 2020) for small datasets.

The same random transform family is applied to real and fake images before
D sees them, so D cannot memorise a small training set, and gradients still
flow to G. Randomness comes from the caller's generator so runs resume exactly.
"""

import torch
import torch.nn.functional as F

POLICIES = ("translation", "cutout", "brightness")


def augment(x: torch.Tensor, policy: list[str], gen: torch.Generator) -> torch.Tensor:
    for name in policy:
        x = _OPS[name](x, gen)
    return x


def _brightness(x, gen):
    return x + (torch.rand(len(x), 1, 1, 1, generator=gen) - 0.5)


def _translation(x, gen, ratio: float = 0.125):
    n, _, h, w = x.shape
    sh, sw = max(1, int(h * ratio + 0.5)), max(1, int(w * ratio + 0.5))
    dy = torch.randint(-sh, sh + 1, (n,), generator=gen)
    dx = torch.randint(-sw, sw + 1, (n,), generator=gen)
    padded = F.pad(x, (sw, sw, sh, sh), value=-1.0)  # pad with background (black in [-1, 1])
    rows = (torch.arange(h)[None, :] + sh - dy[:, None])  # (n, h)
    cols = (torch.arange(w)[None, :] + sw - dx[:, None])  # (n, w)
    idx = torch.arange(n)[:, None, None]
    return padded.permute(0, 2, 3, 1)[idx, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)


def _cutout(x, gen, ratio: float = 0.5):
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = torch.randint(0, h + (1 - ch % 2), (n,), generator=gen)
    cx = torch.randint(0, w + (1 - cw % 2), (n,), generator=gen)
    ys = torch.arange(h)[None, :, None]
    xs = torch.arange(w)[None, None, :]
    inside = ((ys - cy[:, None, None]).abs() <= ch // 2) & ((xs - cx[:, None, None]).abs() <= cw // 2)
    return x * (~inside).unsqueeze(1).to(x.dtype)


_OPS = {"translation": _translation, "cutout": _cutout, "brightness": _brightness}


# ----- jitter of paired data: the same random flip / shift for every image field of a sample --------------
JITTER = ("flip", "shift")


def jitter(batch: dict[str, torch.Tensor], ops: list[str], fields: list[str], gen: torch.Generator,
           max_shift: float = 0.125) -> dict[str, torch.Tensor]:
    """Flip and/or shift each sample; a source and its target move together, or the pair would no longer match."""
    n = len(batch[fields[0]])
    out = dict(batch)
    if "flip" in ops:
        flip = torch.rand(n, generator=gen) < 0.5
        for f in fields:
            out[f] = torch.where(flip.to(out[f].device)[:, None, None, None], out[f].flip(-1), out[f])
    if "shift" in ops:
        h, w = out[fields[0]].shape[-2:]
        sh, sw = max(1, int(h * max_shift + 0.5)), max(1, int(w * max_shift + 0.5))
        dy = torch.randint(-sh, sh + 1, (n,), generator=gen)
        dx = torch.randint(-sw, sw + 1, (n,), generator=gen)
        for f in fields:
            out[f] = shift(out[f], dy, dx)
    return out


def shift(x: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor) -> torch.Tensor:
    """Each image moved by its own whole-pixel (dy, dx), down and right; edge pixels are repeated into the gap
    (backgrounds stay background)."""
    n, _, h, w = x.shape
    sh, sw = (int(dy.abs().max()), int(dx.abs().max())) if n else (0, 0)
    padded = F.pad(x, (sw, sw, sh, sh), mode="replicate")
    rows = (torch.arange(h)[None, :] + sh - dy[:, None]).to(x.device)
    cols = (torch.arange(w)[None, :] + sw - dx[:, None]).to(x.device)
    idx = torch.arange(n, device=x.device)[:, None, None]
    return padded.permute(0, 2, 3, 1)[idx, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2).contiguous()


# ----- two views of one image: the positive pair of self-supervised similarity learning -------------------
def view(x: torch.Tensor, gen: torch.Generator, min_scale: float = 0.6) -> torch.Tensor:
    """A random view of each image (float, [-1, 1]): a crop of 60-100% of its side resized back, a
    horizontal flip, contrast and brightness changes, and a cut-out patch. Two views of one image are what
    the self-supervised recipe learns to call similar, so these changes are what it learns to ignore."""
    n = len(x)
    scale = min_scale + (1 - min_scale) * torch.rand(n, generator=gen)
    shift = (1 - scale)[:, None] * (2 * torch.rand(n, 2, generator=gen) - 1)
    flip = torch.where(torch.rand(n, generator=gen) < 0.5, -1.0, 1.0)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 1, 1] = scale * flip, scale
    theta[:, :, 2] = shift
    grid = F.affine_grid(theta.to(x.device), list(x.shape), align_corners=False)
    out = F.grid_sample(x + 1, grid, mode="bilinear", padding_mode="zeros", align_corners=False) - 1  # pad: background
    contrast = (0.6 + 0.8 * torch.rand(n, 1, 1, 1, generator=gen)).to(x.device)
    brightness = (0.4 * torch.rand(n, 1, 1, 1, generator=gen) - 0.2).to(x.device)
    out = ((out + 1) * contrast - 1 + brightness).clamp(-1, 1)
    return _cutout(out, gen, ratio=0.25)
