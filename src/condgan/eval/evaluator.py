"""The domain classifier whose features replace Inception for FID, KID and friends.

Inception weights cannot be downloaded here (nor behind many firewalls), and an
ImageNet network is a poor judge of 28x28 grayscale clothes anyway. So condgan
trains a compact CNN on the dataset itself: its top-1 prediction measures
whether a generated image obeys its label, and its 128-d penultimate layer is
the feature space for every distribution metric. It is trained once per
dataset (a few minutes on CPU), seeded, and cached with safetensors + JSON.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from ..progress import progress as tqdm

from ..data import ImageSet, load_dataset, resolve_class, to_float
from ..errors import DataError, UserError
from ..models.evaluator_net import FEATURE_DIM, EvaluatorNet

ARCH_VERSION = 1  # bump when EvaluatorNet changes: cached evaluators of other versions are retrained
DEFAULT_EPOCHS = 6
BUILTIN = ("fashion-mnist", "mnist")
SHIPPED = Path(__file__).parent / "shipped"  # evaluators shipped with the package, by cache key
MIN_IMAGE_SIZE = 4  # EvaluatorNet halves the image twice (two 2x2 max-pools): smaller images pool to nothing


@dataclass
class Evaluator:
    """A trained EvaluatorNet plus what it was trained on. Inputs are uint8 or [-1, 1] float images."""

    net: EvaluatorNet
    class_names: list[str]
    image_size: int
    channels: int
    info: dict  # test accuracy, per-class accuracy, dataset key, fingerprint, seed, epochs, ...
    path: Path | None = None

    @torch.inference_mode()
    def run(self, images: torch.Tensor, batch_size: int = 1000, progress: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(features (N, 128), logits (N, K)) for a batch of images, computed in chunks."""
        self._check_shape(images)
        self.net.eval()
        feats, logits = [], []
        chunks = range(0, len(images), batch_size)
        for i in tqdm(chunks, desc=progress, unit="batch", leave=False, disable=progress is None):
            x = images[i:i + batch_size]
            x = to_float(x) if x.dtype == torch.uint8 else x.float()
            f = self.net.features(x.contiguous(memory_format=torch.channels_last))
            feats.append(f)
            logits.append(self.net.head(f))
        if not feats:
            return torch.zeros(0, FEATURE_DIM), torch.zeros(0, len(self.class_names))
        return torch.cat(feats), torch.cat(logits)

    def class_map(self, class_names: list[str]) -> torch.Tensor:
        """Evaluator class index of each of a model's classes (a model may use a subset, in any order)."""
        try:
            return torch.tensor([resolve_class(c, self.class_names) for c in class_names], dtype=torch.int64)
        except DataError as e:
            raise UserError(f"the evaluator for {self.info.get('dataset')} cannot judge this model: {e}") from None

    def _check_shape(self, images: torch.Tensor) -> None:
        if images.dim() != 4 or images.shape[1] != self.channels or images.shape[-1] != self.image_size or images.shape[-2] != self.image_size:
            raise UserError(f"images of shape {tuple(images.shape[1:])} do not fit the evaluator, which expects "
                            f"({self.channels}, {self.image_size}, {self.image_size}); evaluate against the dataset the model was trained on")


# --------------------------------------------------------------------------- training

def _shift(x: torch.Tensor, max_shift: int, gen: torch.Generator) -> torch.Tensor:
    """Random whole-pixel translations (edge pixels repeated): the only augmentation that is
    label-safe for any dataset (flips would turn a '2' into something else)."""
    n, _, h, w = x.shape
    padded = F.pad(x, (max_shift,) * 4, mode="replicate")
    dy = torch.randint(0, 2 * max_shift + 1, (n,), generator=gen)
    dx = torch.randint(0, 2 * max_shift + 1, (n,), generator=gen)
    rows = (dy[:, None] + torch.arange(h)[None])[:, None, :, None].expand(n, x.shape[1], h, w + 2 * max_shift)
    out = padded.gather(2, rows)
    cols = (dx[:, None] + torch.arange(w)[None])[:, None, None, :].expand(n, x.shape[1], h, w)
    return out.gather(3, cols)


@torch.inference_mode()
def accuracy(net: EvaluatorNet, data: ImageSet, batch_size: int = 1000) -> tuple[float, list[float]]:
    """Overall and per-class top-1 accuracy."""
    net.eval()
    preds = torch.cat([net(to_float(data.images[i:i + batch_size])).argmax(1) for i in range(0, len(data), batch_size)])
    correct = (preds == data.labels).float()
    per_class = [correct[data.labels == c].mean().item() if (data.labels == c).any() else float("nan")
                 for c in range(data.num_classes)]
    return correct.mean().item(), per_class


