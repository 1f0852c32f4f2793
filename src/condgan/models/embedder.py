"""Embedding networks: an image in, a unit-length vector out; similar images end up close.

Two kinds, both `Network`s (rebuilt from their recorded arguments) and both
carrying `threshold`, the cosine similarity above which two images are called
"the same" (chosen on training data when a checkpoint is written, so it
travels with the weights into exports):

- `Embedder`: a small CNN trained end to end (siamese, triplet, selfsup recipes).
- `FrozenBackboneEmbedder`: condgan's evaluator network (evaluator_net.py),
  frozen, with a learned two-layer head (the "pre-trained backbone" recipe; the
  backbone comes from the evaluator cache, never from a download).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import Network
from .evaluator_net import FEATURE_DIM, EvaluatorNet


class _Thresholded(Network):
    """Shared by the embedders: the learned verification threshold, saved as a buffer."""

    def _add_threshold(self) -> None:
        self.register_buffer("threshold", torch.tensor(0.5))

    def similarity(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Cosine similarity of two batches of embeddings, row by row."""
        return (a * b).sum(1)


class Embedder(_Thresholded):
    """Three conv blocks (BatchNorm, ReLU, two of them pooling), pooled to a 3x3 map, then a linear layer.

    The same shape as the evaluator, which is known to separate Fashion-MNIST's
    classes well; adaptive pooling makes it take any image size."""

    def __init__(self, channels: int, embed_dim: int = 64, width: int = 32, projector: int = 0):
        super().__init__()

        def block(cin: int, cout: int, pool: bool) -> list[nn.Module]:
            layers = [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
            return layers + [nn.MaxPool2d(2)] if pool else layers

        self.body = nn.Sequential(*block(channels, width, True), *block(width, 2 * width, True),
                                  *block(2 * width, 4 * width, False), nn.AdaptiveAvgPool2d(3), nn.Flatten())
        self.head = nn.Sequential(nn.Linear(4 * width * 9, 256), nn.BatchNorm1d(256), nn.ReLU(inplace=True),
                                  nn.Linear(256, embed_dim))
        # SimCLR's projection head: the self-supervised loss sees its output, the embedding is taken before it,
        # so what the loss makes invariant to the augmentations is absorbed here instead of thrown away.
        self.projector = (nn.Sequential(nn.Linear(embed_dim, projector), nn.ReLU(inplace=True),
                                        nn.Linear(projector, embed_dim)) if projector > 0 else None)
        self._add_threshold()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.head(self.body(x)), dim=1)

    def for_loss(self, x: torch.Tensor) -> torch.Tensor:
        """What the training loss compares: the embedding, or its projection where there is a projector."""
        if self.projector is None:
            return self(x)
        return F.normalize(self.projector(self.head(self.body(x))), dim=1)


class FrozenBackboneEmbedder(_Thresholded):
    """The evaluator's feature layers, frozen (always in eval mode), and a learned head on its 128-d features."""

    def __init__(self, channels: int, num_classes: int, embed_dim: int = 64):
        super().__init__()
        self.backbone = EvaluatorNet(channels, num_classes).requires_grad_(False)
        self.head = nn.Sequential(nn.Linear(FEATURE_DIM, 256), nn.ReLU(inplace=True), nn.Linear(256, embed_dim))
        self._add_threshold()

    def train(self, mode: bool = True) -> "FrozenBackboneEmbedder":
        super().train(mode)
        self.backbone.eval()  # its BatchNorm statistics stay those it was trained with
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            features = self.backbone.features(x)
        return F.normalize(self.head(features), dim=1)
