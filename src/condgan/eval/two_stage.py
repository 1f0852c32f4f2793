"""Evaluation of a two-stage pipeline: proof that each stage obeys its own label (`condgan eval RUN`).

The pipeline makes n images of every (label A, label B) pair, and each is judged twice:

- label A by the category evaluator on the image's grey detail (the maximum over
  the channels; for the built-in coloured Fashion-MNIST this is the original
  grey garment, so the shipped Fashion-MNIST evaluator judges it);
- label B by a colour readout when label B names colours (the garment pixels'
  mean hue, nearest palette colour), else by an evaluator trained on the real
  images' label B.

Beside them: the cross-accuracy matrix (requested A x requested B -> both
accuracies per cell), the IoU of the final image's silhouette with G1's
intermediate (does G2 respect the shape it was given?), swap tests (one
intermediate under every label B: the colour must change and the shape stay;
one label B under every label A: the category must change and the colour
stay), stage 1 alone (label-A accuracy of G1's intermediates by an evaluator
trained on real intermediates) and FID of the final images' grey detail. Every
number stands beside its real floor: the same measurement of the held-out real
test split.
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from scipy import ndimage as ndi

from ..data import ImageSet, to_uint8
from ..data.derive import MASK_LEVEL, derive_source
from ..data.twolabel import BUILTIN, TwoLabelSet, grey_detail, load_two_label
from ..errors import UserError
from ..visual import save_sheet
from .evaluator import get_evaluator
from .metrics import fid, get_reference
from .pictures import confusion_png
from .report import Context, _fmt, prepare, write_report

SWAP_PER_LABEL = 20   # intermediates per label A (swap B) and noises per label B (swap A) in the swap tests
MAX_PICTURE_ROWS = 10
INTERMEDIATE_EPOCHS = 3  # the intermediates' evaluator: silhouettes are learnt quickly, and it is trained once
INTERMEDIATE_TRAIN_MAX = 20_000  # ... on the first 20,000 real train intermediates


# --------------------------------------------------------------------------- judges

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


# --------------------------------------------------------------------------- the evaluation

def _accuracy(pred: torch.Tensor, want: torch.Tensor) -> float | None:
    return (pred == want).float().mean().item() if len(want) else None


def _confusion(pred: torch.Tensor, want: torch.Tensor, k: int) -> list[list[int]]:
    """Counts of (requested, predicted) label; predictions outside the pipeline's labels in a last 'other' column."""
    m = torch.zeros(k, k + 1, dtype=torch.int64)
    m.index_put_((want, torch.where(pred >= 0, pred, k)), torch.ones_like(want), accumulate=True)
    return (m if m[:, k].any() else m[:, :k]).tolist()


def _cells(ok: torch.Tensor, a: torch.Tensor, b: torch.Tensor, ka: int, kb: int) -> list[list[float | None]]:
    """Mean of `ok` per (label A, label B) cell."""
    return [[ok[(a == i) & (b == j)].float().mean().item() if ((a == i) & (b == j)).any() else None
             for j in range(kb)] for i in range(ka)]


