"""An embedding network (the similarity task) and a generator conditioned on it (the exemplar task)."""

from __future__ import annotations

from typing import NamedTuple

import torch

from ..errors import CheckpointError, UserError
from .base import Pipeline, as_images, as_output, check_count
from ..conditions import Spec


class Comparison(NamedTuple):
    """Two images compared: their cosine similarity, the run's threshold, and whether it calls them the same."""

    similarity: float
    threshold: float
    same: bool

    @property
    def verdict(self) -> str:
        """The words `condgan compare` and the serve API give it."""
        return "similar" if self.same else "not similar"


class Embedder(Pipeline):
    """An embedding network (the similarity task): `embed`, `similarity`, `same`, `compare`, `search`.

    Embeddings are unit vectors; the similarity of two images is their cosine (1 = identical in the
    network's eyes), and `threshold` is the similarity above which the run calls two images the same
    (chosen on training data when the checkpoint was written)."""

    task = "similarity"
    needs = ("image",)
    components = ("embedder",)
    spec_arguments = {"embedder": [("channels", "image", "channels")]}
    card_tags = ("image-similarity", "metric-learning")
    pipeline_tag = "image-feature-extraction"

    def usage(self) -> str:
        return ("vectors = model.embed(images)        # (N, D) unit vectors from uint8 arrays, float tensors or PIL images\n"
                "model.similarity(a, b), model.same(a, b)   # cosine similarity; the verdict at the learned threshold")

    def networks(self) -> dict:
        return {"embedder": self.net}

    @classmethod
    def from_components(cls, nets: dict, spec: Spec, data: dict, device) -> "Embedder":
        return cls(nets["embedder"], spec, data, device)

    @property
    def threshold(self) -> float:
        return float(self.net.threshold)

    @property
    def dim(self) -> int:
        return int(self.net.dim)

    @property
    def class_names(self) -> list[str] | None:
        return list(self.spec["label"].class_names) if "label" in self.spec else None

    @torch.no_grad()
    def embed(self, images, batch_size: int = 500) -> torch.Tensor:
        """(N, D) float embeddings of uint8 arrays, float tensors in [-1, 1] or PIL images (resized to fit)."""
        x = as_images(images, self.spec["image"], "embed")
        out = [self.net(x[i:i + batch_size].to(self.device)).float().cpu() for i in range(0, len(x), batch_size)]
        return torch.cat(out) if out else torch.zeros(0, self.dim)

    def similarity(self, a, b) -> torch.Tensor:
        """Cosine similarity of images a[i] and b[i] (N,); one image on either side is compared with all of the other."""
        ea, eb = self.embed(a), self.embed(b)
        if len(ea) != len(eb) and 1 not in (len(ea), len(eb)):
            raise UserError(f"cannot pair {len(ea)} images with {len(eb)}: give as many on each side, or one on either")
        return (ea * eb).sum(1)

    def same(self, a, b) -> torch.Tensor:
        """Whether a[i] and b[i] are similar at the learned threshold (bool, (N,))."""
        return self.similarity(a, b) >= self.threshold

    def compare(self, a, b) -> Comparison:
        """One image with another: the score and verdict `condgan compare` prints and the serve page's Compare tab shows."""
        score = float(self.similarity(a, b)[0])
        return Comparison(score, self.threshold, score >= self.threshold)

    def search(self, query, k: int = 8, within=None) -> list[dict]:
        """The k images most similar to one query image, best first, as {'score', 'index'} (and 'path' for a folder).
        within: a folder of images (indexed once, cached, rebuilt when the folder changes), images
        (anything `embed` takes), or None: the run's own training images."""
        from ..search import SearchIndex

        check_count(k, "k", 10_000)
        q = self.embed(query)
        if len(q) != 1:
            raise UserError(f"search takes one query image, got {len(q)}")
        index = SearchIndex.for_within(self, within)
        return index.nearest(q[0], k)


class Exemplar(Pipeline):
    """A generator of images like an exemplar (the exemplar task): `sample(like=image, n, seed)`.

    The exemplar is embedded by the run's frozen embedder; G turns noise and that embedding into images
    that resemble the exemplar's nearest neighbours in the data."""

    task = "exemplar"
    needs = ("image", "embedding")
    components = ("generator", "embedder")
    spec_arguments = {"generator": [("channels", "image", "channels"), ("image_size", "image", "height"),
                                    ("cond_dim", "embedding", "dim")],
                      "embedder": [("channels", "image", "channels")]}
    card_tags = ("gan", "conditional-image-generation", "exemplar")
    pipeline_tag = "image-to-image"

    def usage(self) -> str:
        return "images = model.sample(like=exemplar, n=16, seed=0)  # exemplar: a PIL image, uint8 array or float tensor"

    def __init__(self, net, spec, data=None, device="cpu", embedder: torch.nn.Module | None = None):
        # the exemplar is an input image shaped like the outputs; naming it in the spec lets `condgan serve` ask for it
        spec = Spec({**spec, "exemplar": spec["exemplar"] if "exemplar" in spec else spec["image"]})
        super().__init__(net, spec, data, device)
        if embedder is None:
            raise CheckpointError("an exemplar model needs its embedder network, which is missing")
        self.embedder = Embedder(embedder, Spec(image=spec["image"]), data, device)

    def networks(self) -> dict:
        return {"generator": self.net, "embedder": self.embedder.net}

    @classmethod
    def from_components(cls, nets: dict, spec: Spec, data: dict, device) -> "Exemplar":
        return cls(nets["generator"], spec, data, device, embedder=nets.get("embedder"))

    @property
    def channels(self) -> int:
        return self.spec["image"].channels

    @torch.no_grad()
    def __call__(self, z: torch.Tensor, embeddings: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
        """Images (N, C, H, W) in [-1, 1] for noise z and exemplar embeddings (N, D)."""
        out = [self.net(z[i:i + batch_size].to(self.device), embeddings[i:i + batch_size].to(self.device)).float().cpu()
               for i in range(0, len(z), batch_size)]
        return torch.cat(out)

    def sample(self, like, n: int = 16, seed: int | None = 0, output_type: str = "pt", truncation: float | None = None):
        """n images like each exemplar in `like` (one image or several: anything Embedder.embed takes),
        grouped by exemplar. output_type: 'pt' (float in [-1, 1]), 'uint8' or 'pil'. truncation: the truncation
        trick, off (None) by default: latent entries beyond ±truncation are drawn again, giving images closer to
        their exemplar and less varied (pipelines/latents.truncate)."""
        check_count(n, "n")
        e = self.embedder.embed(like)
        check_count(len(e) * n, "number of images")
        e = e.repeat_interleave(n, dim=0)
        return as_output(self(self.noise(len(e), seed, truncation), e), output_type)
