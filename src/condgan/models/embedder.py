"""Embedding networks: an image in, a unit-length vector out; similar images end up close.

Two kinds, both `Network`s (rebuilt from their recorded arguments) and both
carrying `threshold`, the cosine similarity above which two images are called
"the same" (chosen on training data when a checkpoint is written, so it
travels with the weights into exports):

- `Embedder`: a small CNN trained end to end (siamese, triplet, selfsup recipes); selfsup's also appends
  its pooled conv features, reduced to their principal directions (`features`), and where that lies on the
  training images' neighbour graph (`graph`, models/manifold.py).
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
from .manifold import GraphCoordinates


class _Thresholded(Network):
    """Shared by the embedders: the learned verification threshold, saved as a buffer."""

    def _add_threshold(self) -> None:
        self.register_buffer("threshold", torch.tensor(0.5))

    def fit_features(self, x: torch.Tensor) -> None:
        """Embedders without a conv-feature half have nothing to fit."""

    def fit_graph(self, x: torch.Tensor) -> None:
        """Embedders without graph coordinates have nothing to fit."""

    def similarity(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Cosine similarity of two batches of embeddings, row by row."""
        return (a * b).sum(1)


def pooled_size(width: int) -> int:
    """Length of an Embedder's pooled conv features: its last block's 4 x width channels on a 3 x 3 grid."""
    return 4 * width * 9


class Embedder(_Thresholded):
    """Three conv blocks (BatchNorm, ReLU, two of them pooling), pooled to a 3x3 map, then a linear layer.

    The same shape as the evaluator, which is known to separate Fashion-MNIST's
    classes well; adaptive pooling makes it take any image size."""

    def __init__(self, channels: int, embed_dim: int = 64, width: int = 32, projector: int = 0, features: int = 0,
                 flip_features: bool = False, graph: int = 0, graph_refs: int = 0):
        super().__init__()
        self.embed_dim, self.features, self.flip_features = embed_dim, features, flip_features
        self.graph_coords = graph if graph_refs > 0 else 0

        def block(cin: int, cout: int, pool: bool) -> list[nn.Module]:
            layers = [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
            return layers + [nn.MaxPool2d(2)] if pool else layers

        self.body = nn.Sequential(*block(channels, width, True), *block(width, 2 * width, True),
                                  *block(2 * width, 4 * width, False), nn.AdaptiveAvgPool2d(3), nn.Flatten())
        self.head = nn.Sequential(nn.Linear(pooled_size(width), 256), nn.BatchNorm1d(256), nn.ReLU(inplace=True),
                                  nn.Linear(256, embed_dim))
        # SimCLR's projection head: the self-supervised loss sees its output, the embedding is taken before it,
        # so what the loss makes invariant to the augmentations is absorbed here instead of thrown away.
        self.projector = (nn.Sequential(nn.Linear(embed_dim, projector), nn.ReLU(inplace=True),
                                        nn.Linear(projector, embed_dim)) if projector > 0 else None)
        if features > 0:  # the pooled conv features' principal directions, fitted by `fit_features`
            self.register_buffer("feature_basis", torch.zeros(pooled_size(width), features))
        # spectral coordinates on the training images' neighbour graph, fitted by `fit_graph`
        self.graph = GraphCoordinates(embed_dim + features, graph, graph_refs) if self.graph_coords else None
        self._add_threshold()

    @property
    def dim(self) -> int:
        """Length of an embedding: the head's output, plus the reduced conv features and the graph coordinates
        where there are some."""
        return self.embed_dim + self.features + self.graph_coords

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e = self._local(x)
        if self.graph is None:
            return e
        # Both parts unit length again: cosine similarity is the mean of the local embedding's and the graph
        # coordinates' (zeros before the first fit leave the local one alone; docs/similarity.md).
        return F.normalize(torch.cat([e, self.graph(e).to(e.dtype)], dim=1), dim=1)

    def _local(self, x: torch.Tensor) -> torch.Tensor:
        """The embedding from the image alone: the head's, with the conv features where there are some."""
        pooled = self.body(x)
        e = F.normalize(self.head(pooled), dim=1)
        if self.features == 0:
            return e
        # Both halves unit length, so cosine similarity is the mean of the head's and the features' (a zero
        # basis, before the first fit, leaves the head's alone): the head serves the loss, the features keep
        # the finer look of an image that the head's last layer gives up (docs/similarity.md).
        f = F.normalize(self._features(x, pooled) @ self.feature_basis, dim=1).to(e.dtype)
        return F.normalize(torch.cat([e, f], dim=1), dim=1)

    def _features(self, x: torch.Tensor, pooled: torch.Tensor) -> torch.Tensor:
        """The pooled conv features, averaged with the mirrored image's where the run calls a mirrored image the
        same one (flip in similarity.augment): the conv layers keep the layout the head learns to ignore, and
        precision@1 with mirrored queries fell 6 points without this (docs/similarity.md)."""
        if self.flip_features:
            pooled = (pooled + self.body(x.flip(-1))) / 2
        return pooled.float()

    @torch.no_grad()
    def fit_features(self, x: torch.Tensor) -> None:
        """The basis: the top principal directions (uncentred, so cosine geometry is kept) of these images'
        pooled conv features. Needs no labels; the similarity step refits it whenever it saves."""
        if self.features == 0:
            return
        pooled = self._in_eval_batches(lambda b: self._features(b, self.body(b)), x)
        basis = torch.linalg.svd(pooled, full_matrices=False).Vh[:self.features].T
        self.feature_basis.zero_()[:, :basis.shape[1]] = basis

    @torch.no_grad()
    def fit_graph(self, x: torch.Tensor) -> None:
        """The graph coordinates, from these (training) images' local embeddings; no labels. Refitted with the
        feature basis whenever a checkpoint is written, after it (the graph is built on what it gives)."""
        if self.graph is None:
            return
        self.graph.fit(self._in_eval_batches(self._local, x))

    def _in_eval_batches(self, fn, x: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
        """fn over x in batches, in eval mode (BatchNorm's running statistics, as at use), the mode restored."""
        was_training = self.training
        self.eval()
        out = torch.cat([fn(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])
        self.train(was_training)
        return out

    def for_loss(self, x: torch.Tensor) -> torch.Tensor:
        """What the training loss compares: the head's embedding, or its projection where there is a projector
        (never the conv features `forward` may add)."""
        if self.projector is None:
            return F.normalize(self.head(self.body(x)), dim=1)
        return F.normalize(self.projector(self.head(self.body(x))), dim=1)


class FrozenBackboneEmbedder(_Thresholded):
    """The evaluator's feature layers, frozen (always in eval mode), and a learned head on its 128-d features."""

    def __init__(self, channels: int, num_classes: int, embed_dim: int = 64):
        super().__init__()
        self.dim = embed_dim
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
