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

Who judges each label, and the shape measures, are in two_stage_judges.py; report.md in two_stage_markdown.py.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from ..data import to_uint8
from ..data.twolabel import grey_detail, load_two_label
from ..errors import UserError
from ..visual import save_sheet
from .metrics import fid
from .pictures import confusion_png
from .report import write_report
from .two_stage_judges import Judges, build_judges, image_silhouettes, intermediate_silhouettes, iou
from .two_stage_markdown import cross_png, render_markdown

SWAP_PER_LABEL = 20   # intermediates per label A (swap B) and noises per label B (swap A) in the swap tests
MAX_PICTURE_ROWS = 10


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


def _score(judges: Judges, x: torch.Tensor, m: torch.Tensor | None, la: torch.Tensor, lb: torch.Tensor,
           ka: int, kb: int) -> tuple[dict, dict]:
    """Every measure of one side (the pipeline's images, or the real floor): (numbers, cross-accuracy cells)."""
    pa, pb = judges.label_a(x), judges.label_b(x)
    ok_a, ok_b = pa == la, pb == lb
    target = dict(label_a_accuracy=ok_a.float().mean().item(), label_b_accuracy=ok_b.float().mean().item(),
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
    cross = {"label_a_accuracy": _cells(ok_a, la, lb, ka, kb), "label_b_accuracy": _cells(ok_b, la, lb, ka, kb),
             "confusion_a": _confusion(pa, la, ka)}
    target["per_label_a"] = [ok_a[la == i].float().mean().item() if (la == i).any() else None for i in range(ka)]
    target["per_label_b"] = [ok_b[lb == j].float().mean().item() if (lb == j).any() else None for j in range(kb)]
    return target, cross


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
    model, model_cross = _score(judges, images, masks, a, b, ka, kb)
    floor, floor_cross = _score(judges, test.images, test.masks, test.labels_a, test.labels_b, ka, kb)
    cross = {"model": model_cross, "floor": floor_cross}
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
