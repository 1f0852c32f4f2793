"""How a condition enters a network: conditional BatchNorm (FiLM on normalised features)."""

import torch
from torch import nn


class ConditionalBatchNorm2d(nn.Module):
    """BatchNorm whose gain and bias are looked up per class, or (cond_dim > 0) computed from a vector.

    The condition modulates every feature map of every block, which steers the
    generator far more strongly than concatenating it at the input. A vector
    condition (an exemplar's embedding) goes through a linear map instead of a
    table lookup; at zero-init the gain is 1 and the bias 0, as for classes.
    """

    def __init__(self, channels: int, num_classes: int, cond_dim: int = 0):
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, affine=False)
        if cond_dim > 0:
            self.gain = nn.Linear(cond_dim, channels)
            self.bias = nn.Linear(cond_dim, channels)
            for layer in (self.gain, self.bias):
                nn.init.zeros_(layer.weight)
                nn.init.zeros_(layer.bias)
            self.gain.bias.data.fill_(1.0)
        else:
            self.gain = nn.Embedding(num_classes, channels)
            self.bias = nn.Embedding(num_classes, channels)
            nn.init.ones_(self.gain.weight)
            nn.init.zeros_(self.bias.weight)

    def forward(self, x: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        gain = self.gain(condition)[:, :, None, None]
        bias = self.bias(condition)[:, :, None, None]
        return self.bn(x) * gain + bias
