"""The evaluator's network: condgan's own offline domain classifier (see eval/evaluator.py).

It lives with the other networks so that both the evaluation (which trains, caches and uses it) and
the frozen-backbone embedder (which reuses its features) build on it from below.
"""

import torch
import torch.nn as nn

FEATURE_DIM = 128


class EvaluatorNet(nn.Module):
    """Three conv blocks (BN + ReLU), pooling to a 3x3 map, a 128-d feature layer, a linear head.

    Adaptive pooling makes it work for any image size while keeping coarse
    layout (a shirt and a T-shirt differ in where things are); ~240k parameters.
    """

    def __init__(self, channels: int, num_classes: int):
        super().__init__()

        def block(cin: int, cout: int, pool: bool) -> list[nn.Module]:
            layers = [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
            return layers + [nn.MaxPool2d(2)] if pool else layers

        self.body = nn.Sequential(*block(channels, 32, True), *block(32, 64, True), *block(64, 128, False),
                                  nn.AdaptiveAvgPool2d(3), nn.Flatten())
        self.embed = nn.Sequential(nn.Linear(128 * 9, FEATURE_DIM), nn.BatchNorm1d(FEATURE_DIM), nn.ReLU(inplace=True))
        self.head = nn.Sequential(nn.Dropout(0.2), nn.Linear(FEATURE_DIM, num_classes))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.embed(self.body(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
