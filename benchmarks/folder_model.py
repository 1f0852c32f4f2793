"""Which model makes the most of a CPU at 64 px (or 128): widths, batch size, learning rates, D steps, EMA,
each trained for the same budget on the mixed-format shoe folder and scored by `condgan eval`.

    python benchmarks/folder_model.py --minutes 5 --out bench-results/folder-model
    python benchmarks/folder_model.py --minutes 1 --image-size 128 --candidates default,g8 --out bench-results/folder-128

Candidates train two at a time with one thread each (`--parallel`), so each pair shares the machine alike;
the table gives images/s beside every figure, so read it as ratios. Finished runs are reused.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from class_loss import markdown, score_all, train_all  # noqa: E402
from make_shoe_folder import build  # noqa: E402

# Every candidate starts from the 64-px default before this search (resnet, widths 16/16, batch 64, lr 4e-4/8e-4,
# EMA 0.99, G's class term ce), spelled out so that the search means the same after the defaults changed.
BEFORE = ["model.g_width=16", "model.d_width=16", "train.batch_size=64", "train.aux_form=ce"]
CANDIDATES = {  # name -> overrides of BEFORE
    "default": [],  # the old default (since 2026-11-30 a folder at 64 px gets g8-b32)
    "g8": ["model.g_width=8", "model.d_width=8"],
    "g8-d16": ["model.g_width=8"],
    "b32": ["train.batch_size=32"],
    "g8-b32": ["model.g_width=8", "model.d_width=8", "train.batch_size=32"],
    "ema999": ["train.ema_decay=0.999"],
    "d2": ["train.d_steps=2"],
    "lr-half": ["train.lr_g=2e-4", "train.lr_d=4e-4"],
    "g12": ["model.g_width=12", "model.d_width=12"],
    "g8-d2": ["model.g_width=8", "model.d_width=8", "train.d_steps=2"],
    "g8-ema999": ["model.g_width=8", "model.d_width=8", "train.ema_decay=0.999"],
    "g8-lr-half": ["model.g_width=8", "model.d_width=8", "train.lr_g=2e-4", "train.lr_d=4e-4"],
    "g8-z128": ["model.g_width=8", "model.d_width=8", "model.z_dim=128"],
    "g8-b32-twin": ["model.g_width=8", "model.d_width=8", "train.batch_size=32", "train.aux_form=twin", "train.twin_weight=0.35"],
}
TODAY = ["model.g_width=8", "model.d_width=8", "train.batch_size=32"]  # the 64-px default since 2026-11-30
CANDIDATES.update({  # issue 23's levers on today's 64-px default
    "g8-b32-adc": TODAY + ["train.aux_form=adc"],  # the 28-px class term (with its adc_weight and mode-seeking weight)
    "g8-b32-lr1.5x": TODAY + ["train.lr_g=6e-4", "train.lr_d=1.2e-3"],
    "g8-b32-r1": TODAY + ["train.r1_weight=1.0"],  # R1 on real images: the small-data staple (StyleGAN2-ADA)
    "g8-b32-adc-lecam": TODAY + ["train.aux_form=adc", "train.lecam_weight=0.3"],  # LeCam: the other small-data staple
    "g8-b32-aux1.5": TODAY + ["train.aux_weight=1.5"],  # a weaker class pull (accuracy has room above 97%)
    "g8-b32-ema0.98": TODAY + ["train.ema_decay=0.98"],  # a shorter average: EMA 0.999 lagged far behind at 64 px
})
COLUMNS = [("candidate", "candidate", "{}"), ("params", "params (G+D)", "{:,}"), ("images_per_s", "images/s", "{:.0f}"),
           ("steps", "steps", "{}"), ("fid", "FID", "{:.2f}"), ("per_class_fid", "per-class FID", "{:.2f}"),
           ("accuracy", "class acc.", "{:.1%}"), ("recall", "recall", "{:.3f}"), ("diversity", "diversity", "{:.3f}")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=5.0, help="training budget of each candidate (default 5)")
    parser.add_argument("--candidates", default=",".join(CANDIDATES), help=f"which (default {','.join(CANDIDATES)})")
    parser.add_argument("--image-size", type=int, default=64, help="training resolution (default 64)")
    parser.add_argument("--parallel", type=int, default=2, help="candidates trained at once, one thread each (default 2)")
    parser.add_argument("--threads", type=int, help="threads of each training (default: 1 with --parallel > 1, else all)")
    parser.add_argument("--n-per-class", type=int, default=500, help="generated images per class to score (default 500)")
    parser.add_argument("--folder", help="the folder to train on (default: build the shoe folder under --out)")
    parser.add_argument("--out", default="bench-results/folder-model", help="folder for runs and results")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    folder = Path(args.folder) if args.folder else out / "shoes"
    if not folder.is_dir():
        print(f"building {folder}: {build(folder, 600, args.seed)}")
    names = args.candidates.split(",")
    unknown = [n for n in names if n not in CANDIDATES]
    if unknown:
        raise SystemExit(f"unknown candidate(s) {', '.join(unknown)}; choose from {', '.join(CANDIDATES)}")
    base = [f"data.name={folder.resolve()}", f"data.image_size={args.image_size}", *BEFORE]
    train_all(names, {n: base + CANDIDATES[n] for n in names}, args.minutes, out, args.seed, args.parallel, args.threads)
    rows = score_all(names, out, args.n_per_class, args.seed, "candidate", CANDIDATES)
    text = markdown(rows, COLUMNS)
    print("\n" + text)
    (out / "folder_model.json").write_text(json.dumps({"minutes": args.minutes, "image_size": args.image_size,
                                                       "parallel": args.parallel, "rows": rows}, indent=2) + "\n")
    (out / "folder_model.md").write_text(text + "\n")
    print(f"\nwritten: {out / 'folder_model.md'}, {out / 'folder_model.json'}")


if __name__ == "__main__":
    main()
