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
        for f in fields:  # edge pixels are repeated: backgrounds stay background
            x = F.pad(out[f], (sw, sw, sh, sh), mode="replicate")
            rows = (torch.arange(h)[None, :] + sh - dy[:, None]).to(x.device)
            cols = (torch.arange(w)[None, :] + sw - dx[:, None]).to(x.device)
            idx = torch.arange(n, device=x.device)[:, None, None]
            out[f] = x.permute(0, 2, 3, 1)[idx, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2).contiguous()
    return out
