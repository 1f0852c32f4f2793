"""The evaluation report: sample (or read) images, score them, draw the pictures, write report.json + report.md.

Every number is shown beside its real-data floor (the same metric for the
held-out real test split), because an FID of 3.1 means nothing on its own and
"3.1 where real images score 0.9" means a lot.
"""

from __future__ import annotations

import json
import math
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from ..progress import progress as tqdm

from ..data import ImageSet, resolve_class, to_uint8
from ..errors import DataError, UserError
from ..untrusted import printable
from .evaluator import Evaluator, check_image_size, get_evaluator, load_splits
from .metrics import COPY_QUANTILE, K_NEAREST, Reference, compute_metrics, get_reference, look, real_floor
from ..pipelines.latents import check_truncation
from .pictures import confusion_png, draw_noise, interference_grid, latent_traversal, sample_sheets
from .samples import load_samples_npz


@dataclass
class Context:
    """The evaluator, the real side and the class mapping for one dataset and class list."""

    ev: Evaluator
    ref: Reference
    train: ImageSet  # real train split, only the model's classes, labels in the model's order
    class_names: list[str]
    class_map: torch.Tensor  # model class index -> evaluator class index


def prepare(data_cfg: dict, class_names: list[str], progress: bool = True, shape: tuple[int, int] | None = None) -> Context:
    """Load the data, find or train the evaluator, build or load the cached real side.
    shape: (channels, size) of the images to score, checked against the data before any evaluator is trained."""
    train, test = load_splits(data_cfg)
    check_compatible(train, class_names, shape)
    ev = get_evaluator(data_cfg, splits=(train, test), progress=progress)
    class_map = ev.class_map(class_names)
    if list(class_names) != list(train.class_names):
        train, test = train.subset(list(class_names)), test.subset(list(class_names))
    return Context(ev, get_reference(ev, train, test, progress), train, list(class_names), class_map)


def check_compatible(data: ImageSet, class_names: list[str], shape: tuple[int, int] | None = None) -> None:
    """Refuse images the dataset cannot judge (other classes, another size) now, not after minutes of
    evaluator training and sampling."""
    try:
        for name in class_names:
            resolve_class(name, data.class_names)
    except DataError as e:
        raise UserError(f"{data.name} cannot judge these images: {e}; evaluate against the dataset they were "
                        f"made for (--data)") from None
    if shape is not None and tuple(shape) != (data.channels, data.image_size):
        raise UserError(f"the images to score are {shape[1]}x{shape[1]} with {shape[0]} channel(s), but {data.name} loads "
                        f"as {data.image_size}x{data.image_size} with {data.channels}; evaluate against the dataset they "
                        f"were made for, at their own size")


