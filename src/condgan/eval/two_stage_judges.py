"""Who judges a two-stage pipeline's images (eval/two_stage.py), and how their shapes are compared.

Label A is judged by a category evaluator on the grey detail; label B by a colour readout when the labels
B are colours, else by an evaluator of label B; G1's intermediates by an evaluator trained on real
intermediates. Each evaluator is trained once and cached. The shape measures compare a final image's
silhouette with the intermediate it was drawn from.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import torch
from scipy import ndimage as ndi

from ..data import ImageSet
from ..data.derive import MASK_LEVEL, derive_source
from ..data.twolabel import BUILTIN, TwoLabelSet, grey_detail
from .evaluator import get_evaluator
from .metrics import get_reference
from .report import Context, _fmt, prepare

INTERMEDIATE_EPOCHS = 3  # the intermediates' evaluator: silhouettes are learnt quickly, and it is trained once
INTERMEDIATE_TRAIN_MAX = 20_000  # ... on the first 20,000 real train intermediates


def colour_readout(images: torch.Tensor, palette: torch.Tensor) -> torch.Tensor:
    """Nearest palette colour (index) of each uint8 (N, 3, H, W) image's garment: the brightness-weighted mean
    chromaticity (RGB / max RGB) of its pixels above the silhouette level. -1 for an image with no such pixel."""
    x = images.float() / 255.0
    value = x.amax(dim=1)                                   # (N, H, W)
    weight = value * (value > MASK_LEVEL / 255.0)
    chroma = x / value.clamp(min=1e-6)[:, None]
    mean = (chroma * weight[:, None]).sum(dim=(2, 3)) / weight.sum(dim=(1, 2)).clamp(min=1e-6)[:, None]
    ref = palette.float() / palette.float().amax(dim=1, keepdim=True).clamp(min=1)
    pred = torch.cdist(mean, ref).argmin(dim=1)
    return torch.where(weight.sum(dim=(1, 2)) > 0, pred, torch.full_like(pred, -1))


@dataclass
class Judge:
    """Predicts one label of images, in the pipeline's own label indices (-1: none of them)."""

    describe: str
    predict_fn: object
    info: dict

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return self.predict_fn(images)


def evaluator_judge(ctx: Context, transform=lambda x: x) -> Judge:
    def predict(images: torch.Tensor) -> torch.Tensor:
        _, logits = ctx.ev.run(transform(images))
        to_model = torch.full((logits.shape[1],), -1, dtype=torch.int64)
        to_model[ctx.class_map] = torch.arange(len(ctx.class_map))
        return to_model[logits.argmax(1)]

    return Judge(f"condgan evaluator {ctx.ev.info.get('key')} (test accuracy {_fmt(ctx.ev.info.get('test_accuracy'), 'pct')})",
                 predict, {"key": ctx.ev.info.get("key"), "test_accuracy": ctx.ev.info.get("test_accuracy"),
                           "path": str(ctx.ev.path) if ctx.ev.path else None})


def _own_context(key: str, train: ImageSet, test: ImageSet, epochs: int | None, progress: bool) -> Context:
    """An evaluator trained (once, cached under `key`) on these splits, and its real side."""
    ev = get_evaluator({"name": key}, epochs=epochs, splits=(train, test), progress=progress, key=key)
    class_map = ev.class_map(list(train.class_names))
    return Context(ev, get_reference(ev, train, test, progress), train, list(train.class_names), class_map)


def _cache_key(data: dict, what: str, sample: ImageSet) -> str:
    name = data["name"]
    if name.lower() in BUILTIN:
        base = name.lower()
    else:  # a manifest: its name and a hash of its absolute path
        path = Path(name).expanduser().resolve()
        base = f"{re.sub(r'[^a-z0-9]+', '-', path.stem.lower()).strip('-') or 'data'}-{hashlib.sha1(str(path).encode()).hexdigest()[:8]}"
    return f"{base}-{what}-{sample.image_size}px-{sample.channels}ch"


@dataclass
class Judges:
    label_a: Judge          # category, on the grey detail
    label_b: Judge          # colour (readout) or an evaluator of label B
    stage1: Judge           # category, on intermediates
    detail_ctx: Context     # features for FID of the final images
    mask_ctx: Context       # features for FID of the intermediates


def build_judges(ts, train: TwoLabelSet, test: TwoLabelSet, epochs: int | None, progress: bool) -> Judges:
    data = ts.data
    names_a = list(ts.label_a_names)
    if data["name"].lower() in BUILTIN:  # the garments' grey detail is Fashion-MNIST itself: its own evaluator
        detail_ctx = prepare({"name": "fashion-mnist", "data_dir": data.get("data_dir"), "image_size": None,
                              "channels": None}, names_a, progress)
    else:
        details = train.details()
        detail_ctx = _own_context(_cache_key(data, "detail", details), details, test.details(), epochs, progress)
    label_a = evaluator_judge(detail_ctx, grey_detail)
    palette = ts.label_b_rgb
    if palette is not None:
        label_b = Judge("colour readout: brightness-weighted mean chromaticity of the garment, nearest palette colour",
                        lambda images: colour_readout(images, palette), {"palette": palette.tolist()})
    else:
        b_train = ImageSet(train.images, train.labels_b, list(train.label_b_names), f"{train.name} (label B)")
        b_test = ImageSet(test.images, test.labels_b, list(test.label_b_names), f"{test.name} (label B)")
        label_b = evaluator_judge(_own_context(_cache_key(data, "label-b", b_train), b_train, b_test, epochs, progress))
    masks = train.intermediates()
    if len(masks) > INTERMEDIATE_TRAIN_MAX:  # plenty for silhouettes; keeps the one-off training to a minute or two
        masks = ImageSet(masks.images[:INTERMEDIATE_TRAIN_MAX], masks.labels[:INTERMEDIATE_TRAIN_MAX],
                         masks.class_names, masks.name)
    mask_ctx = _own_context(_cache_key(data, f"{train.intermediate}-intermediates", masks), masks,
                            test.intermediates(), epochs or INTERMEDIATE_EPOCHS, progress)
    return Judges(label_a, label_b, evaluator_judge(mask_ctx), detail_ctx, mask_ctx)


# --------------------------------------------------------------------------- shape consistency

def image_silhouettes(images: torch.Tensor) -> torch.Tensor:
    """bool (N, H, W): the garment shape of each uint8 colour image, by the rule that made the built-in masks."""
    return derive_source(grey_detail(images), "masks")[:, 0] > 0


def intermediate_silhouettes(masks: torch.Tensor) -> torch.Tensor:
    """bool (N, H, W): an intermediate's foreground (its bright half), holes filled (an edge map's inside counts)."""
    on = (masks.amax(dim=1) > 127).numpy()
    filled = ndi.binary_fill_holes(on, structure=ndi.generate_binary_structure(2, 1)[None])
    return torch.from_numpy(filled)


def iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-image intersection over union of two bool (N, H, W) stacks (1 when both are empty)."""
    inter, union = (a & b).flatten(1).sum(1).float(), (a | b).flatten(1).sum(1).float()
    return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))