def train_evaluator(dataset: ImageSet, test: ImageSet, epochs: int = DEFAULT_EPOCHS, seed: int = 0,
                    batch_size: int = 128, lr: float = 3e-3, max_shift: int = 2, progress: bool = True) -> Evaluator:
    """Train an evaluator on `dataset`, report accuracy on `test`. Same seed, same weights (on one machine)."""
    if dataset.class_names != test.class_names:
        raise DataError("train and test splits have different classes")
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    net = EvaluatorNet(dataset.channels, dataset.num_classes)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=5e-4)
    steps_per_epoch = math.ceil(len(dataset) / batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=max(1, epochs * steps_per_epoch), pct_start=0.2)
    started = time.time()
    # oneDNN's CPU convolution backward was 4x slower than the plain GEMM path on
    # the 2-core reference machine (AMD EPYC); tests check same seed -> same weights.
    mkldnn_was = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = False
    try:
        for epoch in range(epochs):
            net.train()
            order = torch.randperm(len(dataset), generator=gen)
            bar = tqdm(range(steps_per_epoch), desc=f"evaluator epoch {epoch + 1}/{epochs}", unit="step",
                       leave=False, disable=not progress)
            for step in bar:
                idx = order[step * batch_size:(step + 1) * batch_size]
                if len(idx) < 2:  # BatchNorm needs two samples
                    continue
                x = to_float(dataset.images[idx])
                if max_shift:
                    x = _shift(x, max_shift, gen)
                loss = F.cross_entropy(net(x), dataset.labels[idx], label_smoothing=0.05)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                if step % 50 == 0:
                    bar.set_postfix(loss=f"{loss.item():.3f}")
        test_acc, per_class = accuracy(net, test)
    finally:
        torch.backends.mkldnn.enabled = mkldnn_was
    info = {
        "arch_version": ARCH_VERSION, "dataset": dataset.name, "class_names": list(dataset.class_names),
        "image_size": dataset.image_size, "channels": dataset.channels, "test_accuracy": round(test_acc, 5),
        "test_accuracy_per_class": [round(a, 5) for a in per_class], "train_images": len(dataset),
        "test_images": len(test), "epochs": epochs, "seed": seed, "train_seconds": round(time.time() - started, 1),
        "torch": torch.__version__,
    }
    net.eval()
    return Evaluator(net, list(dataset.class_names), dataset.image_size, dataset.channels, info)


# --------------------------------------------------------------------------- saving and caching

