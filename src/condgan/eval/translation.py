"""Evaluation of paired image-to-image translation (source image -> target image).

A translator is judged on the held-out test pairs, each number beside its real
floor: the same metric for the real test targets themselves. Pixel metrics
(L1, PSNR, SSIM) say how close each output is to *its* target; they reward a
blurred average, so sharpness (output vs real target) is reported too. When the
targets belong to a class-labelled dataset with a condgan evaluator, the
outputs are also scored the way generated images are: FID/KID/PRDC against the
real train split, and whether the evaluator still sees the pair's class.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import torch
from torchmetrics.image import PeakSignalNoiseRatio, StructuralSimilarityIndexMeasure

from ..data import to_uint8
from ..data.paired import PairSet
from ..errors import UserError
from ..progress import progress as tqdm
from .evaluator import load_splits
from .metrics import K_NEAREST, PRDC_MAX, _subsample, conditioning, fid, kid, prdc
from ..visual import save_sheet
from .pictures import confusion_png
from .report import FID_ROWS, PRDC_ROWS, Context, _fmt, prepare, write_report

CHUNK = 256  # images per step of the pixel metrics: bounds memory for large colour images


def _unit(images: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] or float [-1, 1] -> float [0, 1]."""
    if images.dtype == torch.uint8:
        return images.float().div_(255.0)
    return images.float().add(1.0).div_(2.0).clamp_(0.0, 1.0)


def _check_pair_shapes(outputs: torch.Tensor, targets: torch.Tensor) -> None:
    if outputs.shape != targets.shape:
        raise UserError(f"translator outputs of shape {tuple(outputs.shape)} do not match the targets' shape "
                        f"{tuple(targets.shape)}; it must return one image per source with the targets' "
                        f"channels and size")


def _gradient_magnitude(x: torch.Tensor) -> torch.Tensor:
    """Per-image mean finite-difference gradient magnitude of [0, 1] images."""
    dx = x[..., :-1, 1:] - x[..., :-1, :-1]
    dy = x[..., 1:, :-1] - x[..., :-1, :-1]
    return (dx.square() + dy.square()).sqrt().flatten(1).mean(1)


def sharpness(images: torch.Tensor) -> float:
    """Mean image-gradient magnitude on the [0, 1] scale (uint8 or [-1, 1] float in).

    An L1-trained translator hedges with blur, which a classifier barely notices;
    compared with the real targets' sharpness it shows up at once.
    """
    if len(images) == 0:
        raise UserError("sharpness of an empty set of images is undefined")
    if images.shape[-1] < 2 or images.shape[-2] < 2:
        raise UserError(f"images of shape {tuple(images.shape[1:])} are too small for a gradient")
    total = sum(_gradient_magnitude(_unit(images[i:i + CHUNK])).sum().item() for i in range(0, len(images), CHUNK))
    return total / len(images)


def _ssim_kernel(h: int, w: int) -> int:
    """The usual 11-pixel Gaussian window, shrunk (kept odd) for images smaller than that."""
    k = min(11, h, w)
    return k if k % 2 else k - 1


def pixel_metrics(outputs: torch.Tensor, targets: torch.Tensor) -> dict:
    """L1 (mean abs. error on [0, 1]), PSNR (dB, of the pooled squared error; inf for identical
    images) and SSIM (mean over images) of outputs vs targets, uint8 or [-1, 1] float."""
    _check_pair_shapes(outputs, targets)
    if len(outputs) == 0:
        raise UserError("no images to compare")
    psnr = PeakSignalNoiseRatio(data_range=1.0)
    ssim = StructuralSimilarityIndexMeasure(data_range=1.0, kernel_size=_ssim_kernel(*targets.shape[-2:]))
    abs_error = 0.0
    for i in range(0, len(outputs), CHUNK):
        o, t = _unit(outputs[i:i + CHUNK]), _unit(targets[i:i + CHUNK])
        abs_error += (o - t).abs().sum().item()
        psnr.update(o, t)
        ssim.update(o, t)
    return {"l1": abs_error / outputs.numel(), "psnr": psnr.compute().item(), "ssim": ssim.compute().item()}


@torch.no_grad()
def _translate_all(translate: Callable, sources: torch.Tensor, targets: torch.Tensor, batch_size: int,
                   progress: bool) -> torch.Tensor:
    """Outputs of the translator for every source, kept as the uint8 images they would be saved as."""
    out = []
    for i in tqdm(range(0, len(sources), batch_size), desc="translating", unit="batch", leave=False,
                  disable=not progress):
        y = translate(sources[i:i + batch_size])
        if not isinstance(y, torch.Tensor):
            raise UserError(f"the translator must return a tensor, not {type(y).__name__}")
        y = y.detach().cpu()
        _check_pair_shapes(y, targets[i:i + batch_size])
        if y.dtype != torch.uint8 and not torch.isfinite(y).all():
            raise UserError(f"the translator returned NaN or infinite values for pairs {i}..{i + len(y) - 1}")
        out.append(y if y.dtype == torch.uint8 else to_uint8(y))
    return torch.cat(out)


