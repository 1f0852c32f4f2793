"""A small image classifier trained alongside the generators (the two-stage joint stage's C).

It learns label A from real images only, and the generators are rewarded when
it recognises the requested label in what they made, as D's class head does in
an AC-GAN. No BatchNorm, so its verdict on a generated batch does not depend on
the rest of the batch.
"""

import torch
import torch.nn.functional as F
from torch import nn

from .base import Network


class Classifier(Network):
    """(N, channels, H, W) in [-1, 1] -> (N, num_classes) logits; three convs (two stride 2), global pooling."""

    def __init__(self, channels: int, num_classes: int, width: int = 32):
        super().__init__()
        self.convs = nn.ModuleList([nn.Conv2d(channels, width, 3, padding=1),
                                    nn.Conv2d(width, 2 * width, 4, stride=2, padding=1),
                                    nn.Conv2d(2 * width, 4 * width, 4, stride=2, padding=1)])
        self.head = nn.Linear(4 * width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        for conv in self.convs:
            h = F.leaky_relu(conv(h), 0.2)
        return self.head(h.mean(dim=(2, 3)))
