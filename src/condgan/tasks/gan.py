"""The one GAN training step every task uses: D update(s), G update, EMA.

It is field-agnostic: a batch is a dict of named tensors, and the step is told
which field is the target (what G makes and D judges), which fields condition
G (after the noise) and D (after the image), and which class field, if any,
drives the auxiliary class loss and the mode-seeking term. The class-conditional
GAN is target=image, G and D conditioned on label; translation is
target=image, conditioned on source (and label when the pairs have classes).

Several processes (torchrun): `distribute()` wraps G and D in
DistributedDataParallel for the passes whose gradients are averaged (G's
forward, D's own update); D's pass inside G's update calls the bare D, whose
weights take no gradient there. Spectral norm's vectors and BatchNorm's
running statistics are buffers, sent from rank 0 once per step rather than
before every forward pass (DDP's broadcast_buffers), so D can be called twice
per step. `precision` runs forward passes in bf16 or fp16 (autocast; fp16
with gradient scaling), weights and optimiser state stay fp32.
"""

from __future__ import annotations

import contextlib
import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

from ..losses import LOSSES, data_to_data_ce, feature_matching, mode_seeking
from ..training.augment import augment


class GANStep:
    """Owns G, D, the EMA copy of G and both optimisers; `step()` trains once.

    The fake batch made for D's last update is reused for G's update, saving
    one generator forward pass per step (a large share of CPU time).
    """

    def __init__(self, G: nn.Module, D: nn.Module, *, loss: str, lr_g: float, lr_d: float,
                 betas: tuple[float, float], ema_decay: float, ema_start: int, augment_policy: list[str],
                 z_dim: int, target: str = "image", g_fields: tuple[str, ...] = ("label",),
                 d_fields: tuple[str, ...] = ("label",), class_field: str | None = "label",
                 aux_weight: float = 0.0, aux_form: str = "ce", aux_confidence: float = 0.9,
                 twin_weight: float = 1.0, twin_start: int = 0,
                 diversity_weight: float = 0.0, l1_weight: float = 0.0,
                 adversarial_weight: float = 1.0, feature_matching_weight: float = 0.0, precision: str = "fp32",
                 frozen: dict[str, nn.Module] | None = None):
        self.G, self.D = G, D
        self.G_train, self.D_train = G, D  # DDP wrappers after distribute(); the bare networks hold the state
        self.D_in_g_step = D  # D without gradient sync, for G's update (compiled by compile())
        # Networks saved with the GAN but never trained by it: the exemplar task's embedder, which G needs
        # at sampling time to turn an exemplar image into its condition.
        self.frozen = {name: net.eval().requires_grad_(False) for name, net in (frozen or {}).items()}
        self.G_ema = copy.deepcopy(G).eval().requires_grad_(False)
        self.opt_G = torch.optim.Adam(G.parameters(), lr=lr_g, betas=betas)
        self.opt_D = torch.optim.Adam(D.parameters(), lr=lr_d, betas=betas)
        self.d_loss, self.g_loss = LOSSES[loss]
        self.ema_decay, self.ema_start = ema_decay, ema_start
        self.augment_policy = augment_policy
        self.z_dim = z_dim
        self.target, self.g_fields, self.d_fields, self.class_field = target, tuple(g_fields), tuple(d_fields), class_field
        self.aux_weight, self.diversity_weight = aux_weight, diversity_weight
        self.aux_form, self.aux_confidence, self.twin_weight = aux_form, aux_confidence, twin_weight
        self.twin_start = twin_start
        self.l1_weight, self.adversarial_weight, self.fm_weight = l1_weight, adversarial_weight, feature_matching_weight
        # With no adversarial, class or feature term, D would teach G nothing: skip its update (an L1 regressor).
        self.uses_d = adversarial_weight > 0 or aux_weight > 0 or feature_matching_weight > 0
        self.joint_d_pass = not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in D.modules())
        if (aux_weight > 0 or diversity_weight > 0) and class_field is None:
            raise ValueError("train.aux_weight and train.diversity_weight need a class field in the data")
        self.steps_done = 0
        self.device_type = next(G.parameters()).device.type
        self.precision = precision
        dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
        self.autocast = (lambda: torch.autocast(self.device_type, dtype=dtype)) if dtype else contextlib.nullcontext
        # fp16 gradients can underflow: scale the losses (one scaler per optimiser, each updated after its step)
        self.scalers = {k: torch.amp.GradScaler(self.device_type, enabled=precision == "fp16") for k in ("D", "G")}

    def distribute(self, device: torch.device) -> None:
        """Average gradients over the processes (torch DistributedDataParallel). DDP's constructor sends
        rank 0's weights to every rank. broadcast_buffers=False: buffers are synchronised once per step by
        the trainer (train/dist.broadcast_buffers); DDP's per-forward broadcast would also do, but costs one
        collective per call of D."""
        import inspect

        from torch.nn.parallel import DistributedDataParallel as DDP

        # (newer PyTorch renamed the flag: forward_sync_buffers=False still syncs at construction, as wanted)
        flag = "forward_sync_buffers" if "forward_sync_buffers" in inspect.signature(DDP).parameters else "broadcast_buffers"
        options = {"device_ids": [device.index] if device.type == "cuda" else None, flag: False}
        self.G_train = DDP(self.G, **options)
        if self.uses_d:
            self.D_train = DDP(self.D, **options)

    def compile(self) -> None:
        """torch.compile the passes of a step (after distribute(), as PyTorch recommends for DDP). The first
        steps then take minutes to compile; docs/benchmarks.md says when that pays off."""
        self.G_train, self.D_train = torch.compile(self.G_train), torch.compile(self.D_train)
        self.D_in_g_step = torch.compile(self.D)

    def _backward_step(self, loss: torch.Tensor, opt: torch.optim.Optimizer, which: str) -> None:
        scaler = self.scalers[which]
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

    def _discriminate(self, x: torch.Tensor, conditions: list[torch.Tensor], gen: torch.Generator,
                      D: nn.Module | None = None) -> dict:
        """D's outputs for images x; image conditions are augmented together with x, so a pair stays a pair."""
        if self.augment_policy:
            images = [c for c in conditions if c.dim() == 4]
            if images:
                stacked = augment(torch.cat([x, *images], dim=1), self.augment_policy, gen)
                parts = iter(stacked.split([x.shape[1]] + [c.shape[1] for c in images], dim=1))
                x = next(parts)
                conditions = [next(parts) if c.dim() == 4 else c for c in conditions]
            else:
                x = augment(x, self.augment_policy, gen)
        with self.autocast():
            out = (D or self.D_train)(x, *conditions)
        return {k: _fp32(v) for k, v in out.items()}  # losses are computed in full precision

    def step(self, batches: list[dict[str, torch.Tensor]], gen: torch.Generator) -> dict[str, float]:
        """One G update after len(batches) D updates. Returns losses as floats."""
        self.G.train()
        self.D.train()
        out: dict[str, float] = {}
        for i, batch in enumerate(batches):
            real = batch[self.target]
            labels = batch[self.class_field] if self.class_field else None
            d_cond = [batch[f] for f in self.d_fields]
            z = torch.randn(len(real), self.z_dim, generator=gen).to(real.device)
            last = i == len(batches) - 1
            with torch.set_grad_enabled(last), self.autocast():
                fake = self.G_train(z, *[batch[f] for f in self.g_fields]).float()
            if not self.uses_d:
                break
            losses, real_features = self.update_d(real, fake, d_cond, labels, gen)
            out.update(losses)

        loss_g = fake.new_zeros(())
        if self.uses_d:
            self.D.requires_grad_(False)  # G's backward pass needs no D weight gradients
            on_fake = self._discriminate(fake, d_cond, gen, self.D_in_g_step)  # no DDP: D's weights get no gradient here
            loss_g = self.g_loss(on_fake["score"])
            if self.adversarial_weight != 1.0:
                loss_g = self.adversarial_weight * loss_g
            if self.aux_weight > 0:  # G is rewarded when D recognises the requested class
                loss_g = loss_g + self.aux_weight * self.class_loss_g(on_fake, labels)
            if self.fm_weight > 0:  # generated pairs should look like real pairs to D's inner layers too
                term = feature_matching(on_fake["features"], real_features)
                loss_g = loss_g + self.fm_weight * term
                out["loss_fm"] = term.item()
        if self.diversity_weight > 0:  # same label, different noise -> different images
            loss_g = loss_g + self.diversity_weight * mode_seeking(fake, z, labels)
        if self.l1_weight > 0:  # paired target: stay close to it pixel by pixel
            l1 = (fake - real).abs().mean()
            loss_g = loss_g + self.l1_weight * l1
            out["loss_l1"] = l1.item()
        self._backward_step(loss_g, self.opt_G, "G")
        self.D.requires_grad_(True)

        self.steps_done += 1
        self.update_ema()
        out = {"loss_d": out.pop("loss_d", 0.0), "loss_g": loss_g.item(), **out}
        if not all(math.isfinite(v) for v in out.values()):
            raise FloatingPointError(f"non-finite loss at step {self.steps_done}: {out}")
        return out

    def update_d(self, real: torch.Tensor, fake: torch.Tensor, d_cond: list[torch.Tensor], labels: torch.Tensor | None,
                 gen: torch.Generator, fake_cond: list[torch.Tensor] | None = None) -> tuple[dict[str, float], list[torch.Tensor]]:
        """One D update on real vs (detached) fake targets with their conditions (`fake_cond` when the fakes'
        differ, e.g. a generated intermediate); returns D's losses and its features of the real batch."""
        fake_cond = d_cond if fake_cond is None else [c.detach() for c in fake_cond]
        if self.joint_d_pass:  # one D call on [real; fake]: bigger matrices run faster on CPU
            both = self._discriminate(torch.cat([real, fake.detach()]), [torch.cat([c, f]) for c, f in zip(d_cond, fake_cond)], gen, self.D_train)
            n = len(real)
            on_real = {k: v if v is None else v[:n] for k, v in both.items() if k != "features"}
            on_fake = {k: v if v is None else v[n:] for k, v in both.items() if k != "features"}
            real_features = [f[:n].detach() for f in both.get("features") or []]
        else:  # D has BatchNorm: real and fake must be normalised as separate batches
            on_real = self._discriminate(real, d_cond, gen, self.D_train)
            real_features = [f.detach() for f in on_real.get("features") or []]
            on_fake = self._discriminate(fake.detach(), fake_cond, gen, self.D_train)
        loss_d = self.d_loss(on_real["score"], on_fake["score"])
        if self.aux_weight > 0:
            loss_d = loss_d + self.aux_weight * self.class_loss_d(on_real, on_fake, labels)
        self._backward_step(loss_d, self.opt_D, "D")
        return {"loss_d": loss_d.item(), "d_real": on_real["score"].mean().item(),
                "d_fake": on_fake["score"].mean().item()}, real_features

    def class_loss_d(self, on_real: dict, on_fake: dict, labels: torch.Tensor) -> torch.Tensor:
        """D's class term: its class head learns the classes of real images; the twin head (twin) learns them
        on generated images; with adc, generated images of class k are a class of their own, k + num_classes;
        with d2d, D's class embedding of real images is pulled to its class proxy, away from other classes."""
        if self.aux_form == "d2d":
            return data_to_data_ce(on_real["embedding"], on_real["proxy"], labels)
        loss = F.cross_entropy(on_real["classes"], labels)
        if on_fake.get("twin") is not None:
            loss = loss + F.cross_entropy(on_fake["twin"], labels)
        if self.aux_form == "adc":
            loss = loss + F.cross_entropy(on_fake["classes"], labels + on_fake["classes"].shape[1] // 2)
        return loss

    def class_loss_g(self, on_fake: dict, labels: torch.Tensor) -> torch.Tensor:
        """G's auxiliary class term (train.aux_form). 'ce': AC-GAN's cross-entropy, which keeps pushing towards
        the most recognisable image of a class; 'margin': the same, but an image stops counting once D gives
        its class train.aux_confidence; 'twin': TAC-GAN, minus (twin_weight times) the twin head's cross-entropy
        on the fakes, from step twin_start on; 'adc': ADC-GAN, the head's cross-entropy for "real image of the
        class" minus (twin_weight times) that for "generated image of the class", from step twin_start on;
        'd2d': ReACGAN's data-to-data cross-entropy on D's class embedding of the fakes."""
        if self.aux_form == "d2d":
            return data_to_data_ce(on_fake["embedding"], on_fake["proxy"], labels)
        ce = F.cross_entropy(on_fake["classes"], labels, reduction="none")
        if self.aux_form == "margin":
            ce = F.relu(ce + math.log(self.aux_confidence))
        loss = ce.mean()
        if self.aux_form == "twin" and self.steps_done >= self.twin_start:
            loss = loss - self.twin_weight * F.cross_entropy(on_fake["twin"], labels)
        if self.aux_form == "adc" and self.steps_done >= self.twin_start:
            loss = loss - self.twin_weight * F.cross_entropy(on_fake["classes"], labels + on_fake["classes"].shape[1] // 2)
        return loss

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

    def networks(self) -> dict[str, nn.Module]:
        """What the checkpoint describes (to rebuild each network): G, D and any frozen network."""
        return {"G": self.G, "D": self.D, **self.frozen}

    def weights_finite(self) -> bool:
        return all(torch.isfinite(p).all() for m in (self.G, self.D, self.G_ema) for p in m.parameters())

    def state_dict(self) -> dict:
        return {"G": self.G.state_dict(), "D": self.D.state_dict(), "G_ema": self.G_ema.state_dict(),
                "opt_G": self.opt_G.state_dict(), "opt_D": self.opt_D.state_dict(), "steps_done": self.steps_done,
                **{name: net.state_dict() for name, net in self.frozen.items()}}

    def load_state_dict(self, state: dict) -> None:
        for name, net in self.frozen.items():
            net.load_state_dict(state[name])
        self.G.load_state_dict(state["G"])
        self.D.load_state_dict(state["D"])
        self.G_ema.load_state_dict(state["G_ema"])
        self.opt_G.load_state_dict(state["opt_G"])
        self.opt_D.load_state_dict(state["opt_D"])
        self.steps_done = int(state["steps_done"])


def _fp32(value):
    """A tensor, a list of tensors (D's features) or None, as fp32 (a no-op for fp32 tensors)."""
    if isinstance(value, torch.Tensor):
        return value.float()
    if isinstance(value, list):
        return [v.float() for v in value]
    return value
