"""What users call: `condgan.load(path)` returns the object for the run's task.

    gen = condgan.load("runs/fmnist");   gen.sample(["sandal", "bag"], seed=0)       # ClassConditional
    tr = condgan.load("runs/edges");     tr.translate(edge_maps)                     # Translator
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
from .train import checkpoint as ckpt

MAX_SAMPLES = 1_000_000


class Pipeline:
    """Shared by every task: device, spec, the run's data config, save_pretrained."""

    task = ""
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
        """A shareable folder: condgan.json + generator.safetensors (safe to load, no code runs). Local data
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


PIPELINES = {p.task: p for p in (ClassConditional, Translator, Embedder, Exemplar)}
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
        x = to_float(torch.from_numpy(np.ascontiguousarray(arr[..., :3])).permute(0, 3, 1, 2))
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
