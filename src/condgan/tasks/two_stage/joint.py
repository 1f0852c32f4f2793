"""The joint stage's training step: G1 -> G2 on G1's own intermediates, with partitioned losses.

It is the one GAN step (tasks/gan.py) twice, chained: stage 1's step owns G1
and D1 (intermediates, label A), stage 2's owns G2 and D2 (images paired with
their intermediate, label B); their EMA, optimisers and D updates are reused
as they are. What is new is the generators' update: every loss term has a
weight and says which generators its gradient updates (config section
`joint`). "adv_image updates G2" means the adversarial loss on the final image
changes G2's weights only, although it also depends on G1's intermediate: each
group of terms with the same targets is differentiated with respect to those
generators' parameters alone (torch.autograd.grad), so G1 is never pushed to
make intermediates that merely please D2. Without the partition one model
learns to do the other's job and a label gets ignored.

Both steps are built as their stage runs build theirs (tasks/two_stage.py), so
the run's precision reaches every pass here too: G's, C's and D's forward
passes run in autocast (bf16 / fp16), fp16 losses are scaled.

Terms (each logged as loss_<term>, unweighted): adv_mask and class_mask (D1's
score and class head on G1's intermediate), diversity (mode seeking among G1's
intermediates of one label A), adv_image and class_b (D2's score and class head
on the final image with its intermediate), class_a (classifier C, trained on
real images' grey detail, on the final image's grey detail), l1_teacher (G2 on
the real intermediate, L1 to the real image).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ...losses import mode_seeking
from ...training.device import grad_scaler
from ..gan import GANStep


def grey_detail(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] colour images -> their grey detail, the maximum over the channels (differentiable)."""
    return images.amax(dim=1, keepdim=True)


