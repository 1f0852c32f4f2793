"""Adversarial losses. Each is a pair: D's loss on (real, fake) logits and G's
loss on fake logits. Any model can use any loss."""

import torch
import torch.nn.functional as F


def bce_d(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    return F.softplus(-real).mean() + F.softplus(fake).mean()


def bce_g(fake: torch.Tensor) -> torch.Tensor:
    return F.softplus(-fake).mean()  # non-saturating: strong gradients when D wins


def lsgan_d(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    return 0.5 * ((real - 1).pow(2).mean() + fake.pow(2).mean())


def lsgan_g(fake: torch.Tensor) -> torch.Tensor:
    return 0.5 * (fake - 1).pow(2).mean()


def hinge_d(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    return F.relu(1 - real).mean() + F.relu(1 + fake).mean()


def hinge_g(fake: torch.Tensor) -> torch.Tensor:
    return -fake.mean()


LOSSES = {"bce": (bce_d, bce_g), "lsgan": (lsgan_d, lsgan_g), "hinge": (hinge_d, hinge_g)}
