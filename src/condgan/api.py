"""Python API: `gen = condgan.load("runs/x"); gen.sample(["sandal", "bag"], seed=0)`.

A `Generator` is the EMA generator plus everything needed to use it (class
names, image shape, the data config it was trained on). It loads from a run
directory, a checkpoint file, or a folder written by `save_pretrained`, and
never unpickles arbitrary objects.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image

from .config import from_dict
from .data.imageset import resolve_class, to_uint8
from .errors import CheckpointError, UserError
from .models import build_generator
from .train import checkpoint as ckpt

PRETRAINED_WEIGHTS = "generator.safetensors"
PRETRAINED_CONFIG = "generator.json"
MAX_SAMPLES = 1_000_000


class Generator:
    def __init__(self, net: torch.nn.Module, config: dict, class_names: list[str], device: str | torch.device = "cpu"):
        self.net = net.eval().requires_grad_(False).to(device)
        self.config = config
        self.class_names = list(class_names)
        self.device = torch.device(device)

    # ----- facts about the model ----------------------------------------------------------
    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def z_dim(self) -> int:
        return self.config["model"]["z_dim"]

    @property
    def channels(self) -> int:
        return self.config["data"]["channels"]

    @property
    def image_size(self) -> int:
        return self.config["data"]["image_size"]

    @property
    def data(self) -> dict:
        """The run's data config, as keyword arguments for `condgan.data.load_dataset`."""
        d = self.config["data"]
        return {k: d[k] for k in ("name", "data_dir", "classes", "image_size", "channels")}

    # ----- sampling -----------------------------------------------------------------------
    def noise(self, n: int, seed: int | None = None) -> torch.Tensor:
        g = torch.Generator()
        if seed is None:
            g.seed()
        else:
            g.manual_seed(seed)
        return torch.randn(n, self.z_dim, generator=g)

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
        images = self(self.noise(len(ids), seed), ids)
        if output_type == "pt":
            return images
        if output_type == "uint8":
            return to_uint8(images)
        if output_type == "pil":
            return [to_pil(im) for im in to_uint8(images)]
        raise UserError(f"output_type must be 'pt', 'uint8' or 'pil', not {output_type!r}")

    def sample_per_class(self, n_per_class: int, seed: int = 0, batch_size: int = 500,
                         progress: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 images (N, C, H, W) and int64 labels: `n_per_class` of every class."""
        from tqdm import tqdm

        check_count(n_per_class, "n_per_class")
        labels = torch.arange(self.num_classes).repeat_interleave(n_per_class)
        z = self.noise(len(labels), seed)
        chunks = []
        for i in tqdm(range(0, len(labels), batch_size), desc="sampling", unit="batch", disable=not progress):
            chunks.append(to_uint8(self(z[i:i + batch_size], labels[i:i + batch_size], batch_size)))
        return torch.cat(chunks), labels

    def save_npz(self, path: str | Path, n_per_class: int, seed: int = 0, progress: bool = False) -> Path:
        """Write samples for external evaluation: images uint8 N×H×W[×C], labels, class_names."""
        images, labels = self.sample_per_class(n_per_class, seed, progress=progress)
        arr = images.permute(0, 2, 3, 1).numpy()
        if arr.shape[-1] == 1:
            arr = arr[..., 0]
        path = Path(path)
        np.savez_compressed(path, images=arr, labels=labels.numpy(), class_names=np.array(self.class_names))
        return path

    # ----- persistence --------------------------------------------------------------------
    def save_pretrained(self, folder: str | Path) -> Path:
        """Weights as safetensors + a JSON config: shareable and safe to load."""
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        state = {k: v.contiguous() for k, v in self.net.state_dict().items()}
        save_file(state, str(folder / PRETRAINED_WEIGHTS))
        (folder / PRETRAINED_CONFIG).write_text(json.dumps({"config": self.config, "class_names": self.class_names}, indent=2))
        return folder

    @classmethod
    def from_pretrained(cls, path: str | Path, device: str = "cpu") -> "Generator":
        return load(path, device)


def load(path: str | Path, device: str = "cpu") -> Generator:
    """Load a generator from a run directory, a checkpoint (.pt), or a save_pretrained folder."""
    path = Path(path)
    if (path / PRETRAINED_WEIGHTS).is_file():
        return _load_pretrained(path, device)
    if path.is_dir():
        state, _ = ckpt.load_latest(path / "checkpoints" if (path / "checkpoints").is_dir() else path)
    elif path.is_file():
        state = ckpt.safe_load(path)
    else:
        raise CheckpointError(f"{path} does not exist (give a run directory, a checkpoint file, or a save_pretrained folder)")
    return _build(state["config"], state["class_names"], state["gan"]["G_ema"], device, str(path))


def _load_pretrained(folder: Path, device: str) -> Generator:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        meta = json.loads((folder / PRETRAINED_CONFIG).read_text())
        weights = load_file(str(folder / PRETRAINED_WEIGHTS))
    except (OSError, json.JSONDecodeError, SafetensorError) as e:
        raise CheckpointError(f"cannot load {folder}: {e}") from None
    return _build(meta["config"], meta["class_names"], weights, device, str(folder))


def _build(config: dict, class_names: list[str], weights: dict, device: str, source: str) -> Generator:
    cfg = from_dict(config)
    net = build_generator(cfg.model.arch, len(class_names), cfg.model.z_dim, cfg.data.channels,
                          cfg.data.image_size, cfg.model.g_width)
    try:
        net.load_state_dict(weights)
    except RuntimeError as e:
        raise CheckpointError(f"{source}: weights do not fit a {cfg.model.arch!r} generator ({str(e).splitlines()[0][:160]})") from None
    return Generator(net, cfg.to_dict(), class_names, device)


def check_count(n, name: str) -> None:
    if not isinstance(n, int) or isinstance(n, bool) or n < 1 or n > MAX_SAMPLES:
        raise UserError(f"{name} must be an integer between 1 and {MAX_SAMPLES:,}, got {n!r}")


def to_pil(image_uint8: torch.Tensor) -> Image.Image:
    arr = image_uint8.permute(1, 2, 0).numpy()
    return Image.fromarray(arr[..., 0] if arr.shape[2] == 1 else arr)