def _image_metrics(outputs: torch.Tensor, targets: torch.Tensor) -> dict:
    """Pixel metrics and sharpness of one set of outputs, with the real floor of each."""
    model = pixel_metrics(outputs, targets)
    real_sharpness = sharpness(targets)
    model["sharpness"] = sharpness(outputs)
    model["sharpness_ratio"] = model["sharpness"] / real_sharpness if real_sharpness > 0 else None
    # the targets compared with themselves: exact by definition, so not recomputed
    floor = {"l1": 0.0, "psnr": None, "ssim": 1.0, "sharpness": real_sharpness,
             "sharpness_ratio": 1.0 if real_sharpness > 0 else None}
    return model, floor


def _judge(ctx: Context, images: torch.Tensor, labels: torch.Tensor | None, seed: int,
           progress: str | None) -> tuple[dict, dict | None]:
    """Evaluator-space metrics of one image set vs the real train split (as report.compute_metrics,
    less what only makes sense for a generator: diversity, memorisation, per-class FID)."""
    features, logits = ctx.ev.run(images, progress=progress)
    # k-NN metrics are biased unless both sets have the same size: cut the real side to this one's
    n = min(len(features), len(ctx.ref.prdc_features), PRDC_MAX)
    kid_value = kid(ctx.ref.train_features, features, seed=seed)
    scores = {"fid": fid(ctx.ref.train_features, features),
              "kid": kid_value[0] if kid_value else None,
              "kid_std": kid_value[1] if kid_value else None,
              **prdc(ctx.ref.prdc_features[:n], features[_subsample(len(features), n, seed)])}
    cond = conditioning(logits, labels, ctx.class_map) if labels is not None else None
    if cond is not None:
        scores["class_accuracy"] = cond["accuracy"]
    return scores, cond


def _class_names(test: PairSet, evaluator_data: dict) -> list[str]:
    """The classes the evaluator's real side is restricted to: the pairs' own, if labelled."""
    if test.labels is not None and test.class_names:
        return list(test.class_names)
    if evaluator_data.get("classes"):
        return list(evaluator_data["classes"])
    return list(load_splits(evaluator_data)[0].class_names)


def _pairs_to_score(test: PairSet, max_pairs: int | None, batch_size: int) -> int:
    """How many of the test pairs are scored (the first max_pairs, or all); bad settings are refused."""
    if max_pairs is not None and max_pairs < 1:
        raise UserError(f"max_pairs must be at least 1, not {max_pairs}")
    if batch_size < 1:
        raise UserError(f"batch_size must be at least 1, not {batch_size}")
    n = len(test) if max_pairs is None else min(max_pairs, len(test))
    if n == 0:
        raise UserError(f"{test.name}: no test pairs to evaluate")
    return n


def _judge_targets(evaluator_data: dict | None, test: PairSet, targets: torch.Tensor, labels: torch.Tensor | None,
                   names: list[str] | None, seed: int, progress: bool,
                   timing: dict) -> tuple[Context | None, list[str] | None, dict, dict | None]:
    """The evaluator (None without evaluator_data), the class names, and the real targets judged by it:
    (ctx, names, the floor's evaluator metrics, the floor's conditioning). Adds the time taken to timing."""
    ctx, floor_cond = None, None
    judged_floor = {}
    if evaluator_data is not None:
        t0 = time.time()
        ctx = prepare(evaluator_data, _class_names(test, evaluator_data), progress)
        timing["setup"] = time.time() - t0
        names = names or (ctx.class_names if labels is not None else None)
    if labels is not None and names and (labels.min() < 0 or labels.max() >= len(names)):
        raise UserError(f"{test.name}: pair labels must lie in 0..{len(names) - 1} ({len(names)} classes)")
    if ctx is not None:
        t0 = time.time()
        # the real targets first: a size or channel mismatch with the evaluator stops here, before translating
        judged_floor, floor_cond = _judge(ctx, targets, labels, seed, "real target features" if progress else None)
        timing["setup"] += time.time() - t0
    return ctx, names, judged_floor, floor_cond


