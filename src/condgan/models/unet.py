"""U-Net generator for paired image-to-image translation (pix2pix-like).

The source image is encoded down to a ~4 px bottleneck and decoded back up,
with every encoder feature map handed across to the decoder level of the same
size. Those skips carry the source's fine detail straight to the output,
which is what keeps translated images sharp; the bottleneck only has to
decide *what* to draw, not where the edges are.

Conditions:
- the source image enters at the first encoder layer and again, at full
  resolution, right before the output conv;
- the noise z is broadcast over the bottleneck and concatenated there;
- the class label enters every decoder normalisation (conditional
  BatchNorm), so a second-stage generator is just this network with a second
  label.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .base import Network
from .embed import ConditionalBatchNorm2d


def plan_depth(height: int, width: int) -> int:
    """Stride-2 levels so the bottleneck is ~4 px on the shorter side: 28/32 -> 3, 64 -> 4, 256 -> 6 (at least 2)."""
    if min(height, width) < 4:
        raise ValueError(f"image size {height}x{width} is too small for a U-Net (need at least 4 px)")
    return max(2, round(math.log2(min(height, width) / 4)))


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Replicate-pad H and W up to a multiple (split evenly), returning the (top, left) offsets to crop back."""
    h, w = x.shape[-2:]
    ph, pw = -h % multiple, -w % multiple
    if ph == 0 and pw == 0:
        return x, (0, 0)
    top, left = ph // 2, pw // 2
    return F.pad(x, (left, pw - left, top, ph - top), mode="replicate"), (top, left)


class _DecoderNorm(nn.Module):
    """Conditional BatchNorm when there are classes, plain BatchNorm otherwise."""

    def __init__(self, channels: int, num_classes: int):
        super().__init__()
        self.conditional = num_classes > 0
        self.norm = ConditionalBatchNorm2d(channels, num_classes) if self.conditional else nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        return self.norm(x, labels) if self.conditional else self.norm(x)


class _Down(nn.Sequential):
    """4x4 stride-2 conv, BatchNorm (not on the first layer: it would wash out the raw source), LeakyReLU."""

    def __init__(self, c_in: int, c_out: int, norm: bool):
        layers = [nn.Conv2d(c_in, c_out, 4, stride=2, padding=1, bias=not norm)]
        if norm:
            layers.append(nn.BatchNorm2d(c_out))
        layers.append(nn.LeakyReLU(0.2, inplace=True))
        super().__init__(*layers)


class _Up(nn.Module):
    """4x4 stride-2 transposed conv (pix2pix; cheapest 2x upsampler on CPU), label-conditioned norm, ReLU, dropout."""

    def __init__(self, c_in: int, c_out: int, num_classes: int, dropout: float):
        super().__init__()
        self.conv = nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1, bias=False)  # bias is cancelled by the norm
        self.norm = _DecoderNorm(c_out, num_classes)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        h = self.norm(self.conv(x), labels)  # <- label enters here (conditional BatchNorm gain and bias)
        return self.dropout(F.relu(h, inplace=True))


class UNetGenerator(Network):
    """pix2pix-style U-Net: G(z, source, label) -> image of shape (channels, height, width) in [-1, 1].

    `height`/`width` plan the depth; other input sizes still work (they are
    padded to a multiple of 2**depth and cropped back).
    """

    def __init__(self, source_channels: int, channels: int, height: int, width: int, z_dim: int = 8,
                 base_width: int = 32, num_classes: int = 0, dropout: float = 0.0):
        super().__init__()
        self.depth = depth = plan_depth(height, width)
        self.z_dim, self.num_classes = z_dim, num_classes
        widths = [base_width * min(2**i, 8) for i in range(depth)]  # encoder widths, full resolution first

        self.encoder = nn.ModuleList(
            _Down(source_channels if i == 0 else widths[i - 1], widths[i], norm=i > 0) for i in range(depth)
        )
        # Decoder, innermost first. Block j upsamples to the size of encoder level depth-2-j and its output is
        # concatenated with that level's features; the last block returns to full resolution. That last block
        # has 4x the pixels of any other, so it is half as wide: it halves G's cost for little loss in detail.
        full_res_width = max(8, base_width // 2)
        n_dropout = max(1, depth // 2) if dropout > 0 else 0  # pix2pix: dropout in the innermost decoder blocks
        self.decoder = nn.ModuleList()
        c_in = widths[-1] + z_dim
        for j in range(depth):
            c_out = widths[depth - 2 - j] if j < depth - 1 else full_res_width
            self.decoder.append(_Up(c_in, c_out, num_classes, dropout if j < n_dropout else 0.0))
            c_in = 2 * c_out
        self.out = nn.Conv2d(full_res_width + source_channels, channels, 3, padding=1)
        _init(self)

    def forward(self, z: torch.Tensor | None, source: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Translate `source` (N, source_channels, H, W); `labels` are required iff num_classes > 0, else ignored."""
        if self.num_classes > 0 and labels is None:
            raise ValueError("this UNetGenerator is class-conditional (num_classes > 0): pass labels")
        height, width = source.shape[-2:]
        padded, (top, left) = pad_to_multiple(source, 2**self.depth)

        skips, h = [], padded  # <- source enters here (first encoder conv)
        for down in self.encoder:
            h = down(h)
            skips.append(h)

        if self.z_dim > 0:
            if z is None or z.shape != (len(h), self.z_dim):
                raise ValueError(f"z must have shape (N, {self.z_dim}), got {None if z is None else tuple(z.shape)}")
            noise = z.reshape(len(z), self.z_dim, 1, 1).expand(-1, -1, *h.shape[-2:])
            h = torch.cat([h, noise.to(h.dtype)], dim=1)  # <- noise enters here (broadcast over the bottleneck)

        skips = skips[-2::-1]  # mirrored encoder features, next-to-innermost first
        for j, up in enumerate(self.decoder):
            h = up(h, labels)  # <- label enters here (in each decoder block's norm)
            if j < len(skips):
                h = torch.cat([h, skips[j]], dim=1)

        h = torch.cat([h, padded], dim=1)  # <- source enters here again, at full resolution, for crisp detail
        image = torch.tanh(self.out(h))
        return image[..., top:top + height, left:left + width]


def _init(module: nn.Module) -> None:
    """pix2pix init, normal(0, 0.02), so the untrained output starts near 0 rather than saturated."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
