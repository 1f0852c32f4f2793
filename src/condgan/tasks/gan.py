"""The one GAN training step every task uses: D update(s), G update, EMA.

It is field-agnostic: a batch is a dict of named tensors, and the step's
options (GANOptions, which every task builds with GANOptions.from_config) say
which field is the target (what G makes and D judges), which fields condition
G (after the noise) and D (after the image), and which class field, if any,
drives the auxiliary class loss and the mode-seeking term. The class-conditional
GAN is target=image, G and D conditioned on label; translation is
target=image, conditioned on source (and label when the pairs have classes).
The class term's forms (train.aux_form) are the objects of class_terms.py.

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

import copy
import dataclasses
import math
from dataclasses import dataclass, field

import torch
from torch import nn

from ..errors import ConfigError
from ..losses import LOSSES, feature_matching, lecam, mode_seeking
from ..training.augment import augment
from ..training.device import autocast_for, grad_scaler
from ..training import dist
from ..training.dist import SyncedBatchNorm
from .class_terms import ClassTerm, CrossEntropy, class_term

R1_EVERY = 4  # train.r1_weight: the penalty's steps (lazy regularisation: StyleGAN2 found every 16th as good as each)
LECAM_DECAY = 0.99  # train.lecam_weight: the moving averages of D's mean scores on reals and fakes (the paper's)


@dataclass(frozen=True)
class Roles:
    """Which field is the target (what G makes and D judges), which condition G and D, and which class field
    drives the class term and the mode-seeking term (None: the data has none)."""
    target: str
    g_fields: tuple[str, ...]
    d_fields: tuple[str, ...]
    class_field: str | None


@dataclass(frozen=True)
class GANOptions:
    """Everything a GANStep is told besides its networks. Every task builds them with from_config, so a
    setting of the run (train.precision resolved for the device, say) reaches every step, the joint stage's too."""
    z_dim: int
    loss: str
    lr_g: float
    lr_d: float
    betas: tuple[float, float]
    ema_decay: float
    ema_start: int
    augment_policy: list[str]
    roles: Roles = Roles("image", ("label",), ("label",), "label")
    aux_weight: float = 0.0                # D's and G's class term (class_term), weighed
    class_term: ClassTerm = field(default_factory=CrossEntropy)
    diversity_weight: float = 0.0          # mode seeking among G's images of one class
    l1_weight: float = 0.0                 # L1 to a paired target
    adversarial_weight: float = 1.0
    feature_matching_weight: float = 0.0
    r1_weight: float = 0.0                 # zero-centred gradient penalty on real images, every R1_EVERY steps
    lecam_weight: float = 0.0              # LeCam regulariser on D's scores (losses.lecam)
    precision: str = "fp32"                # fp32 | bf16 | fp16 (autocast; fp16 with gradient scaling)

    @classmethod
    def from_config(cls, config, roles: Roles, precision: str = "fp32", **overrides) -> "GANOptions":
        """The options a config asks for, with `overrides` (a field name each) where a task differs."""
        t = config.train
        options = cls(z_dim=config.model.z_dim, loss=t.loss, lr_g=t.lr_g, lr_d=t.lr_d, betas=(t.beta1, t.beta2),
                      ema_decay=t.ema_decay, ema_start=t.ema_start, augment_policy=t.augment, roles=roles,
                      aux_weight=config.aux_weight(), class_term=class_term(t), diversity_weight=t.diversity_weight,
                      l1_weight=t.l1_weight, adversarial_weight=t.adversarial_weight,
                      feature_matching_weight=t.feature_matching, r1_weight=t.r1_weight, lecam_weight=t.lecam_weight,
                      precision=precision)
        return dataclasses.replace(options, **overrides)