@torch.no_grad()
def swap_tests(ts, judges: Judges, out: Path, seed: int) -> tuple[dict, dict]:
    """Swap B: G1's intermediates (label A and noise fixed) under every label B. Swap A: label B and noise
    fixed, every label A. Returns (numbers, picture names)."""
    ka, kb = len(ts.label_a_names), len(ts.label_b_names)
    n = SWAP_PER_LABEL
    # swap B: n noises of each label A, each drawn under every label B
    z1, z2 = ts.noise2(ka * n, seed + 11)
    a = torch.arange(ka).repeat_interleave(n)
    drawn = [ts(z1, z2, a, torch.full_like(a, j)) for j in range(kb)]
    images_u8 = to_uint8(torch.stack([x for x, _ in drawn], dim=1))  # (N, kb, 3, H, W)
    masks_u8 = None if drawn[0][1] is None else to_uint8(drawn[0][1])  # the same intermediate for every B
    flat = images_u8.flatten(0, 1)
    pred_b, pred_a = judges.label_b(flat).view(-1, kb), judges.label_a(flat).view(-1, kb)
    wanted_b = torch.arange(kb).expand_as(pred_b)
    shapes = image_silhouettes(flat).view(-1, kb, *flat.shape[2:])
    across = torch.stack([iou(shapes[:, j], shapes[:, 0]) for j in range(1, kb)], dim=1)
    swap_b = {"label_b_accuracy": _accuracy(pred_b, wanted_b),
              "colour_changes": (pred_b == wanted_b).all(1).float().mean().item(),
              "iou_across_b": across.mean().item(),  # the same noise's silhouette under label B j vs the first
              "iou_mean": None, "iou_spread": None,
              "label_a_kept": (pred_a == a[:, None]).float().mean().item(), "intermediates": ka * n}
    if masks_u8 is not None:
        ious = iou(image_silhouettes(flat), intermediate_silhouettes(masks_u8).repeat_interleave(kb, 0)).view(-1, kb)
        swap_b.update(iou_mean=ious.mean().item(), iou_spread=(ious.amax(1) - ious.amin(1)).mean().item())
    # swap A: for each label B, n noises drawn under every label A
    z1, z2 = ts.noise2(kb * n, seed + 12)
    b = torch.arange(kb).repeat_interleave(n)
    per_a = [ts(z1, z2, torch.full_like(b, i), b) for i in range(ka)]
    images_a = to_uint8(torch.stack([x for x, _ in per_a], dim=1))  # (N, ka, 3, H, W)
    masks_a = None if per_a[0][1] is None else to_uint8(torch.stack([m for _, m in per_a], dim=1))
    flat_a = images_a.flatten(0, 1)
    pa, pb = judges.label_a(flat_a).view(-1, ka), judges.label_b(flat_a).view(-1, ka)
    wanted_a = torch.arange(ka).expand_as(pa)
    swap_a = {"label_a_accuracy": _accuracy(pa, wanted_a),
              "category_changes": (pa == wanted_a).all(1).float().mean().item(),
              "label_b_accuracy": _accuracy(pb, b[:, None].expand_as(pb)),
              "colour_kept": ((pb == pb[:, :1]).all(1) & (pb[:, 0] == b)).float().mean().item(), "noises": kb * n}

    # pictures: one noise per label A (rows) under every label B; one noise per label B (rows) under every label A
    rows = torch.arange(0, ka * n, n)[:MAX_PICTURE_ROWS]
    first = [masks_u8[rows]] if masks_u8 is not None else []
    swap_b_png = save_sheet(first + [images_u8[rows, j] for j in range(kb)],
                            (["intermediate"] if first else []) + list(ts.label_b_names), out / "swap_b.png",
                            row_names=[ts.label_a_names[i] for i in a[rows].tolist()],
                            title="swap B: label A and noise fixed per row (one intermediate), every label B")
    rows = torch.arange(0, kb * n, n)
    columns = []
    for i in range(ka):
        columns += ([masks_a[rows, i]] if masks_a is not None else []) + [images_a[rows, i]]
    names = [x for name in ts.label_a_names for x in ((("", name) if masks_a is not None else (name,)))]
    swap_a_png = save_sheet(columns, names, out / "swap_a.png", row_names=[ts.label_b_names[j] for j in b[rows].tolist()],
                            title="swap A: label B and noise fixed per row, every label A" +
                            (" (intermediate | image)" if masks_a is not None else ""))
    return {"swap_b": swap_b, "swap_a": swap_a}, {"swap_b": swap_b_png.name, "swap_a": swap_a_png.name}


