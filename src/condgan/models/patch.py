"""Patch discriminator for paired translation (pix2pix's PatchGAN, with a projection head).

D judges (source, image) pairs patch by patch: each score covers one
receptive field, so D has to check local texture and local agreement with the
source everywhere, and the U-Net's skips take care of global layout. The
patch grows with the image (2 stride-2 layers below 64 px, 3 from 64 px).

Spectral norm and no BatchNorm: real and fake batches can share one forward
pass, and any loss that averages over the score map (hinge, lsgan, bce) works.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from .base import Network


def plan_patch_layers(height: int, width: int) -> int:
    """Default number of stride-2 layers: 2 below 64 px, 3 from 64 px; fewer if the score map would be under 2x2."""
    n = 2 if min(height, width) < 64 else 3
    while n > 1 and min(height, width) // 2**n < 2:
        n -= 1
    return n


class PatchDiscriminator(Network):
    """D(image, source, label) -> {"score": (N,1,h',w') logits, "classes": (N,K) or None, "features": [maps]}."""

    def __init__(self, channels: int, source_channels: int, height: int, width: int, base_width: int = 32,
                 num_classes: int = 0, class_head: bool = False, n_layers: int | None = None):
        super().__init__()
        if class_head and num_classes <= 0:
            raise ValueError("class_head=True needs num_classes > 0")
        n = plan_patch_layers(height, width) if n_layers is None else n_layers
        if n < 1 or min(height, width) // 2**n < 2:
            raise ValueError(f"n_layers={n} leaves less than a 2x2 score map at {height}x{width}")
        self.num_classes = num_classes
        widths = [base_width * min(2**i, 8) for i in range(n + 1)]

        convs = []
        c = channels + source_channels
        for i in range(n):  # 4x4 stride-2 convs: each halves the map and roughly doubles the patch
            convs.append(spectral_norm(nn.Conv2d(c, widths[i], 4, stride=2, padding=1)))
            c = widths[i]
        convs.append(spectral_norm(nn.Conv2d(c, widths[n], 3, padding=1)))  # stride 1: more context, same map size
        self.convs = nn.ModuleList(convs)
        self.score = spectral_norm(nn.Conv2d(widths[n], 1, 3, padding=1))
        # Projection (Miyato & Koyama): score += <embed(label), features> at every location.
        self.embed = spectral_norm(nn.Embedding(num_classes, widths[n])) if num_classes > 0 else None
        # Auxiliary classifier (AC-GAN) on pooled features; built only when asked for, so no idle parameters.
        self.classifier = spectral_norm(nn.Linear(widths[n], num_classes)) if class_head else None
        _init(self)

    def forward(self, x: torch.Tensor, source: torch.Tensor, labels: torch.Tensor | None = None) -> dict:
        """Score the pair (x, source). `labels` are required iff num_classes > 0, else ignored."""
        if self.num_classes > 0 and labels is None:
            raise ValueError("this PatchDiscriminator is class-conditional (num_classes > 0): pass labels")
        h = torch.cat([source, x], dim=1)  # <- source enters here (paired with the image on channels)
        features = []
        for conv in self.convs:
            h = F.leaky_relu(conv(h), 0.2)
            features.append(h)

        score = self.score(h)
        if self.embed is not None:
            projection = (self.embed(labels)[:, :, None, None] * h).sum(dim=1, keepdim=True)
            score = score + projection  # <- label enters here (projection at each patch)
        classes = self.classifier(h.mean(dim=(2, 3))) if self.classifier is not None else None
        return {"score": score, "classes": classes, "features": features}


def _init(module: nn.Module) -> None:
    """Xavier on the un-normalised weights (as in resnet.py); spectral norm then fixes each layer's scale."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear, nn.Embedding)):
            w = m.parametrizations.weight.original if hasattr(m, "parametrizations") else m.weight
            nn.init.xavier_uniform_(w)
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)
