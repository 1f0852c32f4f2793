"""Recall and diversity of the Fashion-MNIST default: G's class-term variants side by side, same budget.

    python benchmarks/class_loss.py --minutes 10 --out bench-results/class-loss

The default's weakest figures are recall and diversity: AC-GAN's class loss pulls every image of a class
towards the one D recognises best. Each variant below trains for the same wall-clock budget; `--parallel 2`
(the default) trains two at a time with one thread each, so every pair shares the machine alike. Each is
scored by `condgan eval` (1000 images per class) and one table is printed and written (JSON and markdown).
Finished runs are reused. State the machine's speed (images/s of the default, in the table) beside the figures.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from compare import headline  # noqa: E402

VARIANTS = {  # name -> overrides of the default recipe (at 28 px: aux_form adc, adc_weight 0.1, diversity_weight
              # 0.75 since the fourth session of 2026-11-30; twin 0.35 before it, ce before that)
    "default": [],
    "ce": ["train.aux_form=ce"],  # AC-GAN's term: the default before 2026-11-30
    "margin": ["train.aux_form=margin"],
    "twin": ["train.aux_form=twin"],
    "margin-div1": ["train.aux_form=margin", "train.diversity_weight=1.0"],
    "twin-half": ["train.aux_form=twin", "train.twin_weight=0.5"],
    "twin-half-ema": ["train.aux_form=twin", "train.twin_weight=0.5", "train.ema_decay=0.999"],
    "twin-0.35": ["train.aux_form=twin", "train.twin_weight=0.35"],
    "twin-0.35-b32": ["train.aux_form=twin", "train.twin_weight=0.35", "train.batch_size=32"],
    "twin-half-div0.25": ["train.aux_form=twin", "train.twin_weight=0.5", "train.diversity_weight=0.25"],
    "twin-half-late": ["train.aux_form=twin", "train.twin_weight=0.5", "train.fake_term_start=3000"],
    "twin-late": ["train.aux_form=twin", "train.fake_term_start=3000"],
    "twin-0.35-aug": ["train.aux_form=twin", "train.twin_weight=0.35", "train.augment=[translation,cutout]"],
    "twin-0.35-ema0.95": ["train.aux_form=twin", "train.twin_weight=0.35", "train.ema_decay=0.95"],
    "adc": ["train.aux_form=adc", "train.adc_weight=1.0"],
    "adc-half": ["train.aux_form=adc", "train.adc_weight=0.5"],
    "adc-0.25": ["train.aux_form=adc", "train.adc_weight=0.25"],
    "adc-0.35": ["train.aux_form=adc", "train.adc_weight=0.35"],
    "d2d": ["train.aux_form=d2d"],
    "adc-0": ["train.aux_form=adc", "train.adc_weight=0"],
    "adc-0.1": ["train.aux_form=adc", "train.adc_weight=0.1"],
    "adc-0.15-aux3.5": ["train.aux_form=adc", "train.adc_weight=0.15", "train.aux_weight=3.5"],
    "adc-0.15-div0.75": ["train.aux_form=adc", "train.adc_weight=0.15", "train.diversity_weight=0.75"],
    "adc-0.1-div0.75": ["train.aux_form=adc", "train.adc_weight=0.1", "train.diversity_weight=0.75"],
    "adc-0.1-div0.75-aux3.5": ["train.aux_form=adc", "train.adc_weight=0.1", "train.diversity_weight=0.75",
                               "train.aux_weight=3.5"],
}
COLUMNS = [("variant", "variant", "{}"), ("images_per_s", "images/s", "{:.0f}"), ("steps", "steps", "{}"),
           ("fid", "FID", "{:.2f}"), ("per_class_fid", "per-class FID", "{:.2f}"), ("accuracy", "class acc.", "{:.1%}"),
           ("precision", "precision", "{:.3f}"), ("recall", "recall", "{:.3f}"), ("diversity", "diversity", "{:.3f}")]


def train_all(names: list[str], variants: dict, minutes: float, out: Path, seed: int, parallel: int,
              threads: int | None = None) -> None:
    """Train the unfinished variants, `parallel` at a time, each a `condgan train` process with `threads` threads
    (default: one each when several run at once, else the default's own choice, train.threads null, as a user
    gets it)."""
    todo = [n for n in names if not (out / n / "summary.json").is_file()]
    threads = threads or (1 if parallel > 1 else None)
    while todo:
        batch, todo = todo[:parallel], todo[parallel:]
        procs = []
        for name in batch:
            print(f"=== {name}: training for {minutes} minutes ({' '.join(variants[name]) or 'the default'})", flush=True)
            log = open(out / f"{name}.log", "w")
            cmd = [sys.executable, "-m", "condgan", "train", "--out", str(out / name), "--budget-minutes", str(minutes),
                   "--set", f"train.seed={seed}", *([f"train.threads={threads}"] if threads else []), *variants[name]]
            procs.append((name, subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT), log))
        for name, proc, log in procs:
            if proc.wait() != 0:
                raise SystemExit(f"{name} failed: see {out / f'{name}.log'}")
            log.close()


def score_all(names: list[str], out: Path, n_per_class: int, seed: int, key: str, overrides: dict,
              reuse: bool = False) -> list[dict]:
    """Score each finished run with `condgan eval`: one row per run, named under `key`. reuse: a run whose
    eval/report.json is newer than its training summary keeps that report (same scoring settings assumed)."""
    from condgan.eval import evaluate_run

    rows = []
    for name in names:
        summary = json.loads((out / name / "summary.json").read_text())
        t0 = time.monotonic()
        kept = out / name / "eval" / "report.json"
        if reuse and kept.is_file() and kept.stat().st_mtime > (out / name / "summary.json").stat().st_mtime:
            report = json.loads(kept.read_text())
        else:
            report = evaluate_run(out / name, n_per_class=n_per_class, seed=seed, progress=False)
        rows.append({key: name, "overrides": overrides[name], "steps": summary["steps"],
                     "params": summary["params_G"] + summary["params_D"], "images_per_s": summary["images_per_s"],
                     "eval_seconds": round(time.monotonic() - t0, 1), **headline(report),
                     "report": str(out / name / "eval" / "report.md"), "grid": str(out / name / "samples" / "latest.png")})
        print(f"{name}: scored in {rows[-1]['eval_seconds']} s", flush=True)
    return rows


def markdown(rows: list[dict], columns: list[tuple[str, str, str]]) -> str:
    lines = ["| " + " | ".join(label for _, label, _ in columns) + " |", "|" + "---|" * len(columns)]
    return "\n".join(lines + ["| " + " | ".join(fmt.format(r[k]) for k, _, fmt in columns) + " |" for r in rows])


def run_name(variant: str, seed: int, base_seed: int) -> str:
    """A run's folder: the variant's name, with the seed appended unless it is the base seed (reuses older runs)."""
    return variant if seed == base_seed else f"{variant}-seed{seed}"


def seed_means(rows: list[dict], names: list[str], seeds: list[int], base_seed: int) -> list[dict]:
    """One row per variant: each numeric column averaged over its seeds."""
    by_run = {r["variant"]: r for r in rows}
    means = []
    for name in names:
        runs = [by_run[run_name(name, s, base_seed)] for s in seeds]
        mean = {k: sum(r[k] for r in runs) / len(runs) for k, _, _ in COLUMNS[1:]}
        means.append({"variant": name, **mean, "steps": round(mean["steps"])})
    return means


def add_run_arguments(parser, out: str) -> None:
    """The options of how variants are trained and scored, shared with quality.py."""
    parser.add_argument("--threads", type=int, help="threads of each training (default: 1 with --parallel > 1, else "
                        "the default's own choice)")
    parser.add_argument("--n-per-class", type=int, default=1000, help="generated images per class to score (default 1000)")
    parser.add_argument("--out", default=out, help=f"folder for runs and results (default {out})")
    parser.add_argument("--seed", type=int, default=0, help="training seed (runs named after the variant) and scoring seed")
    parser.add_argument("--seeds", help="train every variant once per seed, e.g. 0,1,2: seed-to-seed spread, and a mean row")
    parser.add_argument("--reuse-scores", action="store_true",
                        help="keep a finished run's eval/report.json instead of scoring it again (same --n-per-class and --seed)")


def train_and_score(args, variants: dict) -> tuple[Path, list[str], list[int], list[dict]]:
    """The named variants (args.variants, from `variants`) trained once per seed and scored: (out, names, seeds,
    one row per run). Shared by the benchmarks that compare cgan recipes (this one, quality.py)."""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    names = args.variants.split(",")
    unknown = [n for n in names if n not in variants]
    if unknown:
        raise SystemExit(f"unknown variant(s) {', '.join(unknown)}; choose from {', '.join(variants)}")
    seeds = [int(x) for x in args.seeds.split(",")] if args.seeds else [args.seed]
    runs = {run_name(n, seed, args.seed): variants[n] + [f"train.seed={seed}"] for seed in seeds for n in names}
    train_all(list(runs), runs, args.minutes, out, args.seed, args.parallel, args.threads)
    return out, names, seeds, score_all(list(runs), out, args.n_per_class, args.seed, "variant", runs, args.reuse_scores)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0, help="training budget of each variant (default 10)")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"which (default {','.join(VARIANTS)})")
    parser.add_argument("--parallel", type=int, default=2, help="variants trained at once, one thread each (default 2)")
    add_run_arguments(parser, "bench-results/class-loss")
    args = parser.parse_args()
    out, names, seeds, rows = train_and_score(args, VARIANTS)
    text = markdown(rows, COLUMNS)
    if len(seeds) > 1:
        means = seed_means(rows, names, seeds, args.seed)
        text += f"\n\nMean over training seeds {', '.join(map(str, seeds))}:\n\n" + markdown(means, COLUMNS)
    print("\n" + text)
    (out / "class_loss.json").write_text(json.dumps({"minutes": args.minutes, "parallel": args.parallel, "seeds": seeds,
                                                     "rows": rows, **({"means": means} if len(seeds) > 1 else {})},
                                                    indent=2) + "\n")
    (out / "class_loss.md").write_text(text + "\n")
    print(f"\nwritten: {out / 'class_loss.md'}, {out / 'class_loss.json'}")


if __name__ == "__main__":
    main()
