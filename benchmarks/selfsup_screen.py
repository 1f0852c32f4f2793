"""A cheap screen of self-supervised similarity recipes on Fashion-MNIST: which views, temperature, batch and
projector make the most of a few CPU minutes (issue 25).

    OMP_NUM_THREADS=1 python benchmarks/selfsup_screen.py --minutes 3 --out bench-results/selfsup-screen
    python benchmarks/selfsup_screen.py --minutes 6 --candidates before,crop35-t0.5 --out bench-results/selfsup-screen

Each candidate trains for the same budget with --threads (default 1), one after another (never two at once), and is
scored by `condgan eval`'s embedder evaluation on the 10,000 test images: ROC AUC, EER, MAP@R, precision@1,
and the same with one side flipped or shifted. Settings that are not config keys (the views' crop) are set
on condgan.training.views for that candidate only. Finished candidates are reused; results.md is the table.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import condgan  # noqa: E402
from condgan.config import Config, DataConfig, load_config  # noqa: E402
from condgan.eval.similarity import evaluate_embedder  # noqa: E402
from condgan.tasks.similarity import load_images  # noqa: E402
from condgan.training import train, views  # noqa: E402

BASE = ["task=similarity", "similarity.recipe=selfsup", "train.batch_size=256",
        "train.checkpoint_minutes=100", "train.sample_every=1000000"]


def _views(crop: float, temperature: float, *more: str) -> tuple[list[str], dict]:
    """A candidate with today's views (similarity.augment plus a crop of `crop`-100 % of the area and colour),
    spelled out so that it means the same after the defaults change."""
    return [f"similarity.temperature={temperature}", "similarity.neighbour_views=0", *more], {"SELFSUP_CROP_AREA": (crop, 1.0)}


CANDIDATES = {  # name -> (config overrides, settings of condgan.training.views)
    "before": (["similarity.augment=[classic]", "similarity.temperature=0.1", "similarity.neighbour_views=0",
                "similarity.features=0"], {}),  # one fixed view
    "classic-t0.5": (["similarity.augment=[classic]", "similarity.temperature=0.5", "similarity.neighbour_views=0"], {}),
    "crop20-t0.1": _views(0.2, 0.1),  # the first version of the new views (flip, shift + crop 20-100 % + colour)
    "crop08-t0.1": _views(0.08, 0.1),
    "crop35-t0.1": _views(0.35, 0.1),
    "crop60-t0.1": _views(0.6, 0.1),
    "crop20-noshift-t0.1": _views(0.2, 0.1, "similarity.augment=[flip]"),
    "crop20-t0.05": _views(0.2, 0.05),
    "crop20-t0.2": _views(0.2, 0.2),
    "crop20-t0.5": _views(0.2, 0.5),
    "crop20-t1.0": _views(0.2, 1.0),
    "crop20-t0.1-b128": _views(0.2, 0.1, "train.batch_size=128"),
    "crop20-t0.1-b512": _views(0.2, 0.1, "train.batch_size=512"),
    "crop20-t0.1-proj0": _views(0.2, 0.1, "similarity.projector=0"),
    "crop20-t0.1-proj1024": _views(0.2, 0.1, "similarity.projector=1024"),
    "crop20-t0.1-lr3e-3": _views(0.2, 0.1, "similarity.lr=3e-3"),
    "crop35-t0.5": _views(0.35, 0.5),  # the default from issue 25's first round to 2026-12-07 (no neighbour views)
    "decay0.3": _views(0.35, 0.5, "train.lr_decay=0.3"),
    "nv0.5": _views(0.35, 0.5, "similarity.neighbour_views=0.5"),  # half the second views from a pixel-space neighbour
    "nv1": _views(0.35, 0.5, "similarity.neighbour_views=1"),  # every second view: today's default
    "nv0.5-k20": _views(0.35, 0.5, "similarity.neighbour_views=0.5", "similarity.view_neighbours=20"),
    "nv0.5-t0.2": _views(0.35, 0.2, "similarity.neighbour_views=0.5"),
}
COLUMNS = [("name", "{}"), ("steps", "{:,}"), ("images_per_s", "{:.0f}"), ("roc_auc", "{:.4f}"), ("eer", "{:.1%}"),
           ("roc_auc_flipped", "{:.4f}"), ("roc_auc_shifted", "{:.4f}"), ("precision_at_1", "{:.1%}"),
           ("precision_at_1_flipped", "{:.1%}"), ("precision_at_1_shifted", "{:.1%}"), ("map_at_r", "{:.1%}")]


def screen(name: str, minutes: float, out: Path, test) -> dict:
    overrides, settings = CANDIDATES[name]
    run = out / name
    saved = {k: getattr(views, k) for k in settings}
    try:
        for k, v in settings.items():
            setattr(views, k, v)
        if (run / "summary.json").is_file():
            summary = json.loads((run / "summary.json").read_text())
        else:
            shutil.rmtree(run, ignore_errors=True)
            print(f"\n=== {name}: {' '.join(overrides) or '(defaults)'} {settings or ''} for {minutes} min ===", flush=True)
            summary = train(load_config(None, [*BASE, *overrides]), run, stop_overrides={"budget_minutes": minutes})
    finally:
        for k, v in saved.items():
            setattr(views, k, v)
    t0 = time.monotonic()
    report = evaluate_embedder(condgan.load(run), test.images, test.labels, test.class_names, run / "eval", progress=False,
                               source=str(run))
    return {"name": name, "overrides": overrides, "settings": {k: list(v) for k, v in settings.items()},
            "steps": summary["steps"], "train_minutes": summary["train_minutes"], "images_per_s": summary["images_per_s"],
            "eval_seconds": round(time.monotonic() - t0, 1), **report["model"]}


def table(rows: list[dict]) -> str:
    lines = ["| " + " | ".join(k for k, _ in COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(fmt.format(r[k]) for k, fmt in COLUMNS) + " |" for r in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=3.0, help="training budget of each candidate (default 3)")
    parser.add_argument("--candidates", default=",".join(CANDIDATES), help="which, comma-separated (default: all)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of each run (default 1; the 2026-12-07 "
                        "screen used 2, alone)")
    parser.add_argument("--out", default="bench-results/selfsup-screen")
    args = parser.parse_args()
    BASE.append(f"train.threads={args.threads}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    test = load_images(Config(data=DataConfig(name="fashion-mnist")), "test")
    rows = []
    for name in args.candidates.split(","):
        rows.append(screen(name, args.minutes, out, test))
        (out / "results.json").write_text(json.dumps(rows, indent=2) + "\n")
        (out / "results.md").write_text(table(rows) + "\n")
        print(table(rows[-1:]).splitlines()[-1], flush=True)
    print("\n" + table(rows))


if __name__ == "__main__":
    main()