def _pictures(out: Path, test: PairSet, outputs: torch.Tensor, names: list[str] | None, by_class: bool,
              cond: dict | None) -> dict:
    """The sheet of pairs (source | output | target) and, when the evaluator judged classes, the confusion matrix."""
    n = len(outputs)
    sources, targets = test.sources[:n], test.targets[:n]
    # evenly spaced pairs, so a test set sorted by class shows more than its first class
    shown = torch.linspace(0, n - 1, min(16, n)).round().long().unique()
    row_names = [names[int(test.labels[i])] if by_class else test.names[i] for i in shown.tolist()]
    pictures = {"sheet": save_sheet([sources[shown], outputs[shown], targets[shown]], ["source", "output", "target"],
                                    out / "translation.png", title=f"{len(shown)} of {n} test pairs",
                                    row_names=row_names).name}
    if cond is not None:
        pictures["confusion"] = confusion_png(cond["confusion"], names, out / "confusion.png",
                                              "outputs: pair's label vs evaluator verdict").name
    return pictures


def evaluate_translation(translate: Callable[[torch.Tensor], torch.Tensor], test: PairSet, out_dir: str | Path, *,
                         evaluator_data: dict | None = None, seed: int = 0, progress: bool = True,
                         source: str = "run", batch_size: int = 256, max_pairs: int | None = None) -> dict:
    """Score a translator on test pairs; write report.json, report.md and pictures to out_dir.

    translate maps uint8 sources (n, Cs, H, W) to float outputs (n, Ct, H, W) in [-1, 1]
    (the caller fixes its seeds). evaluator_data (name, data_dir, classes, image_size,
    channels) names the class-labelled dataset whose evaluator judges the targets' domain;
    without it only pixel metrics and sharpness are reported.
    """
    started = time.time()
    n = _pairs_to_score(test, max_pairs, batch_size)
    sources, targets = test.sources[:n], test.targets[:n]
    labels = test.labels[:n] if test.labels is not None else None
    names = list(test.class_names) if labels is not None and test.class_names else None
    timing = {}
    ctx, names, judged_floor, floor_cond = _judge_targets(evaluator_data, test, targets, labels, names, seed,
                                                          progress, timing)

    t0 = time.time()
    outputs = _translate_all(translate, sources, targets, batch_size, progress)
    timing["translation"] = time.time() - t0

    t0 = time.time()
    model, floor = _image_metrics(outputs, targets)
    cond = None
    if ctx is not None:
        judged, cond = _judge(ctx, outputs, labels, seed, "output features" if progress else None)
        model.update(judged)
        floor.update(judged_floor)
    per_class = _per_class(outputs, targets, labels, names, cond, floor_cond) if labels is not None and names else None
    timing["scoring"] = time.time() - t0

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pictures = _pictures(out, test, outputs, names, bool(per_class), cond)
    timing["total"] = time.time() - started

    report = {
        "kind": "translation", "source": source, "dataset": test.name, "n_pairs": n,
        "source_shape": list(sources.shape[1:]), "target_shape": list(targets.shape[1:]),
        "classes": names,
        "evaluator": None if ctx is None else {
            "dataset": ctx.train.name, "path": str(ctx.ev.path) if ctx.ev.path else None,
            "test_accuracy": ctx.ev.info.get("test_accuracy"), "key": ctx.ev.info.get("key")},
        "settings": {"seed": seed, "batch_size": batch_size, "max_pairs": max_pairs, "k_nearest": K_NEAREST,
                     "reference": "real train split of the evaluator's dataset" if ctx else None,
                     "floor": "the test pairs' real targets"},
        "model": model,
        "real_floor": floor,
        "per_class": per_class,
        "confusion": cond["confusion"] if cond else None,
        "pictures": pictures,
        "timing_s": {k: round(v, 2) for k, v in timing.items()},
    }
    return write_report(report, out, render_markdown, progress)


def _per_class(outputs, targets, labels, names, cond, floor_cond) -> list[dict]:
    """Pixel metrics, sharpness and evaluator accuracy for the pairs of each class."""
    rows = []
    for c, name in enumerate(names):
        mine = labels == c
        if not mine.any():
            continue
        m, _ = _image_metrics(outputs[mine], targets[mine])
        row = {"class": name, "n_pairs": int(mine.sum()), "l1": m["l1"], "ssim": m["ssim"],
               "sharpness_ratio": m["sharpness_ratio"]}
        if cond is not None:
            row["class_accuracy"] = cond["per_class"][c]
            row["class_accuracy_floor"] = floor_cond["per_class"][c]
        rows.append(row)
    return rows


# --------------------------------------------------------------------------- markdown

