"""What G_ema's own BatchNorm statistics buy (train.standing_stats): trained cgan runs scored both ways.

    python benchmarks/standing_stats.py RUN [RUN ...] --images 1024,4096 --out bench-results/standing

The weights are the same in both scorings, so each pair differs only in the statistics: "G's" (copied from
G at the last step, what condgan did before train.standing_stats), "as saved" (what the run's checkpoint
holds: G's for a run made before, its own for one made since), and "own N" (measured here over N images with
labels drawn evenly and seeded noise, as GANStep.standing_statistics does during training). Each scored with
`condgan eval`'s evaluator (1000 images per class by default). Prints a table and writes JSON; no training.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
from class_loss import markdown  # noqa: E402
from compare import headline  # noqa: E402

COLUMNS = [("run", "run", "{}"), ("statistics", "statistics", "{}"), ("fid", "FID", "{:.2f}"),
           ("per_class_fid", "per-class FID", "{:.2f}"), ("accuracy", "class acc.", "{:.1%}"),
           ("precision", "precision", "{:.3f}"), ("recall", "recall", "{:.3f}"), ("diversity", "diversity", "{:.3f}")]


def is_statistic(key: str) -> bool:
    return "running_" in key or key.endswith("num_batches_tracked")


def measure_own(gen, n_images: int, batch: int, seed: int) -> None:
    """G_ema's statistics over n_images of its own, by the training code's function (labels drawn evenly)."""
    from condgan.tasks.gan import standing_statistics

    g = torch.Generator().manual_seed(seed)
    classes = len(gen.class_names)
    batches = [[torch.randint(classes, (min(batch, n_images - k),), generator=g)] for k in range(0, n_images, batch)]
    standing_statistics(gen.net, batches, gen.z_dim, g)


def g_statistics(run: Path) -> dict[str, torch.Tensor]:
    """G's BatchNorm statistics at the run's last checkpoint (what G_ema copied before train.standing_stats)."""
    from condgan.training import checkpoint as ckpt

    state = ckpt.Checkpoint.latest(run / "checkpoints").state
    return {k: v for k, v in state["G"].items() if is_statistic(k)}


def score(run: Path, how: str, g_stats: dict, n_per_class: int, batch: int, seed: int) -> dict | None:
    """One scoring of the run's G_ema with the statistics `how` names; None for "as saved" when the checkpoint's
    are G's (a run made before train.standing_stats: the same scoring as "G's")."""
    from condgan.eval.report import evaluate_generator
    from condgan.pipelines import ClassConditional

    gen = ClassConditional.from_pretrained(run)
    saved = gen.net.state_dict()
    if how == "as saved" and all(torch.equal(saved[k], v) for k, v in g_stats.items()):
        return None
    if how == "G's":
        gen.net.load_state_dict(g_stats, strict=False)
    elif how.startswith("own"):
        measure_own(gen, int(how.split()[1]), batch, seed)
    t0 = time.monotonic()
    folder = run / ("eval-" + {"G's": "g", "as saved": "saved"}.get(how, how.replace(" ", "")))
    with torch.no_grad():
        report = evaluate_generator(gen, folder, n_per_class, seed, progress=False, source=str(run))
    return {"run": run.name, "path": str(run), "statistics": how, "eval_seconds": round(time.monotonic() - t0, 1),
            **headline(report)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path, help="cgan run directories")
    parser.add_argument("--images", default="1024", help="numbers of images to measure G_ema's statistics over, "
                        "comma-separated (default 1024, the cgan's train.standing_stats)")
    parser.add_argument("--batch", type=int, default=64, help="images per batch while measuring (default 64)")
    parser.add_argument("--n-per-class", type=int, default=1000, help="images per class to score (default 1000)")
    parser.add_argument("--seed", type=int, default=0, help="sampling and measuring seed (default 0)")
    parser.add_argument("--own-only", action="store_true", help="score only the measured statistics (the "
                        "references, G's and as saved, from an earlier invocation)")
    parser.add_argument("--out", type=Path, default=Path("bench-results/standing"), help="folder for the table and JSON")
    args = parser.parse_args()
    ways = [*([] if args.own_only else ["G's", "as saved"]), *(f"own {int(n)}" for n in args.images.split(","))]
    rows = []
    for run in args.runs:
        g_stats = g_statistics(run)
        for how in ways:
            row = score(run, how, g_stats, args.n_per_class, args.batch, args.seed)
            if row is None:
                continue
            rows.append(row)
            print(f"{run.name}, {how}: FID {rows[-1]['fid']:.3f} ({rows[-1]['eval_seconds']} s)", flush=True)
    text = markdown(rows, COLUMNS)
    print("\n" + text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "standing.json").write_text(json.dumps({"ways": ways, "rows": rows}, indent=2) + "\n")
    (args.out / "standing.md").write_text(text + "\n")
    print(f"\nwritten: {args.out / 'standing.md'}, {args.out / 'standing.json'}")


if __name__ == "__main__":
    main()