@torch.no_grad()
def sample(gen, n_per_class: int, seed: int = 0, batch_size: int = 500, progress: bool = True,
           truncation: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """n_per_class uint8 images of every class, from one seeded noise draw: the same images as
    gen.sample_per_class(n_per_class, seed, truncation=truncation) (and `condgan sample`), with a progress bar."""
    labels = torch.arange(gen.num_classes).repeat_interleave(n_per_class)
    z = draw_noise(gen, len(labels), seed, truncation)
    out = []
    for i in tqdm(range(0, len(labels), batch_size), desc="sampling", unit="batch", leave=False, disable=not progress):
        out.append(to_uint8(gen(z[i:i + batch_size], labels[i:i + batch_size])))
    return torch.cat(out), labels


def evaluate_run(run_dir: str | Path, n_per_class: int = 1000, seed: int = 0, out_dir: str | Path | None = None,
                 progress: bool = True, truncation: float | None = None) -> dict:
    """Evaluate a training run (or checkpoint); writes <run>/eval/report.{json,md} by default. truncation: sample
    with truncated latents (pipelines/latents.truncate; off by default), recorded in the report."""
    from ..pipelines import ClassConditional

    gen = ClassConditional.from_pretrained(run_dir)
    run_dir = Path(run_dir)
    default_out = (run_dir if run_dir.is_dir() else run_dir.parent) / "eval"
    return evaluate_generator(gen, out_dir or default_out, n_per_class, seed, progress, source=str(run_dir),
                              truncation=truncation)


def evaluate_generator(gen, out_dir: str | Path, n_per_class: int = 1000, seed: int = 0, progress: bool = True,
                       source: str = "generator", truncation: float | None = None) -> dict:
    """Evaluate any object with the Generator interface (class_names, data, noise, __call__). truncation: every
    image and picture from latents truncated at ±truncation (noise(..., truncation=...)); None (default): off."""
    if n_per_class < 2:
        raise UserError(f"--n-per-class must be at least 2 (FID needs two images per class), not {n_per_class}")
    check_truncation(truncation)
    started = time.time()
    ctx = prepare(gen.data, list(gen.class_names), progress, shape=(gen.channels, gen.image_size))
    t0 = time.time()
    images, labels = sample(gen, n_per_class, seed, progress=progress, truncation=truncation)
    sampling_s = time.time() - t0
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    extra = {"interference": interference_grid(gen, out / "interference.png", seed=seed, truncation=truncation).name}
    traversal = latent_traversal(gen, ctx.ev, ctx.class_map, out / "traversal.png", seed=seed, truncation=truncation)
    extra["traversal"] = "traversal.png"
    return _score_and_write(ctx, images, labels, out, seed, progress, source, "run", started,
                            {"sampling": sampling_s}, extra, traversal, truncation=truncation)


def evaluate_samples(npz_path: str | Path, data_cfg: dict, out_dir: str | Path | None = None, seed: int = 0,
                     progress: bool = True) -> dict:
    """Evaluate images from a samples .npz against a dataset (data_cfg: name, data_dir, classes, ...)."""
    started = time.time()
    images, labels, class_names = load_samples_npz(npz_path)
    check_image_size(images.shape[-1], f"the images in {npz_path}")
    cfg = dict(data_cfg)
    if cfg.get("classes") and [c.lower() for c in cfg["classes"]] != [c.lower() for c in class_names]:
        raise UserError(f"--classes {','.join(cfg['classes'])} does not match the classes stored in {npz_path}: "
                        f"{','.join(class_names)}")
    labels, present, missing = classes_present(npz_path, labels, class_names)
    cfg.setdefault("image_size", None)
    cfg["image_size"] = cfg["image_size"] or images.shape[-1]
    cfg["channels"] = cfg.get("channels") or images.shape[1]
    ctx = prepare(cfg, present, progress, shape=(images.shape[1], images.shape[-1]))
    out = Path(out_dir) if out_dir else Path(npz_path).with_suffix("").parent / (Path(npz_path).stem + "-eval")
    return _score_and_write(ctx, images, labels, out, seed, progress, str(npz_path), "samples", started, {}, {}, None,
                            missing)


MIN_PER_CLASS = 2  # per-class FID and diversity compare a class's images with each other


def classes_present(path, labels: torch.Tensor, class_names: list[str]) -> tuple[torch.Tensor, list[str], list[str]]:
    """(labels renumbered over the classes that have images, those classes, the missing ones). A file with
    images of some classes only is scored on those (the real floor too), with a warning naming the others;
    a class with too few images to score is refused before any work starts."""
    counts = torch.bincount(labels, minlength=len(class_names)).tolist()
    few = [printable(name, 40) for name, n in zip(class_names, counts) if 0 < n < MIN_PER_CLASS]
    if few:
        raise UserError(f"{path} has fewer than {MIN_PER_CLASS} images of {len(few)} class(es) ({', '.join(few[:5])}"
                        f"{', ...' if len(few) > 5 else ''}); evaluation needs at least {MIN_PER_CLASS} of each class it "
                        f"scores: write more (condgan sample RUN --n-per-class 1000 --out FILE.npz)")
    keep = [c for c, n in enumerate(counts) if n > 0]
    missing = [name for name, n in zip(class_names, counts) if n == 0]
    if missing:
        warnings.warn(f"{path} has no images of {len(missing)} of its {len(class_names)} classes "
                      f"({', '.join(printable(m, 40) for m in missing[:10])}{', ...' if len(missing) > 10 else ''}); "
                      f"scoring only the classes present ({', '.join(printable(class_names[c], 40) for c in keep[:10])}"
                      f"{', ...' if len(keep) > 10 else ''}), the real floor too", stacklevel=2)
    renumber = torch.full((len(class_names),), -1, dtype=torch.int64)
    renumber[keep] = torch.arange(len(keep))
    return renumber[labels], [class_names[c] for c in keep], missing


def _score_and_write(ctx: Context, images, labels, out: Path, seed: int, progress: bool, source: str, kind: str,
                     started: float, timing: dict, pictures: dict, traversal: dict | None,
                     missing: list[str] | None = None, truncation: float | None = None) -> dict:
    t0 = time.time()
    seen = look(ctx.ev, images, labels, ctx.train.images, progress)
    model = compute_metrics(seen, ctx.ref, ctx.class_map, seed)
    floor = compute_metrics(real_floor(ctx.ref), ctx.ref, ctx.class_map, seed)
    timing["scoring"] = time.time() - t0
    out.mkdir(parents=True, exist_ok=True)
    pictures["confusion"] = confusion_png(model["confusion"], ctx.class_names, out / "confusion.png",
                                          "conditioning: requested label vs evaluator verdict").name
    pictures["samples"] = sample_sheets(images, labels, ctx.class_names, out, truncation=truncation)
    timing["total"] = time.time() - started

    per_class = []
    for c, name in enumerate(ctx.class_names):
        row = {"class": name, "n_images": int((labels == c).sum())}
        for metric in ("fid", "conditioning_accuracy", "diversity_ratio"):
            row[metric] = model["per_class"][metric][c]
            row[metric + "_floor"] = floor["per_class"][metric][c]
        if traversal:
            row["traversal_kept"] = traversal["per_class"][c]
        per_class.append(row)
    report = {
        "kind": kind, "source": source, "dataset": ctx.train.name, "classes": ctx.class_names,
        "missing_classes": list(missing or []),
        "evaluator": {"path": str(ctx.ev.path) if ctx.ev.path else None, "test_accuracy": ctx.ev.info.get("test_accuracy"),
                      "key": ctx.ev.info.get("key")},
        "settings": {"seed": seed, "k_nearest": K_NEAREST, "copy_quantile": COPY_QUANTILE,
                     "n_images": len(labels), "reference": "real train split", "floor": "real test split",
                     "truncation": truncation},  # latents truncated at ±truncation (None: the model's own)
        "model": {k: v for k, v in model.items() if k not in ("per_class", "confusion")},
        "real_floor": {k: v for k, v in floor.items() if k not in ("per_class", "confusion")},
        "per_class": per_class,
        "confusion": model["confusion"],
        "latent_traversal": traversal,
        "pictures": pictures,
        "timing_s": {k: round(v, 2) for k, v in timing.items()},
    }
    return write_report(report, out, render_markdown, progress)


def write_report(report: dict, out: Path, render, progress: bool = True) -> dict:
    """The one writer of report.json + report.md for every kind of evaluation; returns the JSON-safe report."""
    report = _clean(report)
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "report.md").write_text(render(report))
    if progress:
        print(f"condgan: report written to {out / 'report.md'}")
    return report