SUMMARY_ROWS = [  # key, label, how to read it, format
    ("l1", "L1 (mean abs. error, 0..1)", "lower; 0 is pixel-exact", "kid"),
    ("psnr", "PSNR (dB)", "higher; identical images score ∞ (—)", "num"),
    ("ssim", "SSIM", "higher; 1 is identical structure", "num"),
    ("sharpness", "sharpness (mean gradient, 0..1)", "near the floor; lower is blur", "kid"),
    ("sharpness_ratio", "sharpness / real targets'", "about 1; well below 1 is blur, above is noise", "num"),
    ("class_accuracy", "evaluator class accuracy", "higher; the output still shows its class", "pct"),
    *FID_ROWS,
    *PRDC_ROWS,
]


def render_markdown(r: dict) -> str:
    m, f = r["model"], r["real_floor"]
    ev = r["evaluator"]
    lines = [
        f"# condgan translation evaluation: {r['source']}",
        "",
        f"{r['n_pairs']} test pairs of **{r['dataset']}** (source {'x'.join(map(str, r['source_shape']))} → "
        f"target {'x'.join(map(str, r['target_shape']))}). The **real floor** column scores the real targets "
        "exactly as if a model had produced them: the best a perfect translator could get.",
        "",
    ]
    if ev:
        lines += [f"FID, KID and precision/recall/density/coverage compare outputs with the real train split of "
                  f"**{ev['dataset']}** in the feature space of condgan's own evaluator (test accuracy "
                  f"{_fmt(ev['test_accuracy'], 'pct')}); the floor uses the same number of images, so the two "
                  "columns are comparable.", ""]
    lines += ["| metric | model | real floor | how to read |", "|---|---:|---:|---|"]
    for key, label, note, kind in SUMMARY_ROWS:
        if key in m:
            lines.append(f"| {label} | {_fmt(m.get(key), kind)} | {_fmt(f.get(key), kind)} | {note} |")
    if r.get("per_class"):
        has_acc = "class_accuracy" in r["per_class"][0]
        lines += ["", "## Per class", "",
                  "| class | pairs | L1 | SSIM | sharpness / real |" + (" class acc. | floor |" if has_acc else ""),
                  "|---|---:|---:|---:|---:|" + ("---:|---:|" if has_acc else "")]
        for row in r["per_class"]:
            cells = [row["class"], str(row["n_pairs"]), _fmt(row["l1"], "kid"), _fmt(row["ssim"]),
                     _fmt(row["sharpness_ratio"])]
            if has_acc:
                cells += [_fmt(row["class_accuracy"], "pct"), _fmt(row["class_accuracy_floor"], "pct")]
            lines.append("| " + " | ".join(cells) + " |")
    p = r["pictures"]
    lines += ["", "## Pictures", "",
              "**Test pairs** — source | output | target, one pair per row.", "",
              f"![source, output, target]({p['sheet']})", ""]
    if "confusion" in p:
        lines += ["**Class confusion of the outputs** — rows: the pair's label; columns: what the evaluator sees.",
                  "", f"![confusion matrix]({p['confusion']})", ""]
    lines += ["## Notes", "",
              "- Pixel metrics are on the 0..1 scale, outputs taken as the 8-bit images they would be saved as. "
              "PSNR is of the squared error pooled over all pairs; SSIM is the mean over pairs.",
              "- L1, PSNR and SSIM reward a blurred average of the plausible targets; read them with the sharpness "
              "ratio.",
              f"- Timing (s): {', '.join(f'{k} {v}' for k, v in r['timing_s'].items())}.", ""]
    return "\n".join(lines)


def evaluator_data_for(data: dict) -> dict | None:
    """The class-labelled dataset whose evaluator can judge a translator's targets, if there is one:
    the built-in Fashion-MNIST pairs (garments as targets) are judged by the Fashion-MNIST evaluator."""
    from ..data.paired import BUILTIN_PAIRS

    if data.get("name") in BUILTIN_PAIRS and (data.get("direction") or "AtoB") == "AtoB":
        return {"name": "fashion-mnist", "data_dir": data.get("data_dir"), "classes": data.get("classes"),
                "image_size": None, "channels": None}
    return None


def evaluate_translator(tr, out_dir: str | Path, seed: int = 0, progress: bool = True, source: str = "run",
                        max_pairs: int | None = None) -> dict:
    """Score a Translator pipeline on the test split of the data it was trained on."""
    test = tr.pairs("test")
    labels = test.labels if tr.uses_label else None
    done = [0]

    def translate(sources: torch.Tensor) -> torch.Tensor:
        start, done[0] = done[0], done[0] + len(sources)
        batch_labels = labels[start:start + len(sources)].tolist() if labels is not None else None
        return tr.translate(sources, seed=seed + start, labels=batch_labels)

    return evaluate_translation(translate, test, out_dir, evaluator_data=evaluator_data_for(tr.data), seed=seed,
                                progress=progress, source=source, max_pairs=max_pairs)