class GANStep:
    """Owns G, D, the EMA copy of G and both optimisers; `step()` trains once.

    The fake batch made for D's last update is reused for G's update, saving
    one generator forward pass per step (a large share of CPU time).
    """

    def __init__(self, G: nn.Module, D: nn.Module, options: GANOptions, frozen: dict[str, nn.Module] | None = None):
        o = self.options = options
        self.G, self.D = G, D
        self.G_train, self.D_train = G, D  # DDP wrappers after distribute(); the bare networks hold the state
        self.D_in_g_step = D  # D without gradient sync, for G's update (compiled by compile())
        # Networks saved with the GAN but never trained by it: the exemplar task's embedder, which G needs
        # at sampling time to turn an exemplar image into its condition.
        self.frozen = {name: net.eval().requires_grad_(False) for name, net in (frozen or {}).items()}
        self.G_ema = copy.deepcopy(G).eval().requires_grad_(False)
        self.opt_G = torch.optim.Adam(G.parameters(), lr=o.lr_g, betas=o.betas)
        self.opt_D = torch.optim.Adam(D.parameters(), lr=o.lr_d, betas=o.betas)
        self.d_loss, self.g_loss = LOSSES[o.loss]
        self.z_dim, self.class_term = o.z_dim, o.class_term
        r = o.roles
        self.target, self.g_fields, self.d_fields, self.class_field = r.target, tuple(r.g_fields), tuple(r.d_fields), r.class_field
        # With no adversarial, class or feature term, D would teach G nothing: skip its update (an L1 regressor).
        self.uses_d = o.adversarial_weight > 0 or o.aux_weight > 0 or o.feature_matching_weight > 0
        self.joint_d_pass = not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in D.modules())
        if (o.aux_weight > 0 or o.diversity_weight > 0) and r.class_field is None:
            raise ValueError("train.aux_weight and train.diversity_weight need a class field in the data")
        self.steps_done = 0
        self.lecam_anchors: list[float] | None = None  # D's mean scores on reals and fakes, moving averages
        self.device_type = next(G.parameters()).device.type
        self.precision = o.precision
        self.autocast = autocast_for(o.precision, self.device_type)
        # fp16 gradients can underflow: scale the losses (one scaler per optimiser, each updated after its step)
        self.scalers = {k: grad_scaler(o.precision, self.device_type) for k in ("D", "G")}

    def distribute(self, device: torch.device) -> None:
        """Average gradients over the processes (torch DistributedDataParallel). DDP's constructor sends
        rank 0's weights to every rank. broadcast_buffers=False: buffers are synchronised once per step by
        the trainer (train/dist.broadcast_buffers); DDP's per-forward broadcast would also do, but costs one
        collective per call of D."""
        import inspect

        from torch.nn.parallel import DistributedDataParallel as DDP

        if self.options.r1_weight > 0:  # its pass through the bare D would add gradients DDP does not average
            raise ConfigError("train.r1_weight is not supported with several processes (torchrun) yet; set it to 0 "
                              "or train in one process")
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
        policy = self.options.augment_policy
        if policy:
            images = [c for c in conditions if c.dim() == 4]
            if images:
                stacked = augment(torch.cat([x, *images], dim=1), policy, gen)
                parts = iter(stacked.split([x.shape[1]] + [c.shape[1] for c in images], dim=1))
                x = next(parts)
                conditions = [next(parts) if c.dim() == 4 else c for c in conditions]
            else:
                x = augment(x, policy, gen)
        with self.autocast():
            out = (self.D_train if D is None else D)(x, *conditions)
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

        o = self.options
        loss_g = fake.new_zeros(())
        if self.uses_d:
            self.D.requires_grad_(False)  # G's backward pass needs no D weight gradients
            on_fake = self._discriminate(fake, d_cond, gen, self.D_in_g_step)  # no DDP: D's weights get no gradient here
            loss_g = self.g_loss(on_fake["score"])
            if o.adversarial_weight != 1.0:
                loss_g = o.adversarial_weight * loss_g
            if o.aux_weight > 0:  # G is rewarded when D recognises the requested class (class_terms.py)
                loss_g = loss_g + o.aux_weight * self.class_term.g_loss(on_fake, labels, self.steps_done)
            if o.feature_matching_weight > 0:  # generated pairs should look like real pairs to D's inner layers too
                term = feature_matching(on_fake["features"], real_features)
                loss_g = loss_g + o.feature_matching_weight * term
                out["loss_fm"] = term.item()
        if o.diversity_weight > 0:  # same label, different noise -> different images
            loss_g = loss_g + o.diversity_weight * mode_seeking(fake, z, labels)
        if o.l1_weight > 0:  # paired target: stay close to it pixel by pixel
            l1 = (fake - real).abs().mean()
            loss_g = loss_g + o.l1_weight * l1
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
        if self.options.aux_weight > 0:
            loss_d = loss_d + self.options.aux_weight * self.class_term.d_loss(on_real, on_fake, labels)
        if self.options.r1_weight > 0 and self.steps_done % R1_EVERY == 0:  # lazy: R1_EVERY times the weight, as often
            loss_d = loss_d + self.options.r1_weight / 2 * R1_EVERY * self.r1_penalty(real, d_cond)
        if self.options.lecam_weight > 0:
            loss_d = loss_d + self.options.lecam_weight * self.lecam_term(on_real["score"], on_fake["score"])
        self._backward_step(loss_d, self.opt_D, "D")
        return {"loss_d": loss_d.item(), "d_real": on_real["score"].mean().item(),
                "d_fake": on_fake["score"].mean().item()}, real_features

    def lecam_term(self, real_score: torch.Tensor, fake_score: torch.Tensor) -> torch.Tensor:
        """losses.lecam against the moving averages of D's mean scores, this batch's included. With several
        processes the batch means are averaged over them first, so every rank holds the same averages."""
        batch = torch.stack([real_score.detach().mean(), fake_score.detach().mean()]).tolist()  # one sync, not two
        means = list(dist.mean(dict(zip(("real", "fake"), batch)), real_score.device).values())
        if self.lecam_anchors is None:
            self.lecam_anchors = means
        else:
            self.lecam_anchors = [LECAM_DECAY * a + (1 - LECAM_DECAY) * m for a, m in zip(self.lecam_anchors, means)]
        return lecam(real_score, fake_score, *self.lecam_anchors)

    def r1_penalty(self, real: torch.Tensor, d_cond: list[torch.Tensor]) -> torch.Tensor:
        """Mean squared norm of D's score gradient at the real images (R1): a D whose score is flat around real
        data cannot push G's images past them, which steadies training. Through the bare D (not compiled: a
        gradient of a gradient), without augmentation."""
        real = real.detach().requires_grad_(True)
        with self.autocast():
            score = self.D(real, *d_cond)["score"]
        grad, = torch.autograd.grad(score.float().sum(), real, create_graph=True)
        return grad.float().pow(2).flatten(1).sum(1).mean()

    @torch.no_grad()
    def update_ema(self) -> None:
        ema_params = list(self.G_ema.parameters())
        params = list(self.G.parameters())
        decay = self.options.ema_decay
        if decay == 0 or self.steps_done <= self.options.ema_start:
            torch._foreach_copy_(ema_params, params)
        else:
            torch._foreach_lerp_(ema_params, params, 1.0 - decay)
        for b_ema, b in zip(self.G_ema.buffers(), self.G.buffers()):
            b_ema.copy_(b)  # BatchNorm statistics follow G (G_ema measures its own before use: train.standing_stats)

    @property
    def has_ema(self) -> bool:
        """Whether G_ema is an average of G (train.ema_decay > 0), and so worth its own statistics: with decay 0
        (the textbook recipes) it is a copy of G."""
        return bool(self.options.ema_decay)

    def standing_statistics(self, conditions: list[list[torch.Tensor]], gen: torch.Generator) -> None:
        """G_ema measures its own BatchNorm statistics (standing_statistics below): G's, which update_ema copies
        each step, belong to G's weights, not to the average G_ema samples with. The next update_ema copies G's
        back, so training and resume are unchanged."""
        standing_statistics(self.G_ema, conditions, self.z_dim, gen)

    def components(self) -> dict[str, tuple[str, str]]:
        """What a pipeline made from this step holds: component -> (network, state key). G is used through its
        EMA copy; frozen networks (the exemplar's embedder) as they are."""
        return {"generator": ("G", "G_ema"), **{name: (name, name) for name in self.frozen}}

    def networks(self) -> dict[str, nn.Module]:
        """What the checkpoint describes (to rebuild each network): G, D and any frozen network."""
        return {"G": self.G, "D": self.D, **self.frozen}

    def optimizers(self) -> list[torch.optim.Optimizer]:
        """G's and D's (train.lr_decay scales their learning rates)."""
        return [self.opt_G, self.opt_D]

    def weights_finite(self) -> bool:
        return all(torch.isfinite(p).all() for m in (self.G, self.D, self.G_ema) for p in m.parameters())

    def state_dict(self) -> dict:
        return {"G": self.G.state_dict(), "D": self.D.state_dict(), "G_ema": self.G_ema.state_dict(),
                "opt_G": self.opt_G.state_dict(), "opt_D": self.opt_D.state_dict(), "steps_done": self.steps_done,
                **{name: net.state_dict() for name, net in self.frozen.items()},
                **({"lecam": torch.tensor(self.lecam_anchors, dtype=torch.float64)} if self.lecam_anchors else {})}

    def load_state_dict(self, state: dict) -> None:
        for name, net in self.frozen.items():
            net.load_state_dict(state[name])
        self.G.load_state_dict(state["G"])
        self.D.load_state_dict(state["D"])
        self.G_ema.load_state_dict(state["G_ema"])
        self.opt_G.load_state_dict(state["opt_G"])
        self.opt_D.load_state_dict(state["opt_D"])
        self.steps_done = int(state["steps_done"])
        self.lecam_anchors = state["lecam"].tolist() if "lecam" in state else None  # (saved only when used)


