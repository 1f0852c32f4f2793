"""All of the default's quality figures at once: levers screened against today's default, same budget, same seeds.

    python benchmarks/quality.py --minutes 3 --out bench-results/quality                  # the screen, seed 0
    python benchmarks/quality.py --minutes 10 --variants default,ema0.999 --seeds 0,1,2 \\
        --out bench-results/quality-10min                                                # finalists

Issue 23 asks for FID, per-class FID, recall, diversity and class accuracy to improve together: each earlier change
of G's class term traded one of them for another (benchmarks/class_loss.py). Every lever below is a set of config
overrides of the Fashion-MNIST default; each trains for the same wall-clock budget, alone on the machine with
every core (`--parallel 1`, the default: the targets are for a run alone, and on the 2-core development machine two
one-thread runs at once made 431 + 431 images/s against about 1,100 for one run alone), and is scored by `condgan
eval` (1000 images per class). The table marks each variant's mean against the targets and lists the figures that fall below the
default's on the same seeds. Finished runs (and with --reuse-scores their scores) are reused.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from class_loss import COLUMNS, add_run_arguments, markdown, run_name, seed_means, train_and_score  # noqa: E402
from compare import headline  # noqa: E402

LEVERS = {  # name -> overrides of the default (resnet G/D width 16, batch 64, hinge, ADC 0.1, EMA 0.99 from step 500)
    "default": [],
    "ema0.995": ["train.ema_decay=0.995"],  # a longer average of G's weights (StyleGAN2-ADA: a 10k-image half-life)
    "ema0.999": ["train.ema_decay=0.999"],
    "g24": ["model.g_width=24"],  # capacity: a wider G, then a wider D, then both
    "d24": ["model.d_width=24"],
    "w24": ["model.g_width=24", "model.d_width=24"],
    "g32": ["model.g_width=32"],
    "aux2": ["train.aux_weight=2.0"],  # a weaker class pull: less caricature (accuracy 97% against real 92%)
    "aux1.5": ["train.aux_weight=1.5"],
    "b128": ["train.batch_size=128"],  # fewer, better-averaged steps
    "lr-half": ["train.lr_g=2e-4", "train.lr_d=4e-4"],
    "lr-1.5x": ["train.lr_g=6e-4", "train.lr_d=1.2e-3"],
    "diffaug": ["train.augment=[translation]"],  # DiffAugment on D's inputs (StudioGAN: helps even on full data)
    "d2": ["train.d_steps=2"],
    "decay0.3": ["train.lr_decay=0.3"],  # both learning rates fall linearly to 0 over the last 30% of the run
    "r1-0.1": ["train.r1_weight=0.1"],  # zero-centred gradient penalty on real images (R1), every 4th step
    "r1-1": ["train.r1_weight=1.0"],
    "lecam0.3": ["train.lecam_weight=0.3"],  # LeCam on D's scores (made for small data; Fashion-MNIST is not)
    "div1": ["train.diversity_weight=1.0"],  # a stronger mode-seeking term (0.75 by default with adc)
    "mbstd4": ["model.d_mbstd=4"],  # D sees each group of 4 images' feature spread (ProGAN): pushes G to vary
    "z128": ["model.z_dim=128"],
    "skipz": ["model.g_skip_z=true"],  # the noise steers every G block (BigGAN), not only the first layer  # more noise dimensions for G to spread a class over
    "compile": ["train.compile=true"],  # more steps in the same minutes, once torch.compile's first minutes are paid
}
TARGETS = {"fid": ("<=", 0.35), "per_class_fid": ("<=", 0.9), "recall": (">=", 0.82), "diversity": (">=", 0.95),
           "accuracy": (">=", 0.95)}
LOWER_IS_BETTER = {"fid", "per_class_fid"}


def score_truncated(seeds: list[int], base_seed: int, out: Path, n_per_class: int, truncations: list[float],
                    reuse: bool) -> tuple[list[dict], list[str]]:
    """The default's runs scored again with truncated latents (the knob is off by default; this says what it buys):
    one row per run and threshold, named `default@tT` so the seed means treat it as a variant."""
    from condgan.eval import evaluate_run

    rows, names = [], [f"default@t{t:g}" for t in truncations]
    for t, name in zip(truncations, names):
        for seed in seeds:
            run = out / run_name("default", seed, base_seed)
            summary = json.loads((run / "summary.json").read_text())
            kept = run / f"eval-truncation{t:g}" / "report.json"
            report = json.loads(kept.read_text()) if reuse and kept.is_file() else evaluate_run(
                run, n_per_class=n_per_class, seed=base_seed, out_dir=kept.parent, progress=False, truncation=t)
            rows.append({"variant": run_name(name, seed, base_seed), "overrides": [f"--truncation {t:g}"],
                         "steps": summary["steps"], "images_per_s": summary["images_per_s"], **headline(report)})
    return rows, names


def verdicts(means: list[dict]) -> str:
    """For each variant's mean: the targets it meets, and the figures worse than the default's (same seeds)."""
    base = next((m for m in means if m["variant"] == "default"), None)
    lines = []
    for m in means:
        met = [k for k, (op, v) in TARGETS.items() if (m[k] <= v if op == "<=" else m[k] >= v)]
        line = f"- {m['variant']}: targets met {len(met)}/{len(TARGETS)} ({', '.join(met) or 'none'})"
        if base is not None and m is not base:
            worse = [k for k in TARGETS if (m[k] > base[k] if k in LOWER_IS_BETTER else m[k] < base[k])]
            line += f"; below the default on {', '.join(worse) or 'nothing'}"
        lines.append(line)
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=3.0, help="training budget of each variant (default 3: a screen)")
    parser.add_argument("--variants", default=",".join(LEVERS), help=f"which (default all: {','.join(LEVERS)})")
    parser.add_argument("--parallel", type=int, default=1, help="variants trained at once, one thread each (default 1: "
                        "one at a time, every core)")
    add_run_arguments(parser, "bench-results/quality")
    parser.add_argument("--truncation", help="also score the default's runs with truncated latents at these "
                        "thresholds, e.g. 1.5,2.0 (sampling's --truncation; not a training change)")
    args = parser.parse_args()
    out, names, seeds, rows = train_and_score(args, LEVERS)
    if args.truncation:
        if "default" not in names:
            raise SystemExit("--truncation scores the default's runs: include default in --variants")
        extra, extra_names = score_truncated(seeds, args.seed, out, args.n_per_class,
                                             [float(t) for t in args.truncation.split(",")], args.reuse_scores)
        rows, names = rows + extra, names + extra_names
    means = seed_means(rows, names, seeds, args.seed)
    text = markdown(rows, COLUMNS)
    if len(seeds) > 1:
        text += f"\n\nMean over training seeds {', '.join(map(str, seeds))}:\n\n" + markdown(means, COLUMNS)
    text += "\n\nAgainst the targets (FID <= 0.35, per-class FID <= 0.9, recall >= 0.82, diversity >= 0.95, accuracy " \
            ">= 95%):\n\n" + verdicts(means)
    print("\n" + text)
    (out / "quality.json").write_text(json.dumps({"minutes": args.minutes, "parallel": args.parallel, "seeds": seeds,
                                                  "targets": TARGETS, "rows": rows, "means": means}, indent=2) + "\n")
    (out / "quality.md").write_text(text + "\n")
    print(f"\nwritten: {out / 'quality.md'}, {out / 'quality.json'}")


if __name__ == "__main__":
    main()
