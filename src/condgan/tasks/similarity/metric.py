"""How the similarity task trains an embedding network in the one loop (training/trainer.py).

Four recipes, chosen by `similarity.recipe`; losses and miners come from
pytorch-metric-learning (PML):

| recipe  | network                          | what is similar                  | loss (PML)                      |
|---------|----------------------------------|----------------------------------|---------------------------------|
| siamese | Embedder CNN                     | same class (or a CSV's pairs)    | ContrastiveLoss over pairs      |
| triplet | Embedder CNN                     | same class (or a CSV's triplets) | TripletMarginLoss + in-batch miner |
| frozen  | evaluator network, frozen + head | same class                       | as triplet                      |
| selfsup | Embedder CNN                     | views of an image and of a near one (no labels) | SelfSupervisedLoss(NTXentLoss), in matrix form |

With labels, batches are class-balanced (batch_size // per_class classes,
per_class images each), drawn from a generator seeded by (seed, batch number),
so batch k is the same whether or not the run was resumed in between.
selfsup's "near one" is one of the image's nearest images in pixel space
(neighbours.py, similarity.neighbour_views), drawn the same way.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from ...conditions import ClassField, ImageField, Spec
from ...config import Config
from . import config as section
from .config import SimilarityConfig
from ...data import to_float
from ...data.folders import UNLABELLED
from ...data.similar import load_images, read_csv  # noqa: F401  (re-exported: the similarity task's data)
from ...errors import ConfigError
from ...progress import note
from ...training.device import autocast_for, grad_scaler
from ...models.embedder import Embedder, FrozenBackboneEmbedder
from ...untrusted import optional_module

CALIBRATION_IMAGES = 2000  # training images (or CSV rows) the verification threshold is chosen on
GRAPH_REFERENCES = 10_000  # training images the graph coordinates are fitted on (selfsup; the same figures as with
                           # all 60,000 in docs/similarity.md), kept in the checkpoint with their embeddings
SELFSUP_CALIBRATION = 1000  # selfsup: images whose pairs choose it (test accuracy at the threshold 71.3 -> 78.0 % with
                            # the farthest view neighbour instead of a second view of the image, docs/similarity.md)


class ClassBalanced:
    """Batch k holds `classes` classes drawn at random with `m` images of each: a pure function of (seed, k)."""

    def __init__(self, labels: torch.Tensor, m: int, batch_size: int, seed: int):
        members = [torch.nonzero(labels == c).squeeze(1) for c in range(int(labels.max()) + 1)]
        self.members = [x for x in members if len(x)]
        self.m, self.seed = m, seed
        self.classes = min(len(self.members), max(2, batch_size // m))

    def __call__(self, k: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + k)
        picks = []
        for c in torch.randperm(len(self.members), generator=g)[:self.classes].tolist():
            pool = self.members[c]
            chosen = torch.randperm(len(pool), generator=g)[:self.m] if len(pool) >= self.m else \
                torch.randint(len(pool), (self.m,), generator=g)
            picks.append(pool[chosen])
        return torch.cat(picks)


# ----- the training step ----------------------------------------------------------------------------------
class SymmetricNTXent(nn.Module):
    """PML's SelfSupervisedLoss(NTXentLoss(temperature)) (SimCLR's loss), computed in matrix form.

    The 2n views of n images form one batch; each view must pick its partner out of the other 2n - 1: a
    cross-entropy over the 2n x 2n similarity matrix with its diagonal left out. PML (2.9) computes the
    same number pair by pair with an n_pos x n_neg mask, which is cubic in the batch: 5 s per step for
    256 images on 2 CPU cores, more than the network. tests/test_similarity.py checks that they agree."""

    def __init__(self, temperature: float):
        super().__init__()
        self.temperature = temperature

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        views = torch.cat([a, b])
        logits = views @ views.T / self.temperature  # embeddings are unit vectors: cosine similarities
        logits = logits.masked_fill(torch.eye(len(views), dtype=torch.bool, device=views.device), float("-inf"))
        n = len(a)
        partner = torch.cat([torch.arange(n, 2 * n), torch.arange(n)]).to(views.device)
        return nn.functional.cross_entropy(logits, partner)


def make_loss(recipe: str, s: SimilarityConfig):
    """(loss, miner) for a recipe: PML's, except NT-Xent's faster matrix form."""
    if recipe == "selfsup":
        return SymmetricNTXent(s.temperature), None
    losses = optional_module("pytorch_metric_learning.losses")  # the [similarity] extra
    if recipe == "siamese":
        return losses.ContrastiveLoss(pos_margin=s.pos_margin, neg_margin=s.margin), None
    miners = optional_module("pytorch_metric_learning.miners")
    return losses.TripletMarginLoss(margin=s.margin), miners.TripletMarginMiner(margin=s.margin, type_of_triplets=s.mining)


@torch.no_grad()
def embed_all(net: nn.Module, images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """Embeddings (N, D) of uint8 or [-1, 1] float images, in eval mode and in chunks (the mode is restored)."""
    was_training = net.training
    net.eval()
    device = next(net.parameters()).device
    out = []
    for i in range(0, len(images), batch_size):
        x = images[i:i + batch_size]
        x = to_float(x) if x.dtype == torch.uint8 else x.float()
        out.append(net(x.to(device)).float().cpu())
    net.train(was_training)
    return torch.cat(out) if out else torch.zeros(0, 1)


class MetricStep:
    """Owns the embedder and its optimiser; `step()` trains once. Same interface as GANStep for Run."""

    def __init__(self, net: nn.Module, recipe: str, s: SimilarityConfig, calibration: dict, precision: str = "fp32",
                 reference: torch.Tensor | None = None):
        self.net, self.recipe, self.augment = net, recipe, list(s.augment or [])
        self.reference = reference  # uint8 training images the graph coordinates are fitted on (where the net has them)
        self.opt = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=s.lr)
        self.loss, self.miner = make_loss(recipe, s)
        self.calibration = calibration  # uint8 images (+ labels, or CSV fields) the threshold is chosen on
        self.steps_done = 0
        # train.precision as the GAN step has it: the network's passes in bf16/fp16 (autocast), embeddings,
        # mining and losses in fp32; fp16 scales the loss against underflow
        device_type = next(net.parameters()).device.type
        self.autocast = autocast_for(precision, device_type)
        self.scaler = grad_scaler(precision, device_type)

    def _embed(self, x: torch.Tensor, for_loss: bool = False) -> torch.Tensor:
        with self.autocast():
            return (self.net.for_loss(x) if for_loss else self.net(x)).float()

    def networks(self) -> dict[str, nn.Module]:
        return {"embedder": self.net}

    def optimizers(self) -> list[torch.optim.Optimizer]:
        """The embedder's (train.lr_decay scales similarity.lr)."""
        return [self.opt]

    def components(self) -> dict[str, tuple[str, str]]:
        return {"embedder": ("embedder", "embedder")}

    def _pairs_and_triplets(self, batch: dict, gen: torch.Generator):
        """(embeddings, labels, indices_tuple) of a batch of any kind; selfsup returns the two views' embeddings.
        Every image is seen through its own random draw of similarity.augment."""
        from ...training.views import augment, selfsup_view

        if self.recipe == "selfsup":  # the second view of an image, or of its neighbour (similarity.neighbour_views)
            x = batch["image"]
            second = batch.get("neighbour", x)
            return (self._embed(selfsup_view(x, self.augment, gen), True),
                    self._embed(selfsup_view(second, self.augment, gen), True), None)
        batch = {k: augment(v, self.augment, gen) if v.dim() == 4 else v for k, v in batch.items()}
        if "similar" in batch:  # CSV of pairs: (anchor1, positive, anchor2, negative) index tuples
            n, similar = len(batch["image"]), batch["similar"].bool()
            emb = self._embed(torch.cat([batch["image"], batch["other"]]))
            i = torch.arange(n, device=emb.device)
            return emb, None, (i[similar], i[similar] + n, i[~similar], i[~similar] + n)
        if "positive" in batch:  # CSV of triplets
            n = len(batch["image"])
            emb = self._embed(torch.cat([batch["image"], batch["positive"], batch["negative"]]))
            i = torch.arange(n, device=emb.device)
            if self.miner is None:  # a pair loss: each triplet is a similar and a dissimilar pair
                return emb, None, (i, i + n, i, i + 2 * n)
            return emb, None, (i, i + n, i + 2 * n)
        emb = self._embed(batch["image"])
        labels = batch["label"]
        return emb, labels, self.miner(emb, labels) if self.miner is not None else None

    def step(self, batches: list[dict[str, torch.Tensor]], gen: torch.Generator) -> dict[str, float]:
        self.net.train()
        out = {}
        emb, labels, tuples = self._pairs_and_triplets(batches[0], gen)
        if self.recipe == "selfsup":
            loss = self.loss(emb, labels)  # (view-1 embeddings, view-2 embeddings)
        else:
            loss = self.loss(emb, labels, tuples)
            if self.miner is not None and labels is not None:
                out["mined"] = float(len(tuples[0]))
        self.opt.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.opt)
        self.scaler.update()
        self.steps_done += 1
        out = {"loss_metric": loss.item(), **out}
        if not all(np.isfinite(v) for v in out.values()):
            raise FloatingPointError(f"non-finite loss at step {self.steps_done}: {out}")
        return out

    @torch.no_grad()
    def before_save(self) -> None:
        """Fit the embedding's feature basis and graph coordinates (where it has them) and choose the verification
        threshold on training data (own fixed generator: the run's random streams are untouched, so resuming stays exact)."""
        from ...eval.similarity import best_threshold
        from ...training.views import selfsup_view

        c, g = self.calibration, torch.Generator().manual_seed(12345)
        device = next(self.net.parameters()).device
        self.net.fit_features(to_float(c["image"]).to(device))  # the threshold depends on it, and the graph on both
        if self.reference is not None:
            self.net.fit_graph(to_float(self.reference).to(device))
        if "similar" in c or "positive" in c:
            a = embed_all(self.net, c["image"])
            if "similar" in c:
                scores, positive = (a * embed_all(self.net, c["other"])).sum(1), c["similar"].bool()
            else:
                scores = torch.cat([(a * embed_all(self.net, c["positive"])).sum(1), (a * embed_all(self.net, c["negative"])).sum(1)])
                positive = torch.arange(len(scores)) < len(a)
        elif "label" in c:
            e = embed_all(self.net, c["image"])
            scores, positive = _all_pairs(e, c["label"])
        else:  # no labels: what training calls similar (two views of one image, or of an image and its farthest
               # view neighbour, where there are some) is similar; views of two random images are not
            x = to_float(c["image"][:SELFSUP_CALIBRATION])
            second = to_float(c["neighbour"]) if "neighbour" in c else x
            e1 = embed_all(self.net, selfsup_view(x, self.augment, g))
            e2 = embed_all(self.net, selfsup_view(second, self.augment, g))
            shuffled = torch.roll(e2, 1, dims=0)
            scores = torch.cat([(e1 * e2).sum(1), (e1 * shuffled).sum(1)])
            positive = torch.arange(len(scores)) < len(e1)
        if positive.any() and (~positive).any():
            self.net.threshold.fill_(best_threshold(scores, positive))

    def weights_finite(self) -> bool:
        return all(torch.isfinite(p).all() for p in self.net.parameters())

    def state_dict(self) -> dict:
        return {"embedder": self.net.state_dict(), "opt": self.opt.state_dict(), "steps_done": self.steps_done}

    def load_state_dict(self, state: dict) -> None:
        self.net.load_state_dict(state["embedder"])
        self.opt.load_state_dict(state["opt"])
        self.steps_done = int(state["steps_done"])