@torch.no_grad()
def standing_statistics(G: nn.Module, conditions: list[list[torch.Tensor]], z_dim: int, gen: torch.Generator) -> None:
    """Set G's BatchNorm running statistics to the average of its batch statistics over its own outputs for
    `conditions` (batches of G's condition fields) and noise from `gen`: BigGAN's "standing statistics" (Brock et
    al. 2019). On Fashion-MNIST the EMA generator's own lowered FID on every seed (docs/benchmarks.md). Weights
    are untouched; G is left in eval mode."""
    norms = [m for m in G.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms or not conditions:
        return
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a plain average over every batch below
    synced = [m for m in norms if isinstance(m, SyncedBatchNorm)]
    for m in synced:
        m.local = True  # torchrun: rank 0 measures alone, exchanging nothing with the other processes
    G.train()
    try:
        for batch in conditions:
            z = torch.randn(len(batch[0]), z_dim, generator=gen).to(batch[0].device)
            G(z, *batch)
    finally:
        G.eval()
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum
        for m in synced:
            m.local = False


def _fp32(value):
    """A tensor, a list of tensors (D's features) or None, as fp32 (a no-op for fp32 tensors)."""
    if isinstance(value, torch.Tensor):
        return value.float()
    if isinstance(value, list):
        return [v.float() for v in value]
    return value
