"""A new user's small folder at 64 px: how it trained before (RGB because some files were RGB, no augmentation,
widths 16, batch 64) against today's defaults (channels from content, DiffAugment under 10,000 images, widths 8 and
batch 32 above 32 px), same budget, one run.

    python benchmarks/small_folder.py --minutes 20 --out bench-results/small-folder

Builds the mixed-format shoe folder from Fashion-MNIST's test split (benchmarks/make_shoe_folder.py), trains both
recipes at the same time with one thread each (`--parallel 1` for one after the other with every core), samples `--n-per-class` images per class, and scores both with the same evaluator:
the folder's 1-channel one (the 'before' samples are grey in content, so they are averaged to one channel first).
Prints a table (per-class FID, conditioning accuracy, ...), writes JSON and one PNG with both class grids.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from class_loss import train_all  # noqa: E402
from compare import headline  # noqa: E402
from make_shoe_folder import build  # noqa: E402

RECIPES = {
    "before (RGB, no augmentation, widths 16, batch 64)": ["data.channels=3", "train.augment=[]", "model.g_width=16",
                                                           "model.d_width=16", "train.batch_size=64", "train.aux_form=ce"],
    "after (today's defaults)": [],
}


def run(name: str, overrides: list[str], folder: Path, minutes: float, out: Path, n_per_class: int, seed: int) -> dict:
    import condgan
    from condgan.eval.report import evaluate_samples

    slug = slugs(name)
    run_dir = out / slug
    summary = json.loads((run_dir / "summary.json").read_text())
    gen = condgan.load(run_dir)
    images, labels = gen.sample_per_class(n_per_class, seed=seed)
    arr = images.float().mean(1).round().to(dtype=images.dtype).numpy()  # grey content: one channel for the evaluator
    samples = out / f"{slug}-samples.npz"
    np.savez_compressed(samples, images=arr, labels=labels.numpy(), class_names=np.array(gen.class_names))
    t0 = time.monotonic()
    report = evaluate_samples(samples, {"name": str(folder), "channels": 1}, out_dir=out / f"{slug}-eval", seed=seed,
                              progress=False)
    return {"recipe": name, "channels": gen.channels, "augment": summary.get("augment"), "steps": summary["steps"],
            "images_per_s": summary["images_per_s"], "eval_seconds": round(time.monotonic() - t0, 1),
            "grid": str(run_dir / "samples" / "latest.png"), **headline(report)}


def slugs(name: str) -> str:
    return "before" if name.startswith("before") else "after"


def side_by_side(rows: list[dict], path: Path) -> None:
    from PIL import Image

    grids = [Image.open(r["grid"]).convert("RGB") for r in rows]
    canvas = Image.new("RGB", (sum(g.width for g in grids) + 20 * (len(grids) - 1), max(g.height for g in grids)), "white")
    x = 0
    for g in grids:
        canvas.paste(g, (x, 0))
        x += g.width + 20
    canvas.save(path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=20, help="training budget per recipe (default 20)")
    parser.add_argument("--out", default="bench-results/small-folder", help="folder for the runs, table, JSON and PNG")
    parser.add_argument("--per-class", type=int, default=600, help="images per class in the built folder (default 600)")
    parser.add_argument("--n-per-class", type=int, default=500, help="generated images per class to score (default 500)")
    parser.add_argument("--seed", type=int, default=0, help="seed for the folder, training and sampling (default 0)")
    parser.add_argument("--parallel", type=int, default=2, help="recipes trained at once, one thread each (default 2)")
    parser.add_argument("--recipes", default="before,after", help="which: before, after or both (default before,after)")
    parser.add_argument("--image-size", type=int, default=64, help="training resolution (default 64; 128 for the "
                        "size check in docs/benchmarks.md)")
    args = parser.parse_args()
    chosen = args.recipes.split(",")
    if not chosen or set(chosen) - {"before", "after"}:
        parser.error(f"--recipes takes before, after or before,after, not {args.recipes}")
    recipes = {n: o for n, o in RECIPES.items() if slugs(n) in chosen}
    out = Path(args.out)
    folder = out / "shoes"
    if not folder.is_dir():
        print(f"building {folder}: {build(folder, args.per_class, args.seed)}")
    size = [f"data.image_size={args.image_size}"]
    train_all([slugs(n) for n in recipes], {slugs(n): [f"data.name={folder.resolve()}", *size, *o] for n, o in recipes.items()},
              args.minutes, out, args.seed, args.parallel)
    rows = [run(name, o, folder, args.minutes, out, args.n_per_class, args.seed) for name, o in recipes.items()]
    lines = ["| recipe | channels | steps | images/s | FID | per-class FID | class acc. | recall | diversity |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['recipe']} | {r['channels']} | {r['steps']} | {r['images_per_s']:.0f} | {r['fid']:.2f} | "
                     f"{r['per_class_fid']:.2f} | {r['accuracy']:.1%} | {r['recall']:.3f} | {r['diversity']:.2f} |")
    for r in rows:
        lines.append(f"\n{r['recipe']} per class: " + ", ".join(f"{c} FID {v['fid']:.2f} acc {v['accuracy']:.1%}"
                                                               for c, v in r["per_class"].items()))
    table = "\n".join(lines)
    print("\n" + table)
    side_by_side(rows, out / "grids-before-after.png")
    (out / "small_folder.json").write_text(json.dumps({"minutes": args.minutes, "rows": rows}, indent=2))
    (out / "small_folder.md").write_text(table + "\n")
    print(f"\nwritten: {out / 'small_folder.md'}, {out / 'small_folder.json'}, {out / 'grids-before-after.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