def _clean(x):
    """JSON-safe: NaN/inf become null, tensors become lists."""
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if isinstance(x, torch.Tensor):
        return _clean(x.tolist())
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


# --------------------------------------------------------------------------- markdown

# Rows of the summary table: key, label, how to read it, format. FID_ROWS and PRDC_ROWS are shared with
# every report that scores images in the evaluator's feature space (eval/translation.py too).
FID_ROWS = [
    ("fid", "FID (evaluator features)", "lower is better", "num"),
    ("kid", "KID", "lower is better; unbiased, can dip below 0", "kid"),
]
PRDC_ROWS = [
    ("precision", f"precision (k={K_NEAREST})", "higher; realism", "num"),
    ("recall", f"recall (k={K_NEAREST})", "higher; variety", "num"),
    ("density", f"density (k={K_NEAREST})", "about 1 for real data", "num"),
    ("coverage", f"coverage (k={K_NEAREST})", "higher; modes covered", "num"),
]
SUMMARY_ROWS = [
    *FID_ROWS,
    ("class_fid_mean", "mean per-class FID", "lower; catches ignored labels", "num"),
    ("conditioning_accuracy", "conditioning accuracy", "higher; evaluator agrees with the label", "pct"),
    *PRDC_ROWS,
    ("diversity_ratio_mean", "intra-class diversity / real", "about 1; below 1 is mode collapse", "num"),
    ("copy_fraction", "suspected copies", "1% for real test images by construction", "pct"),
    ("exact_copies", "exact copies of training images", "0", "int"),
    ("nn_distance_ratio", "nearest-train distance / real test's", "about 1; well below 1 is memorising", "num"),
]


def _fmt(v, kind: str = "num") -> str:
    if v is None:
        return "—"
    if kind == "pct":
        return f"{100 * v:.1f}%"
    if kind == "int":
        return str(int(v))
    if kind == "kid":
        return f"{v:.4f}"
    return f"{v:.3f}" if abs(v) < 100 else f"{v:.1f}"


def _model_cell(m: dict, key: str, kind: str) -> str:
    """A model's number, or why there is none ('n/a (needs ≥ 6 images)')."""
    why = (m.get("not_computable") or {}).get(key)
    return f"n/a ({why})" if m.get(key) is None and why else _fmt(m.get(key), kind)


