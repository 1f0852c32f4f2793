"""The one GAN training step every trainer uses: D update(s), G update, EMA."""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

from ..losses import LOSSES, mode_seeking
from .augment import augment


class GANStep:
    """Owns G, D, the EMA copy of G and both optimisers; `step()` trains once.

    The fake batch made for D's last update is reused for G's update, saving
    one generator forward pass per step (a large share of CPU time).
    """

    def __init__(self, G: nn.Module, D: nn.Module, *, loss: str, lr_g: float, lr_d: float,
                 betas: tuple[float, float], ema_decay: float, ema_start: int,
                 augment_policy: list[str], z_dim: int, num_classes: int, aux_weight: float = 0.0,
                 diversity_weight: float = 0.0):
        self.G, self.D = G, D
        self.G_ema = copy.deepcopy(G).eval().requires_grad_(False)
        self.opt_G = torch.optim.Adam(G.parameters(), lr=lr_g, betas=betas)
        self.opt_D = torch.optim.Adam(D.parameters(), lr=lr_d, betas=betas)
        self.d_loss, self.g_loss = LOSSES[loss]
        self.ema_decay, self.ema_start = ema_decay, ema_start
        self.augment_policy = augment_policy
        self.z_dim, self.num_classes = z_dim, num_classes
        self.aux_weight = aux_weight
        self.diversity_weight = diversity_weight
        self.joint_d_pass = not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in D.modules())
        if aux_weight > 0 and not hasattr(D, "forward_with_classes"):
            raise ValueError("train.aux_weight > 0 needs a discriminator with a class head (model.arch=resnet)")
        self.steps_done = 0

    def _aug(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        return augment(x, self.augment_policy, gen) if self.augment_policy else x

    def _discriminate(self, x: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.aux_weight > 0:
            return self.D.forward_with_classes(x, labels)
        return self.D(x, labels), None

    def step(self, batches: list[tuple[torch.Tensor, torch.Tensor]], gen: torch.Generator) -> dict[str, float]:
        """One G update after len(batches) D updates. Returns losses as floats."""
        self.G.train()
        self.D.train()
        device = batches[0][0].device
        for i, (real, labels) in enumerate(batches):
            z = torch.randn(len(real), self.z_dim, generator=gen).to(device)
            last = i == len(batches) - 1
            with torch.set_grad_enabled(last):
                fake = self.G(z, labels)
            if self.joint_d_pass:  # one D call on [real; fake]: bigger matrices run faster on CPU
                scores, classes = self._discriminate(self._aug(torch.cat([real, fake.detach()]), gen), labels.repeat(2))
                d_real, d_fake = scores.split(len(real))
                class_real = classes[:len(real)] if classes is not None else None
            else:  # D has BatchNorm: real and fake must be normalised as separate batches
                d_real, class_real = self._discriminate(self._aug(real, gen), labels)
                d_fake, _ = self._discriminate(self._aug(fake.detach(), gen), labels)
            loss_d = self.d_loss(d_real, d_fake)
            if class_real is not None:  # D learns classes from real images only
                loss_d = loss_d + self.aux_weight * F.cross_entropy(class_real, labels)
            self.opt_D.zero_grad(set_to_none=True)
            loss_d.backward()
            self.opt_D.step()

        self.D.requires_grad_(False)  # G's backward pass needs no D weight gradients
        d_gen, class_gen = self._discriminate(self._aug(fake, gen), labels)
        loss_g = self.g_loss(d_gen)
        if class_gen is not None:  # G is rewarded when D recognises the requested class
            loss_g = loss_g + self.aux_weight * F.cross_entropy(class_gen, labels)
        if self.diversity_weight > 0:  # same label, different noise -> different images
            loss_g = loss_g + self.diversity_weight * mode_seeking(fake, z, labels)
        self.opt_G.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_G.step()
        self.D.requires_grad_(True)

        self.steps_done += 1
        self.update_ema()
        out = {"loss_d": loss_d.item(), "loss_g": loss_g.item(),
               "d_real": d_real.mean().item(), "d_fake": d_fake.mean().item()}
        if not all(math.isfinite(v) for v in out.values()):
            raise FloatingPointError(f"non-finite loss at step {self.steps_done}: {out}")
        return out

    @torch.no_grad()
    def update_ema(self) -> None:
        ema_params = list(self.G_ema.parameters())
        params = list(self.G.parameters())
        if self.ema_decay == 0 or self.steps_done <= self.ema_start:
            torch._foreach_copy_(ema_params, params)
        else:
            torch._foreach_lerp_(ema_params, params, 1.0 - self.ema_decay)
        for b_ema, b in zip(self.G_ema.buffers(), self.G.buffers()):
            b_ema.copy_(b)  # BatchNorm running statistics follow G

    def weights_finite(self) -> bool:
        return all(torch.isfinite(p).all() for m in (self.G, self.D, self.G_ema) for p in m.parameters())

    def state_dict(self) -> dict:
        return {"G": self.G.state_dict(), "D": self.D.state_dict(), "G_ema": self.G_ema.state_dict(),
                "opt_G": self.opt_G.state_dict(), "opt_D": self.opt_D.state_dict(), "steps_done": self.steps_done}

    def load_state_dict(self, state: dict) -> None:
        self.G.load_state_dict(state["G"])
        self.D.load_state_dict(state["D"])
        self.G_ema.load_state_dict(state["G_ema"])
        self.opt_G.load_state_dict(state["opt_G"])
        self.opt_D.load_state_dict(state["opt_D"])
        self.steps_done = int(state["steps_done"])
