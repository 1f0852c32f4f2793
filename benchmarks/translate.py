"""Paired translation: adversarial + L1 against an L1-only model of the same network, same budget.

    python benchmarks/translate.py --minutes 10 --out bench-results/translate

For each built-in pair set (edges -> garment, mask -> garment) trains the
default translator (configs/translate-*.yaml, L1 weight 10), the same with
pix2pix's L1 weight 100, and the same network with train.adversarial_weight=0
(no D: a plain L1 regressor), one after another so
they never compete for cores, scores each on the Fashion-MNIST test split with
`condgan eval`, and prints one table (also written as JSON): L1, SSIM, FID,
recall, class accuracy and sharpness relative to the real targets.
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
from condgan.config import load_config  # noqa: E402
from condgan.eval.translation import evaluate_translator  # noqa: E402
from condgan.training import train  # noqa: E402

PAIRS = {"edges": ROOT / "configs" / "translate-edges.yaml", "masks": ROOT / "configs" / "translate-masks.yaml"}
VARIANTS = {"adv+L1 (λ=10, default)": [], "adv+L1 (λ=100, pix2pix)": ["train.l1_weight=100"],
            "L1 only": ["train.adversarial_weight=0"]}
COLUMNS = [("run", "run", "{}"), ("steps", "steps", "{}"), ("images_per_s", "images/s", "{:.0f}"), ("l1", "L1", "{:.4f}"),
           ("ssim", "SSIM", "{:.3f}"), ("fid", "FID", "{:.2f}"), ("recall", "recall", "{:.3f}"),
           ("class_accuracy", "class acc.", "{:.1%}"), ("sharpness_ratio", "sharpness / real", "{:.3f}")]


def run_one(pairs: str, variant: str, minutes: float, out: Path, seed: int) -> dict:
    name = f"{pairs}-" + "".join(ch if ch.isalnum() else "-" for ch in variant.replace("λ=", "l1-")).strip("-").replace("--", "-")
    run = out / name
    if (run / "summary.json").is_file():
        print(f"{name}: reusing the finished run in {run} (delete it to retrain)")
        summary = json.loads((run / "summary.json").read_text())
    else:
        shutil.rmtree(run, ignore_errors=True)
        config = load_config(PAIRS[pairs], [f"train.seed={seed}", *VARIANTS[variant]])
        config.train.steps = config.train.epochs = None
        print(f"\n=== {name}: training for {minutes} minutes ===", flush=True)
        summary = train(config, run, stop_overrides={"budget_minutes": minutes})
    t0 = time.monotonic()
    report = evaluate_translator(condgan.load(run), run / "eval", seed=seed, progress=False, source=str(run))
    m, f = report["model"], report["real_floor"]
    return {"run": name, "pairs": pairs, "variant": variant, "steps": summary["steps"], "images_per_s": summary["images_per_s"],
            "train_minutes": summary["train_minutes"], "eval_seconds": round(time.monotonic() - t0, 1),
            **{k: m.get(k) for k in ("l1", "psnr", "ssim", "fid", "kid", "precision", "recall", "class_accuracy",
                                     "sharpness", "sharpness_ratio")},
            "real_floor": {k: f.get(k) for k in ("fid", "recall", "class_accuracy", "sharpness")},
            "sheet": str(run / "eval" / report["pictures"]["sheet"]), "report": str(run / "eval" / "report.md")}


def table(rows: list[dict]) -> str:
    lines = ["| " + " | ".join(label for _, label, _ in COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for r in rows:
        lines.append("| " + " | ".join("—" if r.get(k) is None else fmt.format(r[k]) for k, _, fmt in COLUMNS) + " |")
    floor = rows[0]["real_floor"]
    lines.append(f"| real test targets | | | 0 | 1 | {floor['fid']:.2f} | {floor['recall']:.3f} | {floor['class_accuracy']:.1%} | 1.000 |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0, help="training budget of each run (default 10)")
    parser.add_argument("--out", default="bench-results/translate", help="folder for runs and results")
    parser.add_argument("--pairs", default="edges,masks", help="which built-in pair sets (default edges,masks)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = [run_one(p, v, args.minutes, out, args.seed) for p in args.pairs.split(",") for v in VARIANTS]
    text = table(rows)
    print("\n" + text)
    (out / "results.json").write_text(json.dumps({"minutes": args.minutes, "rows": rows}, indent=2) + "\n")
    (out / "results.md").write_text(text + "\n")
    print(f"\nwritten: {out / 'results.json'}, {out / 'results.md'}; sheets: " + ", ".join(r["sheet"] for r in rows))


if __name__ == "__main__":
    main()
