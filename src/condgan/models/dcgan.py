"""The DCGAN cGAN: the label embedding becomes a feature map, concatenated to
the noise feature map in G and as an extra image channel in D."""

import torch
from torch import nn

from .base import Network

from .resnet import plan_resolutions


class DCGANGenerator(Network):
    def __init__(self, num_classes: int, z_dim: int, channels: int, image_size: int, width: int = 64):
        super().__init__()
        self.base, n_up = plan_resolutions(image_size)
        top = width * 2 ** (n_up - 1)
        self.noise_map = nn.Sequential(nn.Linear(z_dim, top * self.base**2), nn.BatchNorm1d(top * self.base**2), nn.ReLU(True))
        self.label_map = nn.Embedding(num_classes, self.base**2)  # one extra feature map per label
        layers, c = [], top + 1
        for i in range(n_up):
            out = width * 2 ** (n_up - 2 - i) if i < n_up - 1 else channels
            layers.append(nn.ConvTranspose2d(c, out, 4, stride=2, padding=1))
            layers += [nn.BatchNorm2d(out), nn.ReLU(True)] if i < n_up - 1 else [nn.Tanh()]
            c = out
        self.net = nn.Sequential(*layers)
        self.top = top

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        h = self.noise_map(z).view(len(z), self.top, self.base, self.base)
        y = self.label_map(labels).view(len(z), 1, self.base, self.base)
        return self.net(torch.cat([h, y], dim=1))  # <- label enters G here


class DCGANDiscriminator(Network):
    def __init__(self, num_classes: int, channels: int, image_size: int, width: int = 64):
        super().__init__()
        base, n_down = plan_resolutions(image_size)
        self.image_size = image_size
        self.label_map = nn.Embedding(num_classes, image_size * image_size)  # an extra image channel per label
        layers, c = [], channels + 1
        for i in range(n_down):
            out = width * 2**i
            layers.append(nn.Conv2d(c, out, 4, stride=2, padding=1))
            if i > 0:
                layers.append(nn.BatchNorm2d(out))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            c = out
        self.net = nn.Sequential(*layers, nn.Flatten(), nn.Linear(c * base * base, 1))

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> dict:
        y = self.label_map(labels).view(len(x), 1, self.image_size, self.image_size)
        return {"score": self.net(torch.cat([x, y], dim=1)).squeeze(1), "classes": None}  # <- label enters D here
