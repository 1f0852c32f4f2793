"""How a label enters a network: conditional BatchNorm (FiLM on normalised features)."""

import torch
from torch import nn


class ConditionalBatchNorm2d(nn.Module):
    """BatchNorm whose gain and bias are looked up per class.

    The label modulates every feature map of every block, which steers the
    generator far more strongly than concatenating a label at the input.
    """

    def __init__(self, channels: int, num_classes: int):
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, affine=False)
        self.gain = nn.Embedding(num_classes, channels)
        self.bias = nn.Embedding(num_classes, channels)
        nn.init.ones_(self.gain.weight)
        nn.init.zeros_(self.bias.weight)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        gain = self.gain(labels)[:, :, None, None]
        bias = self.bias(labels)[:, :, None, None]
        return self.bn(x) * gain + bias
