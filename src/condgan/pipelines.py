"""What users call: `condgan.load(path)` returns the object for the run's task.

    gen = condgan.load("runs/fmnist");   gen.sample(["sandal", "bag"], seed=0)       # ClassConditional
    tr = condgan.load("runs/edges");     tr.translate(edge_maps)                     # Translator
    ts = condgan.load("runs/colours");   ts.sample(label_a="sandal", label_b="red")  # TwoStage
    em = condgan.load("runs/similar");   em.embed(images); em.similarity(a, b)       # Embedder
    ex = condgan.load("runs/like");      ex.sample(like=image, n=16, seed=0)         # Exemplar

Each pipeline is a network (the EMA generator) plus what using it needs: the
field spec (class names, image shapes) and the data it was trained on. It is
built from the network's recorded constructor arguments (never from today's
config schema) and loaded from a run directory, a checkpoint or an export —
via the closed PIPELINES registry, never by importing a name read from a file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image

from .conditions import Spec
from .data.imageset import resolve_class, to_float, to_uint8
from .errors import CheckpointError, UserError
from .models import rebuild
from . import untrusted
from .progress import progress
from .training import checkpoint as ckpt

MAX_SAMPLES = 1_000_000


class Pipeline:
    """Shared by every task: device, spec, the run's data config, save_pretrained."""

    task = ""
    needs: tuple[str, ...] = ()  # fields the spec must have for this pipeline to work
    components = ("generator",)  # the networks it is made of, by component name in checkpoints and exports

    def __init__(self, net: torch.nn.Module, spec: Spec, data: dict | None = None, device: str | torch.device = "cpu"):
        self.net = net.eval().requires_grad_(False).to(device)
        self.spec = spec
        self._data = dict(data or {})
        self.device = torch.device(device)

    @property
    def data(self) -> dict:
        """The run's data config, as keyword arguments for the task's data loader."""
        return {k: self._data.get(k) for k in ("name", "data_dir", "classes", "image_size", "channels")}

    def use_data(self, name: str | None, data_dir: str | None = None) -> None:
        """Point at the training data (to evaluate): exports of folder-trained models carry no paths."""
        if name:
            self._data["name"] = name
        if data_dir:
            self._data["data_dir"] = data_dir

    @property
    def z_dim(self) -> int:
        return self.net.arguments["z_dim"]

    def noise(self, n: int, seed: int | None = None) -> torch.Tensor:
        g = torch.Generator()
        if seed is None:
            g.seed()
        else:
            g.manual_seed(untrusted.seed(seed))
        return torch.randn(n, self.z_dim, generator=g)

    def save_pretrained(self, folder: str | Path) -> Path:
        """A shareable folder: condgan.json + one .safetensors per component (safe to load, no code runs). Local data
        paths stay behind: a built-in dataset is named, a folder only by its last part (as a hint)."""
        return ckpt.write_export(folder, self.task, self.spec.to_dict(), ckpt.portable_data(self._data), self.networks())

    def networks(self) -> dict:
        """Component name -> network, as written by save_pretrained."""
        return {"generator": self.net}

    @classmethod
    def from_components(cls, nets: dict, spec: Spec, data: dict, device) -> "Pipeline":
        return cls(nets["generator"], spec, data, device)

    @classmethod
    def from_pretrained(cls, path: str | Path, device: str = "cpu") -> "Pipeline":
        return load(path, device)


