"""What similarity training treats as "the same": random flips, shifts, crops and colour changes of a batch.

`similarity.augment` names the changes (AUGMENTS). The labelled recipes train on one changed view of each
image, so two images of a class stay close however they are mirrored, moved or lit; the self-supervised
recipe compares two changed views of one image, and always adds the crop and colour change it needs
(SimCLR: without them two views are too alike to teach anything).

Every image gets its own draw. torchvision's v2 transforms draw one set of parameters per call, so a batch
passed whole gets the same crop for every image, and a loop over the images costs 45 ms per 256 28-px images
(a third of a step): the parameters are drawn here, from the caller's generator (so a resumed run draws the
same), and applied to the whole batch at once, with torchvision where it has the batched operation
(`roi_align` for crops, `rgb_to_grayscale`).
"""

from __future__ import annotations

import math

import torch
import torchvision.transforms.v2.functional as TF
from torchvision.ops import roi_align

from .augment import jitter, view

AUGMENTS = ("flip", "shift", "crop", "colour", "classic")
MAX_SHIFT = 1 / 14         # shift: up to this share of the side (2 px at 28 px, as eval/invariance.py), edges repeated
CROP_AREA = (0.5, 1.0)     # crop: share of the image's area kept, then resized back
SELFSUP_CROP_AREA = (0.35, 1.0)  # the self-supervised views' own crop (0.2 and 0.08 screened worse: docs/similarity.md)
COLOUR = {"brightness": 0.4, "contrast": 0.4, "saturation": 0.4, "hue": 0.1, "p": 0.8, "grey": 0.2}


def augment(x: torch.Tensor, ops: list[str], gen: torch.Generator, crop_area: tuple[float, float] = CROP_AREA) -> torch.Tensor:
    """One random view of each image of a float batch in [-1, 1] (N, C, H, W): ops in a fixed order."""
    if not ops:
        return x
    nhwc = x.dim() == 4 and x.shape[1] > 1 and x.is_contiguous(memory_format=torch.channels_last)
    if "crop" in ops:
        x = random_crop(x, gen, crop_area)
    if "flip" in ops or "shift" in ops:
        x = jitter({"image": x}, [o for o in ("flip", "shift") if o in ops], ["image"], gen, MAX_SHIFT)["image"]
    if "colour" in ops:
        x = colour(x, gen)
    return x.contiguous(memory_format=torch.channels_last) if nhwc else x


def selfsup_view(x: torch.Tensor, ops: list[str], gen: torch.Generator) -> torch.Tensor:
    """A view for the self-supervised recipe: `ops` plus a hard crop and a colour change. 'classic' is the
    view of runs from before similarity.augment (crop 60-100 %, flip, contrast, brightness, cut-out)."""
    if "classic" in ops:
        return view(x, gen)
    return augment(x, sorted(set(ops) | {"crop", "colour"}), gen, SELFSUP_CROP_AREA)


def random_crop(x: torch.Tensor, gen: torch.Generator, area: tuple[float, float]) -> torch.Tensor:
    """A crop of each image (area share in `area`, aspect ratio 3/4 to 4/3), resized back to the full size."""
    n, _, h, w = x.shape
    share = area[0] + (area[1] - area[0]) * torch.rand(n, generator=gen)
    ratio = torch.exp(math.log(3 / 4) + math.log(16 / 9) * torch.rand(n, generator=gen))
    cw = (share * ratio).sqrt().clamp(max=1) * w
    ch = (share / ratio).sqrt().clamp(max=1) * h
    left = (w - cw) * torch.rand(n, generator=gen)
    top = (h - ch) * torch.rand(n, generator=gen)
    boxes = torch.stack([torch.arange(n, dtype=torch.float), left, top, left + cw, top + ch], 1).to(x.device, x.dtype)
    return roi_align(x, boxes, (h, w), spatial_scale=1.0, sampling_ratio=1, aligned=True)


def colour(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """SimCLR's colour change on 80 % of the images: brightness and contrast (grey or RGB), saturation, hue and
    20 % turned grey (RGB only), with each image's own factors."""
    n, c = x.shape[:2]
    applied = (torch.rand(n, generator=gen) < COLOUR["p"]).to(x.device)[:, None, None, None]

    def factor(strength: float) -> torch.Tensor:
        return (1 + strength * (2 * torch.rand(n, generator=gen) - 1)).to(x.device, x.dtype)[:, None, None, None]

    y = (x + 1) / 2  # torchvision's [0, 1]
    y = (y * factor(COLOUR["brightness"])).clamp(0, 1)
    grey = TF.rgb_to_grayscale(y) if c == 3 else y
    y = (grey.mean((1, 2, 3), keepdim=True) + factor(COLOUR["contrast"]) * (y - grey.mean((1, 2, 3), keepdim=True))).clamp(0, 1)
    if c == 3:
        grey = TF.rgb_to_grayscale(y, 3)
        y = (grey + factor(COLOUR["saturation"]) * (y - grey)).clamp(0, 1)
        y = _hue(y, COLOUR["hue"] * (2 * torch.rand(n, generator=gen) - 1)).clamp(0, 1)
        to_grey = (torch.rand(n, generator=gen) < COLOUR["grey"]).to(x.device)[:, None, None, None]
        y = torch.where(to_grey, TF.rgb_to_grayscale(y, 3), y)
    return torch.where(applied, y * 2 - 1, x)


def _hue(y: torch.Tensor, turn: torch.Tensor) -> torch.Tensor:
    """Rotate each RGB image's colours about the grey axis by `turn` of a full circle (a hue change that keeps
    grey grey), as one batched 3x3 matrix product."""
    a = (2 * math.pi * turn).to(y.device, y.dtype)
    cos, sin = a.cos()[:, None, None], a.sin()[:, None, None]
    k = torch.full((3,), 1 / math.sqrt(3), device=y.device, dtype=y.dtype)
    cross = torch.tensor([[0, -1, 1], [1, 0, -1], [-1, 1, 0]], device=y.device, dtype=y.dtype) / math.sqrt(3)
    rotation = cos * torch.eye(3, device=y.device, dtype=y.dtype) + sin * cross + (1 - cos) * torch.outer(k, k)
    return torch.einsum("nij,njhw->nihw", rotation, y)