def _all_pairs(e: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Similarity and same-label flag of every unordered pair of a set."""
    i, j = torch.triu_indices(len(e), len(e), offset=1)
    return (e[i] * e[j]).sum(1), labels[i] == labels[j]


# ----- training ------------------------------------------------------------------------------------------
class MetricLearning:
    """How a similarity run trains: its data, its class-balanced batches, its network, step and preview."""

    @classmethod
    def load_data(cls, config: Config, split: str = "train"):
        s = config.similarity
        if s.pairs:
            fields, spec = read_csv(s.pairs, split, config.data.image_size, config.data.channels, config.data.paths_outside)
            if s.recipe == "triplet" and "similar" in fields:
                raise ConfigError("recipe triplet needs triplets: a CSV with anchor,positive,negative, or class labels; "
                                  "a CSV of pairs trains recipe siamese (or frozen)")
            if s.recipe == "frozen":
                raise ConfigError("recipe frozen uses the evaluator of a labelled dataset as its backbone; with a CSV "
                                  "choose recipe siamese or triplet")
            cls.choose_augment(s, spec["image"].channels, "", [])
            return fields, spec
        data = load_images(config, split)
        spec = Spec(image=ImageField(data.channels, data.image_size, data.image_size))
        cls.choose_augment(s, data.channels, config.data.name, data.class_names)
        if s.recipe == "selfsup":
            return {"image": data.images}, spec  # labels are not even loaded into the run: none are used
        if data.class_names == [UNLABELLED]:
            raise ConfigError(f"recipe {s.recipe} learns from class labels, and {config.data.name} has none (no class "
                              f"sub-folders): use similarity.recipe=selfsup, or give similarity.pairs=FILE.csv")
        spec["label"] = ClassField(tuple(data.class_names))
        return {"image": data.images, "label": data.labels}, spec

    @classmethod
    def load_run_data(cls, config: Config, out: Path):
        """load_data, and for selfsup with similarity.neighbour_views each image's nearest images in pixel space
        (the `view_neighbours` field, kept in the run: a resume reuses it)."""
        fields, spec = cls.load_data(config, "train")
        s = config.similarity
        if s.recipe == "selfsup" and s.neighbour_views > 0 and len(fields["image"]) > 1:  # (one image has no neighbour)
            from ...training import dist
            from .neighbours import kept_pixel_neighbours

            fields["view_neighbours"], line = kept_pixel_neighbours(fields["image"], s.view_neighbours, out, dist.rank())
            note(f"data: selfsup: {line}; {s.neighbour_views:.0%} of second views are made from one of them "
                 f"(similarity.neighbour_views)")
        return fields, spec

    @staticmethod
    def select(run, idx: torch.Tensor, k: int) -> dict | None:
        """selfsup with view_neighbours: each image, and the image its second view is made from: one of its
        neighbours for a share of them, itself for the rest (seeded by batch number k: a resume draws the same).
        Otherwise None: the batch is the rows of every field."""
        if "view_neighbours" not in run.fields:
            return None
        g = torch.Generator().manual_seed(run.config.train.seed * 1_000_037 + k)
        knn = run.fields["view_neighbours"]
        column = torch.randint(knn.shape[1], (len(idx),), generator=g).to(knn.device)
        use = (torch.rand(len(idx), generator=g) < run.config.similarity.neighbour_views).to(knn.device)
        return {"image": run.field_rows("image", idx), "neighbour": run.field_rows("image", torch.where(use, knn[idx, column], idx))}

    @staticmethod
    def choose_augment(s: SimilarityConfig, channels: int, data_name: str, class_names: list[str]) -> None:
        """similarity.augment left unset: chosen by the data once and said; config.yaml records it, so a resumed
        run keeps it."""
        if s.augment is None and (s.recipe == "selfsup" or class_names != [UNLABELLED]):
            s.augment, line = section.default_augment(channels, data_name, class_names, s.recipe)
            note(line)

    @staticmethod
    def sampler(run):
        if "label" not in run.fields:
            return None
        return ClassBalanced(run.fields["label"].cpu(), run.config.similarity.per_class, run.batch_size, run.config.train.seed)

    @staticmethod
    def build(spec: Spec, config: Config, references: int = 0) -> nn.Module:
        """references: how many training images the graph coordinates will be fitted on (0: none)."""
        s, image = config.similarity, spec["image"]
        if s.recipe != "frozen":
            return Embedder(image.channels, s.embed_dim, s.width, s.projector if s.recipe == "selfsup" else 0, s.features,
                            flip_features="flip" in (s.augment or []), graph=s.graph, graph_refs=references)
        from ...eval.evaluator import get_evaluator

        with torch.random.fork_rng(devices=[]):  # training the evaluator (the first time) must not change this run's init
            ev = get_evaluator({"name": config.data.name, "data_dir": config.data.data_dir,
                                "image_size": config.data.image_size, "channels": config.data.channels})
        if ev.channels != image.channels or ev.image_size != image.height:
            raise ConfigError(f"the evaluator for {config.data.name} takes {ev.channels}-channel {ev.image_size}px images; "
                              f"these are {image.channels}-channel {image.height}px")
        net = FrozenBackboneEmbedder(image.channels, len(ev.class_names), s.embed_dim)
        net.backbone.load_state_dict(ev.net.state_dict())
        return net

    @classmethod
    def make_step(cls, run) -> MetricStep:
        s = run.config.similarity
        # the graph's reference images: evenly spread over the training set (a folder's rows come class by class)
        rows = (torch.linspace(0, run.n_items - 1, min(GRAPH_REFERENCES, run.n_items)).round().long()
                if s.graph else torch.zeros(0, dtype=torch.long))
        net = cls.build(run.spec, run.config, len(rows)).to(run.device)
        calibration = {k: v[:CALIBRATION_IMAGES].cpu() for k, v in run.fields.items()}
        if "view_neighbours" in run.fields:  # selfsup's threshold: on images and their farthest view neighbour
            first = torch.arange(min(SELFSUP_CALIBRATION, run.n_items), device=run.fields["view_neighbours"].device)
            calibration["neighbour"] = run.field_rows("image", run.fields["view_neighbours"][first, -1]).cpu()
        reference = run.field_rows("image", rows.to(run.fields["image"].device)).cpu() if len(rows) else None
        return MetricStep(net, s.recipe, s, calibration, run.precision, reference)

    @staticmethod
    @torch.no_grad()
    def preview(run, path: Path) -> torch.Tensor:
        """Query | its 7 nearest training images, for 8 fixed queries (the first training images)."""
        from ...visual import save_grid

        gallery = run.fields["image"][:CALIBRATION_IMAGES]
        e = embed_all(run.step.net, gallery)
        q = min(8, len(e) - 1)
        sims = e[:q] @ e.T
        sims[torch.arange(q), torch.arange(q)] = -2  # not itself
        k = min(7, len(e) - 1)
        nearest = sims.topk(k, dim=1).indices
        cells = torch.cat([torch.cat([gallery[i:i + 1].cpu(), gallery[nearest[i]].cpu()]) for i in range(q)])
        save_grid(cells, path, nrow=k + 1, title=f"step {run.step.steps_done}: query | its {k} nearest training images")
        return to_float(cells)