def save_evaluator(ev: Evaluator, folder: Path) -> None:
    """Weights as safetensors (no pickle), everything else as readable JSON; written atomically."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / "evaluator.safetensors.tmp"
    save_file({k: v.contiguous() for k, v in ev.net.state_dict().items()}, str(tmp))
    os.replace(tmp, folder / "evaluator.safetensors")
    tmp = folder / "evaluator.json.tmp"
    tmp.write_text(json.dumps(ev.info, indent=2) + "\n")
    os.replace(tmp, folder / "evaluator.json")
    ev.path = folder


def load_evaluator(folder: Path) -> Evaluator:
    folder = Path(folder)
    try:
        info = json.loads((folder / "evaluator.json").read_text())
        net = EvaluatorNet(info["channels"], len(info["class_names"]))
        net.load_state_dict(load_file(str(folder / "evaluator.safetensors")))
    except (OSError, ValueError, KeyError, RuntimeError) as e:
        raise UserError(f"evaluator in {folder} is missing or damaged ({type(e).__name__}: {e}); "
                        f"retrain it with `condgan evaluator train --force`") from None
    net.eval()
    return Evaluator(net, info["class_names"], info["image_size"], info["channels"], info, folder)


def cache_root() -> Path:
    """$CONDGAN_CACHE/evaluators, default ~/.cache/condgan/evaluators."""
    return Path(os.environ.get("CONDGAN_CACHE") or Path.home() / ".cache" / "condgan").expanduser() / "evaluators"


def dataset_key(name: str, data_dir: str | None, image_size: int, channels: int) -> str:
    """Cache folder name: built-ins by name, folders by name + a hash of their absolute path.

    Classes are not part of the key: one evaluator trained on all classes
    serves every class subset (see Evaluator.class_map).
    """
    key = name.lower()
    if key not in BUILTIN:
        path = Path(data_dir or name).expanduser().resolve()
        slug = re.sub(r"[^a-z0-9]+", "-", path.name.lower()).strip("-") or "data"
        key = f"{slug}-{hashlib.sha1(str(path).encode()).hexdigest()[:8]}"
    return f"{key}-{image_size}px-{channels}ch"


def fingerprint(*sets: ImageSet) -> str:
    """A hash of the pixels and labels, so an evaluator is retrained when a folder dataset changes."""
    h = hashlib.sha1()
    for s in sets:
        h.update(s.images.numpy().tobytes())
        h.update(s.labels.numpy().tobytes())
        h.update("\0".join(s.class_names).encode())
    return h.hexdigest()[:16]


def check_image_size(size: int | None, what: str = "the images") -> None:
    """Refuse sizes the evaluator cannot take before any data is loaded or any evaluator trained
    (otherwise the failure comes from inside a convolution, minutes later)."""
    if size is not None and size < MIN_IMAGE_SIZE:
        raise UserError(f"{what} are {size}x{size} pixels; condgan's evaluator needs at least "
                        f"{MIN_IMAGE_SIZE}x{MIN_IMAGE_SIZE} (it halves the image twice). Evaluate larger images")


def load_splits(data_cfg: dict) -> tuple[ImageSet, ImageSet]:
    """Train and held-out test split of a run's dataset, with ALL its classes (subsets are mapped later)."""
    check_image_size(data_cfg.get("image_size"))
    cfg = {k: data_cfg.get(k) for k in ("name", "data_dir", "image_size", "channels", "image_column", "label_column")}
    cfg["name"] = cfg["name"] or "fashion-mnist"
    return load_dataset(**cfg, split="train"), load_dataset(**cfg, split="test")


def get_evaluator(data_cfg: dict, epochs: int | None = None, force: bool = False, seed: int = 0,
                  splits: tuple[ImageSet, ImageSet] | None = None, progress: bool = True, key: str | None = None) -> Evaluator:
    """The cached evaluator for a run's dataset, trained (once, with a message) if there is none yet.
    `key` names the cache folder when the splits are not the dataset itself (e.g. a dataset's intermediates)."""
    train, test = splits or load_splits(data_cfg)
    check_image_size(train.image_size, f"the images of {train.name}")
    key = key or dataset_key(data_cfg.get("name") or "fashion-mnist", data_cfg.get("data_dir"), train.image_size, train.channels)
    folder = cache_root() / key
    fp = fingerprint(train, test)
    shipped = SHIPPED / key
    if not force and not (folder / "evaluator.json").is_file() and (shipped / "evaluator.json").is_file():
        # Built-in datasets come with an evaluator trained by `condgan evaluator train`
        # (weights in the package); it is used only if it was trained on these exact pixels.
        ev = load_evaluator(shipped)
        if ev.info.get("arch_version") == ARCH_VERSION and ev.info.get("fingerprint") == fp:
            folder.mkdir(parents=True, exist_ok=True)
            for f in ("evaluator.json", "evaluator.safetensors"):
                shutil.copyfile(shipped / f, folder / f)
    if not force and (folder / "evaluator.json").is_file():
        ev = load_evaluator(folder)
        if ev.info.get("arch_version") == ARCH_VERSION and ev.info.get("fingerprint") == fp and \
                ev.info.get("class_names") == list(train.class_names):
            return ev
        print(f"condgan: the cached evaluator in {folder} is for an older network or different data; retraining it",
              file=sys.stderr)
    epochs = epochs or DEFAULT_EPOCHS
    print(f"condgan: training the evaluator for {train.name} ({len(train)} train / {len(test)} held-out images, "
          f"{train.image_size}px, {epochs} epochs); this happens once, its weights are cached in {folder}",
          file=sys.stderr)
    ev = train_evaluator(train, test, epochs=epochs, seed=seed, progress=progress)
    ev.info["fingerprint"] = fp
    ev.info["key"] = key
    if folder.exists():  # drop stale real-feature caches built with the old weights
        shutil.rmtree(folder)
    save_evaluator(ev, folder)
    print(f"condgan: evaluator test accuracy {ev.info['test_accuracy']:.2%} "
          f"({ev.info['train_seconds']:.0f} s); saved to {folder}", file=sys.stderr)
    return ev