class ClassConditional(Pipeline):
    """A class-conditional generator: `sample(labels, n, seed)`."""

    task = "cgan"
    needs = ("image", "label")

    @property
    def class_names(self) -> list[str]:
        return list(self.spec["label"].class_names)

    # ----- facts about the model ----------------------------------------------------------
    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def channels(self) -> int:
        return self.spec["image"].channels

    @property
    def image_size(self) -> int:
        return self.spec["image"].height

    @torch.no_grad()
    def __call__(self, z: torch.Tensor, labels: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
        """Images (N, C, H, W) in [-1, 1] for noise `z` and integer `labels`."""
        labels = torch.as_tensor(labels, dtype=torch.int64)
        if z.dim() != 2 or z.shape[1] != self.z_dim or len(z) != len(labels):
            raise UserError(f"expected z of shape (N, {self.z_dim}) and N labels, got {tuple(z.shape)} and {len(labels)} labels")
        if len(labels) and (labels.min() < 0 or labels.max() >= self.num_classes):
            raise UserError(f"labels must be in 0..{self.num_classes - 1}")
        out = [self.net(z[i:i + batch_size].to(self.device), labels[i:i + batch_size].to(self.device)).float().cpu()
               for i in range(0, len(z), batch_size)]
        return torch.cat(out) if out else torch.empty(0, self.channels, self.image_size, self.image_size)

    def label_ids(self, labels: str | int | Sequence[str | int]) -> torch.Tensor:
        if isinstance(labels, (str, int)):
            labels = [labels]
        return torch.tensor([resolve_class(lbl, self.class_names) for lbl in labels], dtype=torch.int64)

    def sample(self, labels: str | int | Sequence[str | int], n: int = 1, seed: int | None = None,
               output_type: str = "pt"):
        """`n` images of each label in `labels` (names or indices), grouped by label.

        output_type: 'pt' (float tensor in [-1, 1]), 'uint8' (tensor), or 'pil' (list of PIL images).
        """
        check_count(n, "n")
        ids = self.label_ids(labels).repeat_interleave(n)
        check_count(len(ids), "number of images")
        return as_output(self(self.noise(len(ids), seed), ids), output_type)

    def sample_per_class(self, n_per_class: int, seed: int = 0, batch_size: int = 500,
                         progress_bar: bool = False, labels: Sequence[int] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 images (N, C, H, W) and int64 labels: `n_per_class` of every class (or of `labels` only)."""
        check_count(n_per_class, "n_per_class")
        classes = torch.arange(self.num_classes) if labels is None else self.label_ids(list(labels))
        labels = classes.repeat_interleave(n_per_class)
        check_count(len(labels), "number of images")
        z = self.noise(len(labels), seed)
        chunks = []
        for i in progress(range(0, len(labels), batch_size), desc="sampling", unit="batch", disable=not progress_bar):
            chunks.append(to_uint8(self(z[i:i + batch_size], labels[i:i + batch_size], batch_size)))
        return torch.cat(chunks), labels

    def save_npz(self, path: str | Path, n_per_class: int, seed: int = 0, progress: bool = False,
                 labels: Sequence[str | int] | None = None) -> Path:
        """Write samples for external evaluation: images uint8 N×H×W[×C], labels, class_names
        (`n_per_class` of every class, or of `labels` only; class_names always lists them all)."""
        images, labels = self.sample_per_class(n_per_class, seed, progress_bar=progress, labels=labels)
        arr = images.permute(0, 2, 3, 1).numpy()
        if arr.shape[-1] == 1:
            arr = arr[..., 0]
        path = Path(path)
        np.savez_compressed(path, images=arr, labels=labels.numpy(), class_names=np.array(self.class_names))
        return path


class Translator(Pipeline):
    """A paired image-to-image translator: `translate(images)` (masks, edge maps, sketches in; images out)."""

    task = "translate"
    needs = ("image", "source")

    @property
    def data(self) -> dict:
        """The run's data config, as keyword arguments for `condgan.data.paired.load_pairs`."""
        d = {k: self._data.get(k) for k in ("name", "data_dir", "direction", "image_size", "classes")}
        d["direction"] = d["direction"] or "AtoB"
        return d

    @property
    def source(self):
        return self.spec["source"]

    @property
    def target(self):
        return self.spec["image"]

    @property
    def class_names(self) -> list[str] | None:
        return list(self.spec["label"].class_names) if "label" in self.spec else None

    @property
    def uses_label(self) -> bool:
        """Whether the network takes a class label beside the source (trained with model.use_label)."""
        return self.net.arguments.get("num_classes", 0) > 0

    def as_sources(self, images) -> torch.Tensor:
        """uint8 arrays (H,W / H,W,C / N,H,W / N,H,W,C), float tensors in [-1, 1] (C,H,W / N,C,H,W),
        or PIL images (one or a list) -> float (N, C, H, W) in [-1, 1] with the source's channels."""
        return as_images(images, self.source, "translate")

    @torch.no_grad()
    def translate(self, images, seed: int | None = 0, output_type: str = "pt", batch_size: int = 256,
                  labels=None):
        """Outputs for `images`; one noise draw per image from `seed` (None: random).
        output_type: 'pt' (float in [-1, 1]), 'uint8' (tensor) or 'pil'. `labels` (names or ids) when the
        translator was trained with model.use_label (otherwise they are ignored)."""
        x = self.as_sources(images)
        cond = []
        if self.uses_label:
            if labels is None:
                raise UserError(f"this translator also needs a label per image (one of {', '.join(self.class_names)})")
            if isinstance(labels, (str, int)):
                labels = [labels] * len(x)
            ids = torch.tensor([resolve_class(lbl, self.class_names) for lbl in labels], dtype=torch.int64)
            if len(ids) != len(x):
                raise UserError(f"{len(x)} images but {len(ids)} labels")
            cond = [ids]
        z = self.noise(len(x), seed)
        out = torch.cat([self.net(z[i:i + batch_size].to(self.device), x[i:i + batch_size].to(self.device),
                                  *[c[i:i + batch_size].to(self.device) for c in cond]).float().cpu()
                         for i in range(0, len(x), batch_size)])
        return as_output(out, output_type)

    def pairs(self, split: str):
        """A split of the pairs this translator was trained on (to apply, sheet or score it)."""
        from .data.paired import load_pairs

        return load_pairs(split=split, **self.data)


class TwoStage(Pipeline):
    """Two generators in a row: G1(label A) -> intermediate, G2(intermediate, label B) -> image.

    `sample(label_a="sandal", label_b="red", n=4, seed=0, return_intermediate=True)`; `translate` runs G2
    alone on intermediates of your own; `save_grid` and `save_npz` write every (A, B) pair.
    """

    task = "two-stage"
    needs = ("image", "mask", "label_a", "label_b")
    components = ("generator1", "generator2")

    def __init__(self, g1: torch.nn.Module, g2: torch.nn.Module, spec: Spec, data: dict | None = None,
                 device: str | torch.device = "cpu"):
        super().__init__(g2, spec, data, device)
        self.g1, self.g2 = g1.eval().requires_grad_(False).to(device), self.net

    @classmethod
    def from_components(cls, nets: dict, spec: Spec, data: dict, device) -> "TwoStage":
        return cls(nets["generator1"], nets["generator2"], spec, data, device)

    def networks(self) -> dict[str, torch.nn.Module]:
        return {"generator1": self.g1, "generator2": self.g2}

    @property
    def data(self) -> dict:
        """The run's data config, as keyword arguments for `condgan.data.twolabel.load_two_label`."""
        return {k: self._data.get(k) for k in ("name", "data_dir", "classes", "image_size", "paths_outside")}

    @property
    def label_a_names(self) -> list[str]:
        return list(self.spec["label_a"].class_names)

    @property
    def label_b_names(self) -> list[str]:
        return list(self.spec["label_b"].class_names)

    @property
    def label_b_rgb(self) -> torch.Tensor | None:
        """(K_B, 3) uint8: the colour of each label B, when label B names colours (the built-in palette,
        or colour names / '#rrggbb' in your manifest); else None."""
        from .data.twolabel import palette_rgb

        return palette_rgb(self.label_b_names)

    @property
    def image_size(self) -> tuple[int, int]:
        return self.spec["image"].size

    def noise2(self, n: int, seed: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Noise for G1 and for G2, both drawn from one seed."""
        g = torch.Generator()
        if seed is None:
            g.seed()
        else:
            g.manual_seed(seed)
        return torch.randn(n, self.g1.arguments["z_dim"], generator=g), torch.randn(n, self.g2.arguments["z_dim"], generator=g)

    def ids(self, labels, which: str) -> torch.Tensor:
        names = self.label_a_names if which == "a" else self.label_b_names
        if isinstance(labels, (str, int)):
            labels = [labels]
        if isinstance(labels, torch.Tensor):
            labels = labels.tolist()
        try:
            return torch.tensor([resolve_class(lbl, names) for lbl in labels], dtype=torch.int64)
        except UserError as e:
            raise UserError(f"label {which.upper()}: {e}") from None

    @torch.no_grad()
    def __call__(self, z1: torch.Tensor, z2: torch.Tensor, labels_a, labels_b,
                 batch_size: int = 500) -> tuple[torch.Tensor, torch.Tensor]:
        """(images (N, 3, H, W), intermediates (N, C, H, W)), floats in [-1, 1], for noises and integer labels."""
        a, b = torch.as_tensor(labels_a, dtype=torch.int64), torch.as_tensor(labels_b, dtype=torch.int64)
        if not len(z1) == len(z2) == len(a) == len(b):
            raise UserError(f"expected as many noises as labels, got {len(z1)}, {len(z2)}, {len(a)} and {len(b)}")
        images, masks = [], []
        for i in range(0, len(a), batch_size):
            m = self.g1(z1[i:i + batch_size].to(self.device), a[i:i + batch_size].to(self.device))
            images.append(self.g2(z2[i:i + batch_size].to(self.device), m, b[i:i + batch_size].to(self.device)).float().cpu())
            masks.append(m.float().cpu())
        if not images:
            h, w = self.image_size
            return torch.empty(0, 3, h, w), torch.empty(0, self.spec["mask"].channels, h, w)
        return torch.cat(images), torch.cat(masks)

    def sample(self, label_a, label_b, n: int = 1, seed: int | None = None, return_intermediate: bool = False,
               output_type: str = "pt"):
        """`n` images for every (label A, label B) pair of the names (or indices) given, A-major; with
        return_intermediate, also G1's intermediate of each. output_type: 'pt', 'uint8' or 'pil'."""
        check_count(n, "n")
        a, b = self.ids(label_a, "a"), self.ids(label_b, "b")
        check_count(len(a) * len(b) * n, "number of images")
        labels_a = a.repeat_interleave(len(b) * n)
        labels_b = b.repeat_interleave(n).repeat(len(a))
        images, masks = self(*self.noise2(len(labels_a), seed), labels_a, labels_b)
        if return_intermediate:
            return as_output(images, output_type), as_output(masks, output_type)
        return as_output(images, output_type)

    @torch.no_grad()
    def translate(self, intermediates: torch.Tensor, label_b, seed: int | None = 0, output_type: str = "pt"):
        """G2 alone: images for intermediates of your own (uint8, or float in [-1, 1], (N, C, H, W)) under
        label B (one name for all, or one per intermediate)."""
        x = intermediates.unsqueeze(0) if intermediates.dim() == 3 else intermediates
        x = to_float(x) if x.dtype == torch.uint8 else x.float()
        if tuple(x.shape[1:]) != (self.spec["mask"].channels, *self.image_size):
            raise UserError(f"intermediates must be {(self.spec['mask'].channels, *self.image_size)}, got {tuple(x.shape[1:])}")
        b = self.ids(label_b, "b")
        b = b.expand(len(x)) if len(b) == 1 else b
        if len(b) != len(x):
            raise UserError(f"{len(x)} intermediates but {len(b)} labels B")
        _, z2 = self.noise2(len(x), seed)
        out = torch.cat([self.g2(z2[i:i + 500].to(self.device), x[i:i + 500].to(self.device), b[i:i + 500].to(self.device)).float().cpu()
                         for i in range(0, len(x), 500)])
        return as_output(out, output_type)

    def sample_pairs(self, n_per_pair: int, seed: int = 0, progress_bar: bool = False):
        """`n_per_pair` images of every (A, B) pair: uint8 images (N, 3, H, W), uint8 intermediates (N, C, H, W),
        int64 labels A and labels B."""
        check_count(n_per_pair, "n_per_pair")
        ka, kb = len(self.label_a_names), len(self.label_b_names)
        labels_a = torch.arange(ka).repeat_interleave(kb * n_per_pair)
        labels_b = torch.arange(kb).repeat_interleave(n_per_pair).repeat(ka)
        check_count(len(labels_a), "number of images")
        z1, z2 = self.noise2(len(labels_a), seed)
        images, masks = [], []
        for i in progress(range(0, len(labels_a), 500), desc="sampling", unit="batch", disable=not progress_bar):
            x, m = self(z1[i:i + 500], z2[i:i + 500], labels_a[i:i + 500], labels_b[i:i + 500])
            images.append(to_uint8(x))
            masks.append(to_uint8(m))
        return torch.cat(images), torch.cat(masks), labels_a, labels_b

    def palette_or_mean_colours(self) -> torch.Tensor:
        """label_b_rgb, or, when label B does not name colours, the mean colour of each label B's real
        training images (scaled so its largest component is 255)."""
        if self.label_b_rgb is not None:
            return self.label_b_rgb
        from .data.twolabel import load_two_label

        data = load_two_label(split="train", **self.data)
        mean = torch.stack([data.images[data.labels_b == k].float().mean(dim=(0, 2, 3)) for k in range(len(self.label_b_names))])
        return (mean * 255 / mean.amax(1, keepdim=True).clamp(min=1e-6)).round().to(torch.uint8)

    def save_npz(self, path: str | Path, n_per_pair: int, seed: int = 0, progress: bool = False) -> Path:
        """Samples of every (A, B) pair for any external evaluator: images (uint8 N×H×W×3), intermediates
        (uint8 N×H×W), labels_a, labels_b, label_a_names, label_b_names, label_b_rgb (K×3 uint8)."""
        images, masks, labels_a, labels_b = self.sample_pairs(n_per_pair, seed, progress)
        path = Path(path)
        np.savez_compressed(path, images=images.permute(0, 2, 3, 1).numpy(), intermediates=masks[:, 0].numpy(),
                            labels_a=labels_a.numpy(), labels_b=labels_b.numpy(),
                            label_a_names=np.array(self.label_a_names), label_b_names=np.array(self.label_b_names),
                            label_b_rgb=self.palette_or_mean_colours().numpy())
        return path

    def save_grid(self, path: str | Path, labels_a=None, labels_b=None, n: int = 1, seed: int = 0) -> Path:
        """Rows = label A (n each), columns = label B; each image with its intermediate on its left."""
        from .visual import save_sheet

        a = self.ids(self.label_a_names if labels_a is None else labels_a, "a")
        b = self.ids(self.label_b_names if labels_b is None else labels_b, "b")
        check_count(len(a) * len(b) * n, "number of images", 10_000)
        labels_a = a.repeat_interleave(n).repeat_interleave(len(b))  # row-major: (A, i) rows, B columns
        labels_b = b.repeat(len(a) * n)
        images, masks = self(*self.noise2(len(labels_a), seed), labels_a, labels_b)
        rows = len(a) * n
        columns = []
        for j in range(len(b)):
            columns += [masks.view(rows, len(b), *masks.shape[1:])[:, j], images.view(rows, len(b), *images.shape[1:])[:, j]]
        names_b = [self.label_b_names[i] for i in b.tolist()]
        return save_sheet(columns, [x for name in names_b for x in ("", name)], Path(path),
                          row_names=[self.label_a_names[i] for i in a.tolist() for _ in range(n)],
                          title="rows: label A, columns: label B (intermediate | image)")



class Embedder(Pipeline):
    """An embedding network (the similarity task): `embed`, `similarity`, `same`, `search`.

    Embeddings are unit vectors; the similarity of two images is their cosine (1 = identical in the
    network's eyes), and `threshold` is the similarity above which the run calls two images the same
    (chosen on training data when the checkpoint was written)."""

    task = "similarity"
    needs = ("image",)
    components = ("embedder",)

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
        return int(self.net.arguments["embed_dim"])

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

    def search(self, query, k: int = 8, within=None) -> list[dict]:
        """The k images most similar to one query image, best first, as {'score', 'index' | 'path'}.
        within: a folder of images (indexed once, cached, rebuilt when the folder changes), images
        (anything `embed` takes), or None: the run's own training images."""
        from .search import SearchIndex

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

    def sample(self, like, n: int = 16, seed: int | None = 0, output_type: str = "pt"):
        """n images like each exemplar in `like` (one image or several: anything Embedder.embed takes),
        grouped by exemplar. output_type: 'pt' (float in [-1, 1]), 'uint8' or 'pil'."""
        check_count(n, "n")
        e = self.embedder.embed(like)
        check_count(len(e) * n, "number of images")
        e = e.repeat_interleave(n, dim=0)
        return as_output(self(self.noise(len(e), seed), e), output_type)


PIPELINES = {p.task: p for p in (ClassConditional, Translator, TwoStage, Embedder, Exemplar)}
Generator = ClassConditional  # the name used before tasks existed


def load(path: str | Path, device: str = "cpu") -> Pipeline:
    """The pipeline for a run directory, a checkpoint (.pt) or an exported folder, whatever its task or format."""
    device = untrusted.device(str(device) if isinstance(device, torch.device) else device)
    model = ckpt.read_model(path)
    source = untrusted.printable(model["source"], 200)
    task = model["task"]
    pipeline = PIPELINES.get(task) if isinstance(task, str) else None
    if pipeline is None:
        raise CheckpointError(f"{source}: unknown task {untrusted.shown(task, 40)}; this condgan knows "
                              f"{', '.join(PIPELINES)} (a newer condgan may know more)")
    try:
        spec = Spec.from_dict(model["spec"])
    except CheckpointError as e:
        raise CheckpointError(f"{source}: {e}") from None
    for field in pipeline.needs:
        if field not in spec:
            raise CheckpointError(f"{source}: a {task} model needs a {field!r} field in its spec, which is missing")
    nets = {}
    for component in pipeline.components:
        weights = model["weights"].get(component)
        if not isinstance(weights, dict):
            raise CheckpointError(f"{source}: no {component} weights")
        untrusted.finite_weights(weights, source)
        net = rebuild(model["networks"].get(component), source)
        try:
            net.load_state_dict(weights)
        except (RuntimeError, KeyError) as e:
            raise CheckpointError(f"{source}: {component} weights do not fit the recorded network "
                                  f"({untrusted.printable(str(e).splitlines()[0], 160)})") from None
        nets[component] = net
    return pipeline.from_components(nets, spec, model["data"], device)


def as_images(images, field, verb: str = "use") -> torch.Tensor:
    """uint8 arrays (H,W / H,W,C / N,H,W / N,H,W,C), float tensors in [-1, 1] (C,H,W / N,C,H,W),
    or PIL images (one or a list) -> float (N, C, H, W) in [-1, 1], fitted to an ImageField's channels and size."""
    if isinstance(images, Image.Image):  # any mode: grey stays grey, the rest becomes RGB
        images = np.array(images.convert("L" if images.mode in ("1", "L", "I", "I;16", "F") else "RGB"))
    if isinstance(images, (list, tuple)):
        if not images:
            raise UserError(f"no images given to {verb}")
        return torch.cat([as_images(im, field, verb) for im in images])
    if isinstance(images, np.ndarray):
        if images.dtype != np.uint8:
            raise UserError(f"numpy images must be uint8 (0..255), not {images.dtype}")
        arr = images
        if arr.ndim == 2:  # one grey image
            arr = arr[None, :, :, None]
        elif arr.ndim == 3:  # H×W×C when the last axis looks like channels, else N×H×W
            arr = arr[None] if arr.shape[-1] in (1, 3, 4) else arr[..., None]
        if arr.ndim != 4 or arr.shape[-1] not in (1, 3, 4):
            raise UserError(f"cannot read images of shape {images.shape}: give H×W, H×W×C, N×H×W or N×H×W×C")
        if arr.shape[1] * arr.shape[2] > untrusted.MAX_PIXELS:
            raise UserError(f"images of {arr.shape[2]}x{arr.shape[1]} pixels are too large (limit {untrusted.MAX_PIXELS:,} per image)")
        arr = np.ascontiguousarray(arr[..., :3])
        if not arr.flags.writeable:  # np.frombuffer, a memory map: torch would warn about sharing it
            arr = arr.copy()
        x = to_float(torch.from_numpy(arr).permute(0, 3, 1, 2))
    elif isinstance(images, torch.Tensor):
        x = images.unsqueeze(0) if images.dim() == 3 else images
        if x.dim() != 4:
            raise UserError(f"a tensor of images must be (C, H, W) or (N, C, H, W), got {tuple(images.shape)}")
        if x.shape[-1] * x.shape[-2] > untrusted.MAX_PIXELS:
            raise UserError(f"images of {x.shape[-1]}x{x.shape[-2]} pixels are too large (limit {untrusted.MAX_PIXELS:,} per image)")
        x = to_float(x) if x.dtype == torch.uint8 else x.float()
    else:
        raise UserError(f"cannot {verb} a {type(images).__name__}: give uint8 arrays, float tensors or PIL images")
    c = field.channels
    if x.shape[1] != c:  # match the field's channels (grey <-> RGB)
        if x.shape[1] == 1:
            x = x.expand(-1, c, -1, -1)
        elif c == 1:
            x = x[:, :3].mean(1, keepdim=True)
        else:
            raise UserError(f"images have {x.shape[1]} channels; this model takes {c}")
    if tuple(x.shape[2:]) != field.size:
        x = torch.nn.functional.interpolate(x, size=field.size, mode="bilinear", antialias=True, align_corners=False)
    return x.contiguous()


def check_count(n, name: str, limit: int = MAX_SAMPLES) -> None:
    if not isinstance(n, int) or isinstance(n, bool) or n < 1 or n > limit:
        raise UserError(f"{name} must be an integer between 1 and {limit:,}, got {n!r}")


def as_output(images: torch.Tensor, output_type: str):
    """Generated images (float, [-1, 1]) as the caller asked: 'pt', 'uint8' (tensor) or 'pil' (list)."""
    if output_type == "pt":
        return images
    if output_type == "uint8":
        return to_uint8(images)
    if output_type == "pil":
        return [to_pil(im) for im in to_uint8(images)]
    raise UserError(f"output_type must be 'pt', 'uint8' or 'pil', not {output_type!r}")


def to_pil(image_uint8: torch.Tensor) -> Image.Image:
    arr = image_uint8.permute(1, 2, 0).numpy()
    return Image.fromarray(arr[..., 0] if arr.shape[2] == 1 else arr)