def evaluate_two_stage(ts, out_dir: str | Path, n_per_pair: int = 100, seed: int = 0, progress: bool = True,
                       source: str = "run", evaluator_epochs: int | None = None) -> dict:
    """Score a TwoStage pipeline against the test split of its data; write report.json, report.md and pictures."""
    if n_per_pair < 2:
        raise UserError(f"--n-per-pair must be at least 2 (FID needs two images), not {n_per_pair}")
    started, timing = time.time(), {}
    train, test = load_two_label(split="train", **ts.data), load_two_label(split="test", **ts.data)
    if list(test.label_a_names) != ts.label_a_names or list(test.label_b_names) != ts.label_b_names:
        raise UserError(f"the data now has labels A {test.label_a_names} and B {test.label_b_names}, but the pipeline "
                        f"was trained on {ts.label_a_names} and {ts.label_b_names}")
    judges = build_judges(ts, train, test, evaluator_epochs, progress)
    timing["setup"] = time.time() - started

    t0 = time.time()
    images, masks, a, b = ts.sample_pairs(n_per_pair, seed, progress_bar=progress)
    timing["sampling"] = time.time() - t0
    t0 = time.time()
    ka, kb = len(ts.label_a_names), len(ts.label_b_names)
    model, floor = {}, {}
    cross = {}
    for name, x, m, la, lb in (("model", images, masks, a, b), ("floor", test.images, test.masks, test.labels_a, test.labels_b)):
        target = model if name == "model" else floor
        pa, pb = judges.label_a(x), judges.label_b(x)
        ok_a, ok_b = pa == la, pb == lb
        target.update(label_a_accuracy=ok_a.float().mean().item(), label_b_accuracy=ok_b.float().mean().item(),
                      both_accuracy=(ok_a & ok_b).float().mean().item(), iou=None, iou_below_085=None,
                      stage1_accuracy=None, stage1_fid=None)
        features, _ = judges.detail_ctx.ev.run(grey_detail(x))
        target["fid"] = fid(judges.detail_ctx.ref.train_features, features)
        if m is not None:  # a model with intermediates (a single generator given both labels has none)
            ious = iou(image_silhouettes(x), intermediate_silhouettes(m))
            mask_features, _ = judges.mask_ctx.ev.run(m)
            target.update(iou=ious.mean().item(), iou_below_085=(ious < 0.85).float().mean().item(),
                          stage1_accuracy=_accuracy(judges.stage1(m), la),
                          stage1_fid=fid(judges.mask_ctx.ref.train_features, mask_features))
        cross[name] = {"label_a_accuracy": _cells(ok_a, la, lb, ka, kb), "label_b_accuracy": _cells(ok_b, la, lb, ka, kb),
                       "confusion_a": _confusion(pa, la, ka)}
        target["per_label_a"] = [ok_a[la == i].float().mean().item() if (la == i).any() else None for i in range(ka)]
        target["per_label_b"] = [ok_b[lb == j].float().mean().item() if (lb == j).any() else None for j in range(kb)]
    timing["scoring"] = time.time() - t0

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    swaps, pictures = swap_tests(ts, judges, out, seed)
    timing["swap_tests"] = time.time() - t0
    pictures["grid"] = ts.save_grid(out / "grid.png", seed=seed).name
    pictures["confusion_a"] = confusion_png(cross["model"]["confusion_a"], ts.label_a_names, out / "confusion_a.png",
                                            "final images: requested label A vs evaluator (grey detail)").name
    pictures["cross"] = cross_png(cross["model"], ts.label_a_names, ts.label_b_names, out / "cross_accuracy.png").name
    timing["total"] = time.time() - started
    report = {
        "kind": "two-stage", "source": source, "dataset": ts.data["name"], "label_a_names": ts.label_a_names,
        "label_b_names": ts.label_b_names, "label_b_rgb": ts.palette_or_mean_colours().tolist(),
        "judges": {"label_a": judges.label_a.describe, "label_b": judges.label_b.describe, "stage1": judges.stage1.describe,
                   "label_a_info": judges.label_a.info, "stage1_info": judges.stage1.info},
        "settings": {"seed": seed, "n_per_pair": n_per_pair, "n_images": len(a), "swap_per_label": SWAP_PER_LABEL,
                     "floor": f"the real test split ({len(test)} images)", "fid_reference": "real train split, grey detail"},
        "model": {k: v for k, v in model.items() if not k.startswith("per_")},
        "real_floor": {k: v for k, v in floor.items() if not k.startswith("per_")},
        "per_label_a": [{"label_a": n, "accuracy": model["per_label_a"][i], "floor": floor["per_label_a"][i]}
                        for i, n in enumerate(ts.label_a_names)],
        "per_label_b": [{"label_b": n, "accuracy": model["per_label_b"][j], "floor": floor["per_label_b"][j]}
                        for j, n in enumerate(ts.label_b_names)],
        "cross": cross,
        "swap_tests": swaps,
        "pictures": pictures,
        "timing_s": {k: round(v, 2) for k, v in timing.items()},
    }
    return write_report(report, out, render_markdown, progress)


