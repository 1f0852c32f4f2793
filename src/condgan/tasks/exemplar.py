"""The exemplar task, "more like this one": a GAN conditioned on an exemplar image's embedding.

As in IC-GAN (Casanova et al., 2021): every training image is an exemplar; its
embedding (from a trained similarity run, frozen) conditions G and D, and the
real images D is shown for it are its k nearest neighbours in that embedding
space. G thus learns the neighbourhood of an image, not the image itself, and
at sampling time any image, seen or not, can be the exemplar. No class labels
are involved: with a self-supervised embedder it works on a folder of images
without classes.

It is the one GANStep with `embedding` as its condition field; the embedder
travels in the checkpoint as a frozen network (GANStep.frozen).
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..conditions import ImageField, Spec, VectorField
from ..config import Config
from ..data import to_float
from ..errors import ConfigError
from ..models.resnet import ProjectionDiscriminator, ResNetGenerator
from . import GANTask, Roles
from .similarity import load_images

EXEMPLAR_ROWS = 8  # preview: this many fixed exemplars


def load_embedder(config: Config):
    """The Embedder pipeline of the run named by similarity.embedder."""
    from ..pipelines import Embedder, load

    path = config.similarity.embedder
    if not path:
        raise ConfigError("--task exemplar needs an embedding network: --embedder RUN (similarity.embedder), a run of "
                          "--task similarity (its selfsup recipe needs no labels)")
    if not Path(path).exists():
        raise ConfigError(f"similarity.embedder {path} does not exist (give a run directory of --task similarity)")
    embedder = load(path)
    if not isinstance(embedder, Embedder):
        raise ConfigError(f"similarity.embedder {path} is a {embedder.task} model; it must be a --task similarity run")
    return embedder


@torch.no_grad()
def nearest_neighbours(e: torch.Tensor, k: int, chunk: int = 2048) -> torch.Tensor:
    """(N, k) indices of each embedding's k most similar embeddings, itself included (it is its own nearest)."""
    k = min(k, len(e))
    return torch.cat([(e[i:i + chunk] @ e.T).topk(k, dim=1).indices for i in range(0, len(e), chunk)])


class ExemplarTask(GANTask):
    name = "exemplar"

    @staticmethod
    def load_data(config: Config, split: str = "train"):
        data = load_images(config, split)  # class labels, if the data has any, are not used
        embedder = load_embedder(config)
        want = embedder.spec["image"]
        if (want.channels, want.height) != (data.channels, data.image_size):
            raise ConfigError(f"the embedder takes {want.channels}-channel {want.height}px images, the data is "
                              f"{data.channels}-channel {data.image_size}px: set data.image_size / data.channels to match")
        e = embedder.embed(data.images)
        knn = nearest_neighbours(e, config.similarity.neighbours)
        spec = Spec(image=ImageField(data.channels, data.image_size, data.image_size), embedding=VectorField(e.shape[1]))
        return {"image": data.images, "embedding": e, "knn": knn}, spec

    @staticmethod
    def roles(spec: Spec, config: Config) -> Roles:
        return Roles("image", ("embedding",), ("embedding",), None)

    @staticmethod
    def build(spec: Spec, config: Config, class_head: bool):
        m, image, dim = config.model, spec["image"], spec["embedding"].dim
        G = ResNetGenerator(0, m.z_dim, image.channels, image.height, m.g_width, cond_dim=dim)
        D = ProjectionDiscriminator(0, image.channels, image.height, m.d_width, class_head=False, cond_dim=dim)
        return G, D

    @staticmethod
    def frozen(run) -> dict:
        return {"embedder": load_embedder(run.config).net.to(run.device)}

    @staticmethod
    def select(run, idx: torch.Tensor, k: int) -> dict:
        """Exemplar i's embedding, and a real image drawn from i's neighbours (seeded by batch number k)."""
        g = torch.Generator().manual_seed(run.config.train.seed * 1_000_039 + k)
        knn = run.fields["knn"]
        column = torch.randint(knn.shape[1], (len(idx),), generator=g).to(knn.device)
        return {"image": run.fields["image"][knn[idx, column]], "embedding": run.fields["embedding"][idx]}

    @staticmethod
    @torch.no_grad()
    def preview(run, path):
        """exemplar | 7 outputs (fixed noise) for 8 exemplars spread over the training set."""
        from ..training.trainer import GRID_COLUMNS
        from ..visual import save_grid

        rows = torch.linspace(0, run.n_items - 1, min(EXEMPLAR_ROWS, run.n_items)).long().to(run.device)
        n = GRID_COLUMNS - 1
        e = run.fields["embedding"][rows].repeat_interleave(n, dim=0)
        z = run.fixed_noise[:n].repeat(len(rows), 1).to(run.device)
        outputs = run.step.G_ema(z, e).cpu().view(len(rows), n, *run.fields["image"].shape[1:])
        exemplars = to_float(run.fields["image"][rows]).cpu()[:, None]
        images = torch.cat([exemplars, outputs], dim=1).flatten(0, 1)
        save_grid(images, path, nrow=GRID_COLUMNS, title=f"step {run.step.steps_done}: exemplar | {n} outputs")
        return images
