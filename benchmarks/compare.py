"""Side-by-side: condgan's default model vs the classic cGAN recipes, same budget.

    python benchmarks/compare.py --minutes 10 --out bench-results

Trains each recipe for the same wall-clock budget on this machine, samples
1000 images per class, scores them with condgan's offline evaluator, and
prints one table (also written as JSON). Recipes run one after another so
they never compete for CPU cores.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from condgan.config import load_config  # noqa: E402
from condgan.training import train  # noqa: E402

RECIPES = {
    "condgan-default": ROOT / "configs" / "fashion-mnist.yaml",
    "classic-mlp-bce": ROOT / "configs" / "classic-mlp.yaml",
    "classic-dcgan-lsgan": ROOT / "configs" / "classic-dcgan.yaml",
}
COLUMNS = [("recipe", "recipe", "{}"), ("params", "params (G+D)", "{:,}"), ("images_per_s", "images/s", "{:.0f}"),
           ("steps", "steps", "{}"), ("fid", "FID", "{:.2f}"), ("per_class_fid", "per-class FID", "{:.2f}"),
           ("accuracy", "class acc.", "{:.1%}"), ("diversity", "diversity vs real", "{:.2f}")]


def run_recipe(name: str, config_path: Path, minutes: float, out: Path, n_per_class: int, seed: int) -> dict:
    from condgan.eval import evaluate_run

    config = load_config(config_path, [f"train.seed={seed}"])
    config.train.steps = config.train.epochs = None
    run = out / name
    if (run / "summary.json").is_file():
        print(f"{name}: reusing the finished run in {run} (delete it to retrain)")
        summary = json.loads((run / "summary.json").read_text())
    else:
        print(f"\n=== {name}: training for {minutes} minutes ===")
        summary = train(config, run, stop_overrides={"budget_minutes": minutes})
    t0 = time.monotonic()
    report = evaluate_run(run, n_per_class=n_per_class, seed=seed, progress=False)
    return {"recipe": name, "params": summary["params_G"] + summary["params_D"], "images_per_s": summary["images_per_s"],
            "steps": summary["steps"], "train_minutes": summary["train_minutes"], "eval_seconds": round(time.monotonic() - t0, 1),
            **headline(report), "report": str(run / "eval" / "report.md")}


def headline(report: dict) -> dict:
    """The numbers for the table, from the report condgan.eval writes (report.json)."""
    m = report["model"]
    return {"fid": m["fid"], "per_class_fid": m["class_fid_mean"], "accuracy": m["conditioning_accuracy"],
            "diversity": m["diversity_ratio_mean"], "kid": m["kid"], "precision": m["precision"], "recall": m["recall"],
            "copies": m["copy_fraction"], "per_class": {c["class"]: {"fid": c["fid"], "accuracy": c["conditioning_accuracy"]}
                                                 for c in report["per_class"]}}


def print_table(rows: list[dict]) -> str:
    header = [c[1] for c in COLUMNS]
    body = [[(fmt.format(r[key]) if r.get(key) is not None else "—") for key, _, fmt in COLUMNS] for r in rows]
    widths = [max(len(x) for x in col) for col in zip(header, *body)]
    lines = [" | ".join(h.ljust(w) for h, w in zip(header, widths)), "-+-".join("-" * w for w in widths)]
    lines += [" | ".join(c.ljust(w) for c, w in zip(row, widths)) for row in body]
    text = "\n".join(lines)
    print("\n" + text)
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10, help="training budget per recipe (default 10)")
    parser.add_argument("--out", default="bench-results", help="folder for runs, table and JSON (default bench-results)")
    parser.add_argument("--recipes", default=",".join(RECIPES), help=f"comma-separated subset of {', '.join(RECIPES)}")
    parser.add_argument("--n-per-class", type=int, default=1000, help="generated images per class to score (default 1000)")
    parser.add_argument("--seed", type=int, default=0, help="seed for training and sampling (default 0)")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = [run_recipe(name, RECIPES[name], args.minutes, out, args.n_per_class, args.seed) for name in args.recipes.split(",")]
    table = print_table(rows)
    (out / "compare.json").write_text(json.dumps({"minutes": args.minutes, "rows": rows}, indent=2))
    (out / "compare.md").write_text(table + "\n")
    print(f"\nwritten: {out / 'compare.json'}, {out / 'compare.md'}; per-recipe reports in {out}/<recipe>/eval/")


if __name__ == "__main__":
    main()