class JointStep:
    """Owns stage 1's and stage 2's GAN steps and the label-A classifier C; `step()` trains all once."""

    target = "image"

    def __init__(self, s1: GANStep, s2: GANStep, C: nn.Module, *, lr_c: float, betas: tuple[float, float],
                 weights: dict[str, float], updates: dict[str, list[str]]):
        self.s1, self.s2, self.C = s1, s2, C
        self.opt_C = torch.optim.Adam(C.parameters(), lr=lr_c, betas=betas)
        self.weights, self.updates = dict(weights), {k: tuple(sorted(v)) for k, v in updates.items()}
        self.generators = {"G1": s1.G, "G2": s2.G}
        # the run's precision, which both steps were built with: G's and C's passes in autocast like D's, and
        # with fp16 the generators' and C's losses scaled, as GANStep scales its own
        self.autocast = s1.autocast
        self.scalers = {k: grad_scaler(s1.precision, s1.device_type) for k in ("G", "C")}
        self.steps_done = 0

    g_fields = ("label_a", "label_b")  # what sampling conditions the chain on (train.standing_stats draws them)

    @property
    def has_ema(self) -> bool:
        """Both stages were built with the run's EMA options, so stage 1 answers for the chain."""
        return self.s1.has_ema

    def standing_statistics(self, conditions: list[list[torch.Tensor]], gen: torch.Generator) -> None:
        """train.standing_stats for the chain as it is sampled: G1_ema measures its own BatchNorm statistics
        from label A, then G2_ema its own from G1_ema's intermediates (in eval mode, now with its own
        statistics) and label B."""
        self.s1.standing_statistics([[a] for a, _ in conditions], gen)
        chained = []
        with torch.no_grad():
            for a, b in conditions:
                z1 = torch.randn(len(a), self.s1.z_dim, generator=gen).to(a.device)
                chained.append([self.s1.G_ema(z1, a), b])
        self.s2.standing_statistics(chained, gen)

    def components(self) -> dict[str, tuple[str, str]]:
        """The two generators, through their EMA copies (D1, D2 and C are trained against, never sampled)."""
        return {"generator1": ("G1", "G1_ema"), "generator2": ("G2", "G2_ema")}

    def networks(self) -> dict[str, nn.Module]:
        return {"G1": self.s1.G, "D1": self.s1.D, "G2": self.s2.G, "D2": self.s2.D, "C": self.C}

    def optimizers(self) -> list[torch.optim.Optimizer]:
        """Both stages' G and D optimisers and C's (train.lr_decay scales their learning rates)."""
        return [*self.s1.optimizers(), *self.s2.optimizers(), self.opt_C]

    def generate(self, batch: dict[str, torch.Tensor], gen: torch.Generator) -> tuple[torch.Tensor, ...]:
        n = len(batch["label_a"])
        z1 = torch.randn(n, self.s1.z_dim, generator=gen).to(batch["image"].device)
        z2 = torch.randn(n, self.s2.z_dim, generator=gen).to(batch["image"].device)
        with self.autocast():
            mask = self.s1.G(z1, batch["label_a"]).float()
            return z1, z2, mask, self.s2.G(z2, mask, batch["label_b"]).float()

    def classify(self, images: torch.Tensor) -> torch.Tensor:
        """C's label-A logits for images' grey detail (in full precision, as every loss is computed)."""
        with self.autocast():
            return self.C(grey_detail(images)).float()

    def step(self, batches: list[dict[str, torch.Tensor]], gen: torch.Generator) -> dict[str, float]:
        """D1, D2 and C updates for each batch, then one update of G1 and G2 on the last batch."""
        for net in self.networks().values():
            net.train()
        out: dict[str, float] = {}
        for i, batch in enumerate(batches):
            a, b, real_mask, real = batch["label_a"], batch["label_b"], batch["mask"], batch["image"]
            with torch.set_grad_enabled(i == len(batches) - 1):
                z1, z2, mask, image = self.generate(batch, gen)
            d1, _ = self.s1.update_d(real_mask, mask, [a], a, gen)
            d2, _ = self.s2.update_d(real, image, [real_mask, b], b, gen, fake_cond=[mask, b])
            loss_c = F.cross_entropy(self.classify(real), a)  # C learns label A from real images only
            self.opt_C.zero_grad(set_to_none=True)
            self.scalers["C"].scale(loss_c).backward()
            self.scalers["C"].step(self.opt_C)
            self.scalers["C"].update()
            out.update(loss_d1=d1["loss_d"], loss_d2=d2["loss_d"], loss_c=loss_c.item())

        terms = self._terms(batch, z1, z2, mask, image, gen)
        total = self._update_generators(terms)
        for s in (self.s1, self.s2):
            s.steps_done += 1
            s.update_ema()
        self.steps_done += 1
        out = {"loss_d": out["loss_d1"] + out["loss_d2"], "loss_g": total,
               **{f"loss_{k}": v.item() for k, v in terms.items()}, **out}
        if not all(math.isfinite(v) for v in out.values()):
            raise FloatingPointError(f"non-finite loss at step {self.steps_done}: {out}")
        return out

    def _terms(self, batch, z1, z2, mask, image, gen) -> dict[str, torch.Tensor]:
        """Every generator loss term with a non-zero weight, unweighted."""
        w, a, b = self.weights, batch["label_a"], batch["label_b"]
        terms = {}
        for net in (self.s1.D, self.s2.D, self.C):
            net.requires_grad_(False)  # the generators' update needs no gradients of the judges' weights
        try:
            if w["adv_mask"] or w["class_mask"]:
                on_mask = self.s1._discriminate(mask, [a], gen)
                if w["adv_mask"]:
                    terms["adv_mask"] = self.s1.g_loss(on_mask["score"])
                if w["class_mask"]:
                    terms["class_mask"] = F.cross_entropy(on_mask["classes"], a)
            if w["diversity"]:
                terms["diversity"] = mode_seeking(mask, z1, a)
            if w["adv_image"] or w["class_b"]:
                on_image = self.s2._discriminate(image, [mask, b], gen)
                if w["adv_image"]:
                    terms["adv_image"] = self.s2.g_loss(on_image["score"])
                if w["class_b"]:
                    terms["class_b"] = F.cross_entropy(on_image["classes"], b)
            if w["class_a"]:
                terms["class_a"] = F.cross_entropy(self.classify(image), a)
            if w["l1_teacher"]:
                with self.autocast():
                    teacher = self.s2.G(z2, batch["mask"], b).float()
                terms["l1_teacher"] = (teacher - batch["image"]).abs().mean()
        finally:
            for net in (self.s1.D, self.s2.D, self.C):
                net.requires_grad_(True)
        return terms

    def _update_generators(self, terms: dict[str, torch.Tensor]) -> float:
        """Sum the weighted terms per group of target generators; each group's gradient goes to its targets only."""
        groups: dict[tuple[str, ...], torch.Tensor] = {}
        for name, value in terms.items():
            key = self.updates[name]
            groups[key] = groups.get(key, 0) + self.weights[name] * value
        for s in (self.s1, self.s2):
            s.opt_G.zero_grad(set_to_none=True)
        scaler = self.scalers["G"]
        for targets, loss in groups.items():
            params = [p for g in targets for p in self.generators[g].parameters()]
            grads = torch.autograd.grad(scaler.scale(loss), params, retain_graph=True, allow_unused=True)
            for p, g in zip(params, grads):
                if g is not None:
                    p.grad = g if p.grad is None else p.grad + g
        stepped = [s for s in (self.s1, self.s2) if any(p.grad is not None for p in s.G.parameters())]
        for s in stepped:  # (a generator that no term updates has no gradients: nothing to step)
            scaler.step(s.opt_G)
        if stepped:
            scaler.update()
        return float(sum(loss.item() for loss in groups.values()))

    def weights_finite(self) -> bool:
        return self.s1.weights_finite() and self.s2.weights_finite() and all(torch.isfinite(p).all() for p in self.C.parameters())

    def state_dict(self) -> dict:
        """The two steps' states with their names numbered (G1, D1, G1_ema, opt_G1, ...; G2, ...), plus C."""
        state = {"C": self.C.state_dict(), "opt_C": self.opt_C.state_dict(), "steps_done": self.steps_done}
        for n, s in (("1", self.s1), ("2", self.s2)):
            state.update({_numbered(k, n): v for k, v in s.state_dict().items() if k != "steps_done"})
        return state

    def load_state_dict(self, state: dict) -> None:
        for n, s in (("1", self.s1), ("2", self.s2)):
            own = {k: state[_numbered(k, n)] for k in ("G", "D", "G_ema", "opt_G", "opt_D")}
            if _numbered("lecam", n) in state:  # saved only when train.lecam_weight is on
                own["lecam"] = state[_numbered("lecam", n)]
            s.load_state_dict({**own, "steps_done": state["steps_done"]})
        self.C.load_state_dict(state["C"])
        self.opt_C.load_state_dict(state["opt_C"])
        self.steps_done = int(state["steps_done"])


def _numbered(key: str, n: str) -> str:
    """GANStep's state keys for network n: G -> G1, G_ema -> G1_ema, opt_G -> opt_G1."""
    if key.endswith("_ema"):
        return key[:-4] + n + "_ema"
    return key + n
