"""The classic MLP cGAN (Mirza & Osindero, 2014): the label embedding is
concatenated to the noise in G and to the flattened image in D."""

import math

import torch
from torch import nn

from .base import Network


class MLPGenerator(Network):
    def __init__(self, num_classes: int, z_dim: int, channels: int, image_size: int, width: int = 256):
        super().__init__()
        self.image_shape = (channels, image_size, image_size)
        self.label_embedding = nn.Embedding(num_classes, num_classes)
        layers, fan_in = [], z_dim + num_classes
        for i, fan_out in enumerate((width, width * 2, width * 4)):
            layers += [nn.Linear(fan_in, fan_out)]
            if i > 0:
                layers += [nn.BatchNorm1d(fan_out)]
            layers += [nn.LeakyReLU(0.2, inplace=True)]
            fan_in = fan_out
        layers += [nn.Linear(fan_in, math.prod(self.image_shape)), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        h = torch.cat([z, self.label_embedding(labels)], dim=1)  # <- label enters G here
        return self.net(h).view(len(z), *self.image_shape)


class MLPDiscriminator(Network):
    def __init__(self, num_classes: int, channels: int, image_size: int, width: int = 512):
        super().__init__()
        self.label_embedding = nn.Embedding(num_classes, num_classes)
        self.net = nn.Sequential(
            nn.Linear(channels * image_size * image_size + num_classes, width), nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(width, width), nn.Dropout(0.4), nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(width, width), nn.Dropout(0.4), nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(width, 1),
        )

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> dict:
        h = torch.cat([x.flatten(1), self.label_embedding(labels)], dim=1)  # <- label enters D here
        return {"score": self.net(h).squeeze(1), "classes": None}
