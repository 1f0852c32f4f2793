"""Does an embedder hold under what users call "the same"? The verification and retrieval figures again, with
one side of every comparison mirrored, and again moved by a few pixels.

A mirrored sandal is still a sandal and a photo taken a little to the left still shows the same thing, so
a good embedding scores these pairs as it scores the plain ones. An embedder that learned pixel positions
instead loses ROC AUC here (issue 25: 0.978 plain, 0.879 with one side mirrored, for a triplet run trained
without augmentation).

- flipped: the second image of every verification pair is mirrored left-right; each query of P@1 is
  mirrored and searched among the other, plain, test images;
- shifted: the same with each image moved by its own seeded offset of up to SHIFT_SHARE of the side
  (2 px at 28 px, 5 px at 64 px; never (0, 0)), edge pixels repeated into the gap.
"""

from __future__ import annotations

import torch
import torchvision.transforms.v2.functional as TF

from ..data import to_float
from ..training.augment import shift

CHANGES = ("flipped", "shifted")
SHIFT_SHARE = 1 / 14  # largest shift, as a share of the side: 2 px at 28 px


def max_shift(side: int) -> int:
    return max(1, round(side * SHIFT_SHARE))


def changed(images: torch.Tensor, change: str, seed: int) -> torch.Tensor:
    """Float images in [-1, 1], each mirrored ('flipped') or moved by its own seeded offset ('shifted')."""
    x = to_float(images) if images.dtype == torch.uint8 else images.float()
    if change == "flipped":
        return TF.horizontal_flip(x)
    s = max_shift(min(x.shape[-2:]))
    g = torch.Generator().manual_seed(seed * 1_000_003 + 25)
    offsets = torch.tensor([(dy, dx) for dy in range(-s, s + 1) for dx in range(-s, s + 1) if (dy, dx) != (0, 0)])
    pick = offsets[torch.randint(len(offsets), (len(x),), generator=g)]
    return shift(x, pick[:, 0], pick[:, 1])


def precision_at_1(queries: torch.Tensor, gallery: torch.Tensor, labels: torch.Tensor, chunk: int = 1024) -> float:
    """Share of queries whose most similar gallery embedding (its own row left out: query i is a changed copy
    of gallery image i) has the query's label."""
    hits = 0
    for start in range(0, len(queries), chunk):
        sims = queries[start:start + chunk] @ gallery.T
        rows = torch.arange(len(sims))
        sims[rows, rows + start] = float("-inf")
        hits += int((labels[sims.argmax(1)] == labels[start:start + len(sims)]).sum())
    return hits / max(len(queries), 1)


def changed_embeddings(model, images: torch.Tensor, seed: int) -> dict[str, torch.Tensor]:
    """The embeddings of the images flipped, and of the images shifted: {change: (N, D)}."""
    return {change: model.embed(changed(images, change, seed)) for change in CHANGES}


ROWS = [row for change in CHANGES for row in (
    (f"roc_auc_{change}", f"ROC AUC, second image {change}", "num"),
    (f"eer_{change}", f"equal error rate, second image {change}", "pct"),
    (f"precision_at_1_{change}", f"precision@1, query {change}", "pct"))]
NOTE = (f"Invariance: the same pairs with the second image mirrored left-right (flipped), or moved by its own seeded "
        f"offset of up to {SHIFT_SHARE * 28:.0f} px per 28 px of side (shifted); precision@1 with each query changed and "
        f"its own plain image left out of the gallery. A run told that mirror images differ (no flip in "
        f"similarity.augment: digits, letters) is expected to lose some of its flipped figures.")
