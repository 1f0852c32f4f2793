"""Time to quality: FID and conditioning accuracy against training minutes, default vs classic recipes.

    python benchmarks/time_to_quality.py --minutes 10 --points 5 --out bench-results/time_to_quality

Each recipe of benchmarks/compare.py trains in --points equal slices of
--minutes of training time: a first run, then `--resume` with that many more
minutes (resuming is exact, so this is one run with a checkpoint at every slice
boundary). After each slice its checkpoint is scored with condgan's evaluator
(FID, conditioning accuracy; --n-per-class images per class) — evaluation time
is not training time. In the same run it records each recipe's training images/s
(from its summaries) and sampling images/s (the evaluator's timed sampling).
Writes time_to_quality.json and time_to_quality.png (two panels: FID, log
scale, and class accuracy, against training minutes). Recipes run one after
another so they never compete for CPU cores.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from compare import RECIPES  # noqa: E402

from condgan.config import load_config  # noqa: E402
from condgan.training import train  # noqa: E402


def curve(name: str, config_path: Path, minutes: float, points: int, out: Path, n_per_class: int, seed: int,
          threads: int | None) -> dict:
    from condgan.eval import evaluate_run
    from condgan.training import checkpoint as ckpt

    run = out / name
    settings = {"minutes": minutes, "points": points, "n_per_class": n_per_class, "seed": seed, "threads": threads}
    if (run / "curve.json").is_file():
        finished = json.loads((run / "curve.json").read_text())
        if finished.get("settings") == settings:
            print(f"{name}: reusing the finished curve in {run} (delete it to measure again)")
            return finished
    if run.exists():
        print(f"{name}: {run} holds an unfinished curve or one with other settings; measuring again")
        shutil.rmtree(run)
    config = load_config(config_path, [f"train.seed={seed}", f"train.keep_checkpoints={points + 1}", f"train.threads={threads or 'null'}",
                                       "train.checkpoint_minutes=100000", "train.checkpoint_every=100000000"])
    config.train.steps = config.train.epochs = None
    rows, slice_minutes = [], minutes / points
    images_trained = seconds_trained = 0.0
    for i in range(points):
        print(f"\n=== {name}: training slice {i + 1}/{points} ({slice_minutes:.2f} min) ===", flush=True)
        if i == 0:
            summary = train(config, run, stop_overrides={"budget_minutes": slice_minutes}, quiet=True)
        else:
            summary = train(out=run, resume=True, stop_overrides={"budget_minutes": slice_minutes}, quiet=True)
        state = ckpt.safe_load(Path(summary["checkpoint"]))
        seconds = state["elapsed"] - seconds_trained
        images_trained += summary["images_per_s"] * seconds  # the summary's rate is of this slice
        seconds_trained = state["elapsed"]
        report = evaluate_run(summary["checkpoint"], n_per_class=n_per_class, seed=seed,
                              out_dir=run / f"eval-{i + 1}", progress=False)
        m = report["model"]
        n_sampled = n_per_class * len(report["classes"])
        rows.append({"train_minutes": round(state["elapsed"] / 60, 3), "step": state["step"], "fid": m["fid"],
                     "accuracy": m["conditioning_accuracy"], "per_class_fid": m["class_fid_mean"],
                     "sampling_images_per_s": round(n_sampled / max(report["timing_s"]["sampling"], 1e-9), 1)})
        print(f"{name} at {rows[-1]['train_minutes']:.2f} min (step {state['step']}): FID {m['fid']:.2f}, "
              f"class accuracy {m['conditioning_accuracy']:.1%}", flush=True)
    result = {"recipe": name, "settings": settings, "points": rows,
              "train_images_per_s": round(images_trained / max(seconds_trained, 1e-9), 1),
              "sampling_images_per_s": round(sum(r["sampling_images_per_s"] for r in rows) / len(rows), 1)}
    (run / "curve.json").write_text(json.dumps(result, indent=2))
    return result


def plot(curves: list[dict], path: Path, minutes: float) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import LogLocator, ScalarFormatter

    fig = Figure(figsize=(10, 4.8))
    FigureCanvasAgg(fig)
    ax_fid, ax_acc = fig.subplots(1, 2)
    for c in curves:
        x = [0.0] + [p["train_minutes"] for p in c["points"]]
        label = f"{c['recipe']} (train {c['train_images_per_s']:.0f} img/s, sample {c['sampling_images_per_s']:.0f} img/s)"
        ax_fid.plot(x[1:], [p["fid"] for p in c["points"]], marker="o", label=label)
        ax_acc.plot(x[1:], [100 * p["accuracy"] for p in c["points"]], marker="o", label=label)
    ax_fid.set(xlabel="training minutes", ylabel="FID (evaluator features; lower is better)", yscale="log", xlim=(0, minutes * 1.02))
    ax_acc.set(xlabel="training minutes", ylabel="conditioning accuracy, % (higher is better)", ylim=(0, 100), xlim=(0, minutes * 1.02))
    ax_fid.yaxis.set_major_locator(LogLocator(subs=(1, 2, 5)))
    ax_fid.yaxis.set_major_formatter(ScalarFormatter())
    ax_fid.yaxis.set_minor_formatter("")
    for ax in (ax_fid, ax_acc):
        ax.grid(alpha=0.3)
    handles, labels = ax_acc.get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=8, loc="lower center", ncol=1, frameon=False)
    fig.suptitle("Time to quality on Fashion-MNIST (one machine, recipes run one after another)", fontsize=10)
    fig.tight_layout(rect=(0, 0.02 + 0.04 * len(curves), 1, 1))
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10, help="training minutes per recipe (default 10)")
    parser.add_argument("--points", type=int, default=5, help="evaluations per recipe, evenly spaced (default 5)")
    parser.add_argument("--out", default="bench-results/time_to_quality", help="folder for runs, JSON and PNG")
    parser.add_argument("--recipes", default=",".join(RECIPES), help=f"comma-separated subset of {', '.join(RECIPES)}")
    parser.add_argument("--n-per-class", type=int, default=1000, help="generated images per class per evaluation (default 1000)")
    parser.add_argument("--seed", type=int, default=0, help="seed for training and sampling (default 0)")
    parser.add_argument("--threads", type=int, help="train.threads for every recipe (default: torch's choice; 1 on a "
                        "machine shared with other work, docs/benchmarks.md#speed)")
    args = parser.parse_args()
    if args.points < 1 or args.minutes <= 0:
        raise SystemExit("--points must be at least 1 and --minutes positive")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    curves = [curve(name, RECIPES[name], args.minutes, args.points, out, args.n_per_class, args.seed, args.threads)
              for name in args.recipes.split(",")]
    (out / "time_to_quality.json").write_text(json.dumps({"minutes": args.minutes, "points": args.points,
                                                          "n_per_class": args.n_per_class, "curves": curves}, indent=2))
    plot(curves, out / "time_to_quality.png", args.minutes)
    print("\n| recipe | training img/s | sampling img/s | " + " | ".join(f"FID / acc. @ {p['train_minutes']:.1f} min" for p in curves[0]["points"]) + " |")
    for c in curves:
        print(f"| {c['recipe']} | {c['train_images_per_s']:.0f} | {c['sampling_images_per_s']:.0f} | "
              + " | ".join(f"{p['fid']:.2f} / {p['accuracy']:.1%}" for p in c["points"]) + " |")
    print(f"\nwritten: {out / 'time_to_quality.json'}, {out / 'time_to_quality.png'}")


if __name__ == "__main__":
    main()
