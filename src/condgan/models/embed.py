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

    def __init__(self, channels: int, num_classes: int, cond_dim: int = 0, noise_dim: int = 0):
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, affine=False)
        # noise_dim > 0 (BigGAN's skip-z): the noise also shifts gain and bias, so it steers every block, not only
        # G's first layer; zero-initialised, so training starts from the class-only modulation
        self.noise = nn.Linear(noise_dim, 2 * channels) if noise_dim > 0 else None
        if self.noise is not None:
            nn.init.zeros_(self.noise.weight)
            nn.init.zeros_(self.noise.bias)
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

    def forward(self, x: torch.Tensor, condition: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        gain, bias = self.gain(condition), self.bias(condition)
        if self.noise is not None:
            shift_gain, shift_bias = self.noise(noise).chunk(2, dim=1)
            gain, bias = gain + shift_gain, bias + shift_bias
        return self.bn(x) * gain[:, :, None, None] + bias[:, :, None, None]