def cross_png(cross: dict, names_a: list[str], names_b: list[str], path: Path) -> Path:
    """Two heat maps side by side: label-A and label-B accuracy for each requested (A, B) pair."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(2.5 + 0.9 * len(names_b), 1.5 + 0.4 * len(names_a)), dpi=100)
    FigureCanvasAgg(fig)
    for k, (key, title) in enumerate((("label_a_accuracy", "label-A accuracy"), ("label_b_accuracy", "label-B accuracy"))):
        ax = fig.add_subplot(1, 2, k + 1)
        m = torch.tensor([[float("nan") if v is None else v for v in row] for row in cross[key]])
        ax.imshow(m.numpy(), cmap="Blues", vmin=0, vmax=1)
        ax.set_xticks(range(len(names_b)), names_b, rotation=45, ha="right", fontsize=8)
        ax.set_yticks(range(len(names_a)), names_a if k == 0 else [""] * len(names_a), fontsize=8)
        ax.set_title(title, fontsize=9)
        for i in range(m.shape[0]):
            for j in range(m.shape[1]):
                if m[i, j] == m[i, j]:
                    ax.text(j, i, f"{100 * m[i, j]:.0f}", ha="center", va="center", fontsize=6,
                            color="white" if m[i, j] > 0.5 else "black")
    fig.suptitle("requested label A (rows) x label B (columns): % of images showing each label", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    return path


class JointClasses:
    """A single class-conditional generator given both labels at once (one class per (A, B) pair, e.g.
    'sandal red': `condgan train --data fashion-mnist-colours`), seen as a pipeline without intermediates so
    that it is scored with the same measures as the two-stage one (benchmarks/two_stage.py)."""

    def __init__(self, gen):
        self.gen = gen
        d = gen.data
        self.data = {"name": d["name"], "data_dir": d.get("data_dir"), "classes": None, "image_size": None}
        labels = load_two_label(split="test", **self.data)
        self.label_a_names, self.label_b_names = list(labels.label_a_names), list(labels.label_b_names)
        if gen.class_names != labels.joint_classes().class_names:
            raise UserError(f"{d['name']}: the generator's classes are not every (label A, label B) pair")
        self.label_b_rgb = labels.palette

    def palette_or_mean_colours(self) -> torch.Tensor:
        return self.label_b_rgb

    def noise2(self, n: int, seed: int | None = None):
        return self.gen.noise(n, seed), torch.zeros(n, 0)

    @torch.no_grad()
    def __call__(self, z1, z2, labels_a, labels_b):
        return self.gen(z1, torch.as_tensor(labels_a) * len(self.label_b_names) + torch.as_tensor(labels_b)), None

    def sample_pairs(self, n_per_pair: int, seed: int = 0, progress_bar: bool = False):
        ka, kb = len(self.label_a_names), len(self.label_b_names)
        a = torch.arange(ka).repeat_interleave(kb * n_per_pair)
        b = torch.arange(kb).repeat_interleave(n_per_pair).repeat(ka)
        z, _ = self.noise2(len(a), seed)
        images = torch.cat([to_uint8(self(z[i:i + 500], None, a[i:i + 500], b[i:i + 500])[0]) for i in range(0, len(a), 500)])
        return images, None, a, b

    def save_grid(self, path: Path, seed: int = 0) -> Path:
        ka, kb = len(self.label_a_names), len(self.label_b_names)
        a, b = torch.arange(ka).repeat_interleave(kb), torch.arange(kb).repeat(ka)
        images, _ = self(self.noise2(len(a), seed)[0], None, a, b)
        columns = [images.view(ka, kb, *images.shape[1:])[:, j] for j in range(kb)]
        return save_sheet(columns, self.label_b_names, Path(path), row_names=self.label_a_names,
                          title="rows: label A, columns: label B (one generator, joint classes)")


# --------------------------------------------------------------------------- markdown

SUMMARY_ROWS = [  # key, label, how to read it, format
    ("label_a_accuracy", "label-A accuracy (category of the final image)", "higher", "pct"),
    ("label_b_accuracy", "label-B accuracy (colour of the final image)", "higher", "pct"),
    ("both_accuracy", "both labels right", "higher", "pct"),
    ("iou", "silhouette IoU, final image vs its intermediate", "higher; 1 = G2 kept the shape exactly", "num"),
    ("iou_below_085", "images with IoU below 0.85", "lower", "pct"),
    ("stage1_accuracy", "stage 1: label-A accuracy of G1's intermediates", "higher", "pct"),
    ("fid", "FID of the final images (grey detail, evaluator features)", "lower", "num"),
    ("stage1_fid", "FID of the intermediates (intermediates' evaluator features)", "lower", "num"),
]


def render_markdown(r: dict) -> str:
    m, f, sw = r["model"], r["real_floor"], r["swap_tests"]
    p = r["pictures"]
    lines = [
        f"# condgan two-stage evaluation: {r['source']}", "",
        f"{r['settings']['n_images']} images of **{r['dataset']}**: {r['settings']['n_per_pair']} for each of "
        f"{len(r['label_a_names'])} labels A x {len(r['label_b_names'])} labels B. The **real floor** measures "
        f"{r['settings']['floor']} the same way: the best a perfect pipeline could expect.", "",
        f"- label A is judged by {r['judges']['label_a']} on the grey detail (maximum over the channels);",
        f"- label B by {r['judges']['label_b']};",
        f"- G1's intermediates by {r['judges']['stage1']}, trained on real intermediates.", "",
        "| metric | model | real floor | how to read |", "|---|---:|---:|---|",
    ]
    for key, label, note, kind in SUMMARY_ROWS:
        lines.append(f"| {label} | {_fmt(m.get(key), kind)} | {_fmt(f.get(key), kind)} | {note} |")
    b, a = sw["swap_b"], sw["swap_a"]
    lines += [
        "", "## Swap tests", "",
        f"**Swap B** — {b['intermediates']} intermediates from G1, each drawn by G2 under every label B with the same noise: "
        "the colour must follow label B while the shape and category stay.", "",
        "| measure | value | should be |", "|---|---:|---|",
        f"| label-B accuracy under the swap | {_fmt(b['label_b_accuracy'], 'pct')} | high: the colour changes |",
        f"| intermediates whose every colour came out right | {_fmt(b['colour_changes'], 'pct')} | high |",
        f"| silhouette IoU with the intermediate | {_fmt(b['iou_mean'])} | high: the shape stays |",
        f"| IoU spread across labels B (max - min, mean) | {_fmt(b['iou_spread'])} | near 0 |",
        f"| silhouette IoU between the images of one noise under different labels B | {_fmt(b.get('iou_across_b'))} | high: the shape stays |",
        f"| label-A accuracy under the swap | {_fmt(b['label_a_kept'], 'pct')} | high: the category stays |", "",
        f"![swap B]({p['swap_b']})", "",
        f"**Swap A** — for each label B, {a['noises'] // max(1, len(r['label_b_names']))} noises drawn under every label A: "
        "the category must follow label A while the colour stays.", "",
        "| measure | value | should be |", "|---|---:|---|",
        f"| label-A accuracy under the swap | {_fmt(a['label_a_accuracy'], 'pct')} | high: the category changes |",
        f"| noises whose every category came out right | {_fmt(a['category_changes'], 'pct')} | high |",
        f"| label-B accuracy under the swap | {_fmt(a['label_b_accuracy'], 'pct')} | high: the colour stays |",
        f"| noises whose colour stayed the requested one for every label A | {_fmt(a['colour_kept'], 'pct')} | high |", "",
        f"![swap A]({p['swap_a']})", "",
        "## Per label", "",
        "| label A | accuracy | floor |", "|---|---:|---:|",
        *[f"| {row['label_a']} | {_fmt(row['accuracy'], 'pct')} | {_fmt(row['floor'], 'pct')} |" for row in r["per_label_a"]],
        "", "| label B | accuracy | floor |", "|---|---:|---:|",
        *[f"| {row['label_b']} | {_fmt(row['accuracy'], 'pct')} | {_fmt(row['floor'], 'pct')} |" for row in r["per_label_b"]],
        "", "## Cross-accuracy", "",
        "Requested label A (rows) x requested label B (columns): the share of images whose category (left) and colour "
        "(right) came out as requested; report.json has the real floor of every cell (`cross.floor`).", "",
        f"![cross accuracy]({p['cross']})", "",
        "| A \\ B | " + " | ".join(r["label_b_names"]) + " |", "|---|" + "---:|" * len(r["label_b_names"]),
    ]
    cm = r["cross"]["model"]
    for i, name in enumerate(r["label_a_names"]):
        cells = [f"{_fmt(cm['label_a_accuracy'][i][j], 'pct')} / {_fmt(cm['label_b_accuracy'][i][j], 'pct')}"
                 for j in range(len(r["label_b_names"]))]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "(each cell: label-A accuracy / label-B accuracy)", "",
              "## Pictures", "",
              "**Grid** — rows: label A, columns: label B, each image with G1's intermediate on its left.", "",
              f"![grid]({p['grid']})", "",
              "**Category confusion of the final images** — rows: requested label A; columns: the evaluator's verdict.", "",
              f"![confusion]({p['confusion_a']})", "",
              "## Notes", "",
              "- IoU compares the final image's silhouette (grey detail above the mask level, holes filled, specks "
              "dropped: the rule that made the built-in masks) with the intermediate's foreground (its bright half, "
              "holes filled). For the built-in data the floor is 1 by construction.",
              "- FID is computed on the grey detail in the category evaluator's feature space against the real train "
              "split; colour is measured by label-B accuracy instead.",
              f"- Timing (s): {', '.join(f'{k} {v}' for k, v in r['timing_s'].items())}.", ""]
    return "\n".join(lines)