def render_markdown(r: dict) -> str:
    m, f = r["model"], r["real_floor"]
    what = "samples file" if r["kind"] == "samples" else "run"
    missing = r.get("missing_classes") or []
    lines = [
        f"# condgan evaluation: {r['source']}",
        "",
        f"{what.capitalize()} scored against **{r['dataset']}** ({len(r['classes'])} classes: {', '.join(r['classes'])}), "
        f"{m['n_images']} generated images vs the real train split, in the feature space of condgan's own evaluator "
        f"(test accuracy {_fmt(r['evaluator']['test_accuracy'], 'pct')}; no Inception network is used, so numbers are "
        f"comparable between condgan runs on this dataset, not with published Inception FIDs).",
        "",
        *([f"**Classes without images** ({len(missing)}, left out of every number, the real floor's too): "
           f"{', '.join(printable(c, 40) for c in missing)}.", ""] if missing else []),
        *_truncation_note(r["settings"].get("truncation")),
        f"The **real floor** column scores the held-out real test split ({f['n_images']} images) exactly as if a model "
        "had generated it: the best a perfect model could expect.",
        "",
        "| metric | model | real floor | how to read |",
        "|---|---:|---:|---|",
    ]
    for key, label, note, kind in SUMMARY_ROWS:
        lines.append(f"| {label} | {_model_cell(m, key, kind)} | {_fmt(f.get(key), kind)} | {note} |")
    if r.get("latent_traversal"):
        lines.append(f"| latent traversal: frames keeping the label | {_fmt(r['latent_traversal']['fraction_kept'], 'pct')} "
                     f"| — | higher; class must not change along a path |")
    lines += [
        "",
        "## Per class",
        "",
        "| class | FID | floor | conditioning acc. | floor | diversity / real | floor |"
        + (" traversal kept |" if r.get("latent_traversal") else ""),
        "|---|---:|---:|---:|---:|---:|---:|" + ("---:|" if r.get("latent_traversal") else ""),
    ]
    for row in r["per_class"]:
        cells = [row["class"], _fmt(row["fid"]), _fmt(row["fid_floor"]), _fmt(row["conditioning_accuracy"], "pct"),
                 _fmt(row["conditioning_accuracy_floor"], "pct"), _fmt(row["diversity_ratio"]), _fmt(row["diversity_ratio_floor"])]
        if "traversal_kept" in row:
            cells.append(_fmt(row["traversal_kept"], "pct"))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines + _pictures_and_notes(r))


def _truncation_note(truncation: float | None) -> list[str]:
    """The report's line for an evaluation made with truncated latents (`condgan eval --truncation`)."""
    if truncation is None:
        return []
    return [f"**Truncated latents** (`--truncation {truncation:g}`): every image and picture here was generated from "
            f"noise whose entries beyond ±{truncation:g} were drawn again. That trades variety for typical images, so "
            f"expect lower recall and diversity than the model's own samples; compare with an evaluation without "
            f"truncation.", ""]


def _pictures_and_notes(r: dict) -> list[str]:
    m, p = r["model"], r["pictures"]
    lines = ["", "## Pictures", ""]
    if "interference" in p:
        lines += ["**Interference grid** — the same noise in each column, one label per row: the style should stay "
                  "along a column while the class changes.", "", f"![interference grid]({p['interference']})", ""]
    if "traversal" in p:
        lines += ["**Latent traversal** — interpolation between two noises with the label fixed; the class must not "
                  "change along a row.", "", f"![latent traversal]({p['traversal']})", ""]
    lines += ["**Conditioning confusion matrix** — rows: requested label; columns: what the evaluator sees.", "",
              f"![confusion matrix]({p['confusion']})", "",
              "**Samples**, one row per requested label (full sheets: "
              + ", ".join(f"[{name}]({path})" for name, path in p["samples"]["per_class"].items()) + ").", "",
              f"![samples]({p['samples']['overview']})", "",
              "## Notes", "",
              "- FID/KID/precision/recall/density/coverage use the evaluator's 128-d penultimate features; per-class "
              "FID compares each requested label's images with real train images of that class. FID is biased by sample "
              "size, so compare the model with the floor at similar numbers of images.",
              f"- Memorisation uses RMS pixel distance (0 = identical, 1 = opposite) to the nearest training image; "
              f"an image closer than {_fmt(m['copy_threshold'])} (the {COPY_QUANTILE:.0%} quantile of real test images' "
              "distances) is a suspected copy.",
              f"- Timing (s): {', '.join(f'{k} {v}' for k, v in r['timing_s'].items())}.", ""]
    return lines
