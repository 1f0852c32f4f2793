"""A pipeline: a trained network plus what using it needs (the field spec, the data it was trained on).

Each task declares its pipeline class (registry.Task.pipeline); `condgan.load` (api.py) reads a run,
checkpoint or export through the format owner (training/checkpoint.py) and `assemble()`s the pipeline
from the networks' recorded constructor arguments (never from today's config schema), via the closed
network registry, never by importing a name read from a file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..conditions import Spec
from ..data.imageset import to_float, to_uint8
from ..errors import CheckpointError, UserError
from ..models import rebuild
from .. import untrusted
from ..training import checkpoint as ckpt
from ..training.model_card import CardFacts, write_card
from .latents import truncate
from .. import registry

MAX_SAMPLES = 1_000_000


class Pipeline:
    """Shared by every task: device, spec, the run's data config, save_pretrained."""

    task = ""
    needs: tuple[str, ...] = ()  # fields the spec must have for this pipeline to work
    components = ("generator",)  # the networks it is made of, by component name in checkpoints and exports
    # what each component's network was built for, from the spec: component -> [(argument, field, what of the field)]
    spec_arguments: dict[str, list[tuple[str, str, str]]] = {}
    # its model card (training/model_card.py): Hub tags beyond condgan and the task, and the Hub's task category
    card_tags: tuple[str, ...] = ()
    pipeline_tag: str | None = None
    run_dir: Path | None = None  # the run it was loaded from (set by assemble), for the card's training facts

    def __init__(self, net: torch.nn.Module, spec: Spec, data: dict | None = None, device: str | torch.device = "cpu"):
        self.net = net.eval().requires_grad_(False).to(device)
        self.spec = spec
        self._data = dict(data or {})
        self.device = torch.device(device)

    @property
    def data(self) -> dict:
        """The run's data config, as keyword arguments for the task's data loader."""
        return {k: self._data.get(k) for k in ("name", "data_dir", "classes", "image_size", "channels", "image_column",
                                               "label_column")}

    def use_data(self, name: str | None, data_dir: str | None = None) -> None:
        """Point at the training data (to evaluate): exports of folder-trained models carry no paths."""
        if name:
            self._data["name"] = name
        if data_dir:
            self._data["data_dir"] = data_dir

    @property
    def z_dim(self) -> int:
        return self.net.arguments["z_dim"]

    def noise(self, n: int, seed: int | None = None, truncation: float | None = None) -> torch.Tensor:
        """(n, z_dim) latents from N(0, 1), the same for the same seed (None: a fresh draw). truncation T: every
        entry beyond ±T is drawn again from the same seeded stream until within (latents.truncate); off by default."""
        g = torch.Generator()
        if seed is None:
            g.seed()
        else:
            g.manual_seed(untrusted.seed(seed))
        return truncate(torch.randn(n, self.z_dim, generator=g), g, truncation)

    def save_pretrained(self, folder: str | Path, repo: str | None = None) -> Path:
        """A shareable folder: condgan.json + one .safetensors per component (safe to load, no code runs), and a
        model card (README.md; with the run's sample grid and config when it was loaded from a run). Local data
        paths stay behind: a built-in dataset is named, a folder only by its last part (as a hint). repo: the Hub
        repository (owner/name) the folder is for, named in the card's usage lines."""
        data = ckpt.portable_data(self._data)
        folder = ckpt.write_export(folder, self.task, self.spec.to_dict(), data, self.networks())
        title = registry.get(self.task).title if self.task in registry.names() else ""
        facts = CardFacts(self.task, type(self).__name__, title, self.card_tags,
                          self.pipeline_tag, self.usage(), data, repo)
        write_card(folder, facts, self.spec, self.run_dir)
        return folder

    def usage(self) -> str | None:
        """Python lines for the model card that use this model (as `model`), or None."""
        return None

    def networks(self) -> dict:
        """Component name -> network, as written by save_pretrained."""
        return {"generator": self.net}

    @classmethod
    def from_components(cls, nets: dict, spec: Spec, data: dict, device) -> "Pipeline":
        return cls(nets["generator"], spec, data, device)

    @classmethod
    def from_pretrained(cls, path: str | Path, device: str = "cpu") -> "Pipeline":
        """This pipeline from a run, checkpoint or export of its task (condgan.load takes any task's)."""
        model = ckpt.read_model(path)
        if model.task != cls.task:
            raise CheckpointError(f"{untrusted.printable(str(path), 200)} is a {untrusted.shown(model.task, 40)} model, "
                                  f"not a {cls.task} model; condgan.load reads any")
        return assemble(model, cls, device)


def assemble(model: ckpt.ModelFiles, pipeline: type[Pipeline], device: str | torch.device = "cpu") -> Pipeline:
    """A pipeline of class `pipeline` from what training/checkpoint.read_model found: spec, networks, weights."""
    device = untrusted.device(str(device) if isinstance(device, torch.device) else device)
    source, task = untrusted.printable(model.source, 200), model.task
    try:
        spec = Spec.from_dict(model.spec)
    except CheckpointError as e:
        raise CheckpointError(f"{source}: {e}") from None
    for field in pipeline.needs:
        if field not in spec:
            raise CheckpointError(f"{source}: a {task} model needs a {field!r} field in its spec, which is missing")
    nets = {}
    for component in pipeline.components:
        weights = model.weights.get(component)
        if not isinstance(weights, dict):
            raise CheckpointError(f"{source}: no {component} weights")
        untrusted.finite_weights(weights, source)
        net = rebuild(model.networks.get(component), source)
        check_spec_fits(pipeline, component, net.arguments, spec, source)
        misfit = untrusted.weights_misfit(net, weights)
        if misfit:
            raise CheckpointError(f"{source}: {component} weights do not fit the recorded {type(net).__name__} ({misfit}); "
                                  f"the file was damaged or edited: use another checkpoint, or export the run again")
        net.load_state_dict(weights)
        nets[component] = net
    made = pipeline.from_components(nets, spec, model.data, device)
    made.run_dir = Path(model.run) if model.run else None
    return made


def check_spec_fits(pipeline: type[Pipeline], component: str, arguments: dict, spec: Spec, source: str) -> None:
    """Refuse a model whose spec and network disagree (2 class names for a 3-class network would sample
    without a word, and the third class could never be asked for): the file was edited or mixed up.
    A class count of 0 means the network takes no label (a translator trained without model.use_label)."""
    for argument, field, what in pipeline.spec_arguments.get(component, []):
        built = arguments.get(argument)
        if field not in spec or not isinstance(built, int) or (what == "num_classes" and built == 0):
            continue
        declared = getattr(spec[field], what)
        if built != declared:
            says = {"num_classes": "has {} class names", "channels": "has {} channels", "height": "is {} px high",
                    "width": "is {} px wide", "dim": "has {} dimensions"}[what].format(declared)
            raise CheckpointError(f"{source}: inconsistent model: its spec says {field!r} {says}, but its {component} "
                                  f"network was built for {built} ({argument}={built}); the file was edited or mixed up: "
                                  f"use another checkpoint, or export the run again")


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


def read_user_image(path: str | Path, field, what: str) -> torch.Tensor:
    """One image file named on the command line, as uint8 (1, C, H, W) fitted to an ImageField; clear errors."""
    from ..data.paired import read_image

    path = Path(path)
    if not path.exists():
        raise UserError(f"{what} {path} does not exist")
    if not path.is_file():
        raise UserError(f"{what} {path} is not a file; give an image file")
    return torch.from_numpy(np.array(read_image(path, field.channels, field.size)))[None]


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
