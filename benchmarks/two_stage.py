"""Two labels, two stages: the staged pipeline against one generator given both labels, and against the same
two models trained jointly from scratch (no stages; and naively, without the loss partition), each for the same
total time, scored the same way.

    python benchmarks/two_stage.py --minutes 20 --out bench-results/two-stage

On the built-in coloured Fashion-MNIST (label A = category, label B = colour):
- staged: `condgan train --task two-stage` (stage1, stage2, joint; the budget split by stages.fractions);
- one generator: the class-conditional default model on one class per (category, colour) pair
  (`condgan train --data fashion-mnist-colours`: 60 classes, 3-channel images);
- no stages: the joint stage alone, from untrained networks (stages.from_scratch), with the stage runs'
  learning rates (and its loss partition and teacher forcing);
- naive end to end: the same, but every loss term updates both generators and G2 never sees a real
  intermediate (joint.l1_teacher=0).
Runs go one after another so they never compete for cores; each is scored by eval/two_stage.py
(label-A and label-B accuracy, both, IoU, swap tests, FID, each beside the real floor) and the table is
printed and written as JSON and markdown.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import condgan  # noqa: E402
from condgan.config import load_config  # noqa: E402
from condgan.eval.two_stage import JointClasses, evaluate_two_stage  # noqa: E402
from condgan.training import train  # noqa: E402

DATA = "fashion-mnist-colours"
VARIANTS = {  # short name: (what it is, config overrides)
    "staged": ("staged: stage1, stage2, joint", ["task=two-stage"]),
    "one-generator": ("one generator, A x B classes", ["task=cgan"]),
    "no-stages": ("no stages: joint from scratch", ["task=two-stage", "stages.stage=joint", "stages.from_scratch=true",
                                                    "joint.lr_g=4e-4", "joint.lr_d=8e-4"]),
    "naive": ("naive end to end: joint from scratch, every term updates both, no teacher forcing",
              ["task=two-stage", "stages.stage=joint", "stages.from_scratch=true", "joint.lr_g=4e-4", "joint.lr_d=8e-4",
               "joint.l1_teacher=0", *[f"joint.{t}_updates=G1,G2" for t in
                                       ("adv_mask", "class_mask", "diversity", "adv_image", "class_b", "class_a")]]),
}
COLUMNS = [("variant", "variant", "{}"), ("steps", "steps", "{}"), ("images_per_s", "images/s", "{}"),
           ("label_a_accuracy", "label A", "{:.1%}"), ("label_b_accuracy", "label B", "{:.1%}"),
           ("both_accuracy", "both", "{:.1%}"), ("iou", "IoU", "{:.3f}"), ("swap_b_colour", "swap B: colour follows", "{:.1%}"),
           ("swap_b_shape", "swap B: shape kept (IoU)", "{:.3f}"),
           ("swap_a_category", "swap A: category follows", "{:.1%}"), ("swap_a_colour_kept", "swap A: colour kept", "{:.1%}"),
           ("fid", "FID", "{:.2f}")]


def run_variant(name: str, minutes: float, out: Path, seed: int, n_per_pair: int, threads: int | None) -> dict:
    variant, overrides = VARIANTS[name]
    run = out / name
    if (run / "summary.json").is_file() or (run / "joint" / "summary.json").is_file():
        print(f"{variant}: reusing the finished run in {run} (delete it to retrain)")
    else:
        extra = [f"train.threads={threads}"] if threads else []
        config = load_config(None, [f"data.name={DATA}", f"train.seed={seed}", *overrides, *extra])
        print(f"\n=== {variant}: training for {minutes} minutes ===", flush=True)
        train(config, run, stop_overrides={"budget_minutes": minutes})
    summary_file = run / "summary.json" if (run / "summary.json").is_file() else run / "joint" / "summary.json"
    summary = json.loads(summary_file.read_text())
    model = condgan.load(run)
    pipeline = JointClasses(model) if model.task == "cgan" else model
    t0 = time.monotonic()
    report = evaluate_two_stage(pipeline, run / "eval", n_per_pair=n_per_pair, seed=seed, progress=False, source=str(run))
    m, sw = report["model"], report["swap_tests"]
    rates = {k: s["images_per_s"] for k, s in summary.get("stages", {}).items()} or summary["images_per_s"]
    return {"variant": variant, "run": str(run), "steps": summary["steps"], "images_per_s": rates,
            "train_minutes": summary["train_minutes"], "eval_seconds": round(time.monotonic() - t0, 1),
            **{k: m.get(k) for k in ("label_a_accuracy", "label_b_accuracy", "both_accuracy", "iou", "fid", "stage1_accuracy")},
            "swap_b_colour": sw["swap_b"]["colour_changes"], "swap_b_iou": sw["swap_b"]["iou_mean"],
            "swap_b_shape": sw["swap_b"]["iou_across_b"],
            "swap_a_category": sw["swap_a"]["category_changes"], "swap_a_colour_kept": sw["swap_a"]["colour_kept"],
            "real_floor": report["real_floor"], "report": str(run / "eval" / "report.md")}


def table(rows: list[dict]) -> str:
    lines = ["| " + " | ".join(label for _, label, _ in COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for r in rows:
        cells = []
        for key, _, fmt in COLUMNS:
            v = r.get(key)
            if isinstance(v, dict):
                v = "/".join(f"{x:.0f}" for x in v.values())
            cells.append("—" if v is None else fmt.format(v))
        lines.append("| " + " | ".join(cells) + " |")
    f = rows[0]["real_floor"]
    lines.append(f"| real test images | | | {f['label_a_accuracy']:.1%} | {f['label_b_accuracy']:.1%} | "
                 f"{f['both_accuracy']:.1%} | {f['iou']:.3f} | | | | | {f['fid']:.2f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=20.0, help="total training time of each variant (default 20)")
    parser.add_argument("--out", default="bench-results/two-stage", help="folder for runs and results")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated subset of {', '.join(VARIANTS)}")
    parser.add_argument("--threads", type=int, help="CPU threads per run (train.threads; 1 is faster on a shared machine)")
    parser.add_argument("--n-per-pair", type=int, default=100, help="images per (label A, label B) pair to score (default 100)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    unknown = set(args.variants.split(",")) - set(VARIANTS)
    if unknown:
        parser.error(f"unknown variant(s) {', '.join(sorted(unknown))}; choose from {', '.join(VARIANTS)}")
    rows = [run_variant(v, args.minutes, out, args.seed, args.n_per_pair, args.threads) for v in args.variants.split(",")]
    text = table(rows)
    print("\n" + text)
    (out / "results.json").write_text(json.dumps({"minutes": args.minutes, "rows": rows}, indent=2) + "\n")
    (out / "results.md").write_text(text + "\n")
    print(f"\nwritten: {out / 'results.json'}, {out / 'results.md'}; reports: " + ", ".join(r["report"] for r in rows))


if __name__ == "__main__":
    main()
