"""Similarity recipes on Fashion-MNIST, and "more like this one" without labels.

    python benchmarks/similarity.py --minutes 3 --out bench-results/similarity
    python benchmarks/similarity.py --minutes 3 --exemplar-minutes 10 --out bench-results/similarity
    python benchmarks/similarity.py --minutes 3 --versions before,after --out bench-results/similarity
    python benchmarks/similarity.py --minutes 10 --versions before,after --parallel --exemplar-minutes 15 \
        --out bench-results/similarity             # issue 25's table: both versions at once, one thread each

Trains each recipe of the similarity task (siamese, triplet, frozen evaluator
backbone + head, self-supervised) for the same budget, one after another so
they never compete for cores, and scores each on the 10,000 Fashion-MNIST test
images (never seen in training) with `condgan eval`'s embedder evaluation:
verification accuracy (10-fold CV threshold), ROC AUC, EER, precision@1,
R-precision, MAP@R, and ROC AUC, EER and precision@1 again with one side of
each pair (each query) flipped, and shifted (eval/invariance.py). The
self-supervised recipe is trained without labels. --versions before,after
trains each recipe also as it was before issue 25 (no augmentation; selfsup's
one fixed view), one table for both.

With --exemplar-minutes, it then trains the exemplar generator conditioned on
the self-supervised embedder (so no label is used anywhere in training) and
evaluates it with exemplars from the test split. Finished runs, and their scores, are reused.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import condgan  # noqa: E402
from condgan.config import Config, DataConfig, load_config  # noqa: E402
from condgan.eval.exemplar import evaluate_exemplar  # noqa: E402
from condgan.eval.similarity import evaluate_embedder  # noqa: E402
from condgan.tasks.similarity import load_images  # noqa: E402
from condgan.training import train  # noqa: E402

RECIPES = {  # recipe -> overrides (the rest are the defaults)
    "siamese": [],
    "triplet": [],
    "frozen": [],
    "selfsup": ["train.batch_size=256"],  # NT-Xent wants many negatives in a batch
}
# --versions before: each recipe as it was before issue 25 (no augmentation; selfsup: its one fixed view, temperature
# 0.1), beside today's
BEFORE = {"siamese": ["similarity.augment=[]", "train.lr_decay=0"], "triplet": ["similarity.augment=[]", "train.lr_decay=0"],
          "frozen": ["similarity.augment=[]", "train.lr_decay=0"],
          "selfsup": ["similarity.augment=[classic]", "similarity.temperature=0.1", "similarity.neighbour_views=0",
                      "similarity.features=0"]}
COLUMNS = [("recipe", "recipe", "{}"), ("labels", "labels used", "{}"), ("train_minutes", "train min", "{:.1f}"),
           ("images_per_s", "images/s", "{:.0f}"), ("accuracy", "verification acc.", "{:.1%}"), ("roc_auc", "ROC AUC", "{:.4f}"),
           ("eer", "EER", "{:.1%}"), ("roc_auc_flipped", "AUC flipped", "{:.4f}"), ("eer_flipped", "EER flipped", "{:.1%}"),
           ("roc_auc_shifted", "AUC shifted", "{:.4f}"), ("eer_shifted", "EER shifted", "{:.1%}"),
           ("precision_at_1", "P@1", "{:.1%}"), ("precision_at_1_flipped", "P@1 flipped", "{:.1%}"),
           ("precision_at_1_shifted", "P@1 shifted", "{:.1%}"), ("r_precision", "R-precision", "{:.1%}"),
           ("map_at_r", "MAP@R", "{:.1%}")]


THREADS: list[str] = []  # ["train.threads=N"] from --threads
EXTRA: list[str] = []  # config overrides from --set, for every run


def train_once(run: Path, overrides: list[str], minutes: float) -> dict:
    if (run / "summary.json").is_file():
        print(f"{run}: reusing the finished run (delete it to retrain)")
        return json.loads((run / "summary.json").read_text())
    shutil.rmtree(run, ignore_errors=True)
    print(f"\n=== {run.name}: training for {minutes} minutes ===", flush=True)
    return train(load_config(None, [*overrides, *THREADS, *EXTRA]), run, stop_overrides={"budget_minutes": minutes})


def run_recipe(recipe: str, minutes: float, out: Path, seed: int, test, version: str = "after") -> dict:
    run = out / (recipe if version == "after" else f"{recipe}-{version}")
    summary = train_once(run, ["task=similarity", f"similarity.recipe={recipe}", f"train.seed={seed}",
                               "train.checkpoint_minutes=2", *RECIPES[recipe],
                               *(BEFORE[recipe] if version == "before" else [])], minutes)
    t0 = time.monotonic()
    kept = run / "eval" / "report.json"
    if kept.is_file() and kept.stat().st_mtime >= (run / "summary.json").stat().st_mtime:  # scored after it finished
        report = json.loads(kept.read_text())
    else:
        report = evaluate_embedder(condgan.load(run), test.images, test.labels, test.class_names, run / "eval", seed=seed,
                                   progress=False, source=str(run))
    return {"recipe": recipe if version == "after" else f"{recipe} ({version})", "version": version,
            "labels": "no" if recipe == "selfsup" else "yes", "steps": summary["steps"],
            "train_minutes": summary["train_minutes"], "images_per_s": summary["images_per_s"],
            "eval_seconds": round(time.monotonic() - t0, 1), **report["model"], "report": str(run / "eval" / "report.md")}


def table(rows: list[dict]) -> str:
    lines = ["| " + " | ".join(label for _, label, _ in COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for r in rows:
        lines.append("| " + " | ".join("—" if r.get(k) is None else fmt.format(r[k]) for k, _, fmt in COLUMNS) + " |")
    return "\n".join(lines)


def run_exemplar(minutes: float, out: Path, seed: int, exemplars: int) -> dict:
    run = out / "exemplar"
    summary = train_once(run, ["task=exemplar", f"similarity.embedder={out / 'selfsup'}", f"train.seed={seed}",
                               "train.checkpoint_minutes=2"], minutes)
    t0 = time.monotonic()
    kept = run / "eval" / "report.json"
    report = json.loads(kept.read_text()) if kept.is_file() and kept.stat().st_mtime >= (run / "summary.json").stat().st_mtime \
        else evaluate_exemplar(condgan.load(run), Config(data=DataConfig(name="fashion-mnist")), run / "eval", exemplars,
                               seed=seed, progress=False, source=str(run))
    return {"steps": summary["steps"], "train_minutes": summary["train_minutes"], "images_per_s": summary["images_per_s"],
            "eval_seconds": round(time.monotonic() - t0, 1), **report["model"], "report": str(run / "eval" / "report.md"),
            "sheet": str(run / "eval" / "exemplars.png")}


def both_at_once(args) -> None:
    """Train "before" and "after" side by side, one thread each; the table is then made from the finished runs."""
    if args.versions.split(",") != ["before", "after"]:
        raise SystemExit("--parallel is for --versions before,after")
    common = [sys.executable, __file__, "--minutes", str(args.minutes), "--recipes", args.recipes, "--out", args.out,
              "--seed", str(args.seed), "--threads", "1", *[f"--set={o}" for o in args.set]]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # scoring too: a second thread would only spin beside the other
    procs = [subprocess.Popen([*common, "--versions", "before"], env=env),
             subprocess.Popen([*common, "--versions", "after", "--exemplar-minutes", str(args.exemplar_minutes),
                               "--exemplars", str(args.exemplars)], env=env)]
    if any(p.wait() != 0 for p in procs):
        raise SystemExit("a version's benchmark failed (its output is above)")
    args.threads = None  # what is left is reading the finished runs and their scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=5.0, help="training budget of each recipe (default 5)")
    parser.add_argument("--recipes", default=",".join(RECIPES), help=f"which recipes (default {','.join(RECIPES)})")
    parser.add_argument("--versions", default="after", help="after (default: today's recipes), before (each as it was "
                        "before issue 25: no augmentation, selfsup's one fixed view) or before,after (both, one table)")
    parser.add_argument("--exemplar-minutes", type=float, default=0.0, help="then train the exemplar generator on the "
                        "selfsup embedder for this long (default 0: skip)")
    parser.add_argument("--exemplars", type=int, default=500, help="test exemplars in the exemplar evaluation (default 500)")
    parser.add_argument("--out", default="bench-results/similarity", help="folder for runs and results")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, help="CPU threads of each training (default: torch's choice); 1 when "
                        "something else runs beside it (set OMP_NUM_THREADS=1 too, for the scoring), or see --parallel")
    parser.add_argument("--parallel", action="store_true", help="with --versions before,after: train the two versions "
                        "at the same time, one thread each (two processes, each beside the other alike), then one table")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a config override for every "
                        "run (repeatable), e.g. train.precision=fp32 to compare with the default's precision; give such "
                        "a comparison its own --out")
    args = parser.parse_args()
    EXTRA.extend(args.set)
    if args.parallel:
        both_at_once(args)
    if args.threads:
        THREADS.append(f"train.threads={args.threads}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    test = load_images(Config(data=DataConfig(name="fashion-mnist")), "test")
    versions = args.versions.split(",")
    if not set(versions) <= {"before", "after"}:
        parser.error(f"--versions takes before, after or both, not {args.versions!r}")
    rows = [run_recipe(r, args.minutes, out, args.seed, test, v) for r in args.recipes.split(",") for v in versions]
    text = table(rows)
    print("\n" + text)
    results = {"minutes": args.minutes, "rows": rows}
    if args.exemplar_minutes > 0:
        ex = run_exemplar(args.exemplar_minutes, out, args.seed, args.exemplars)
        results["exemplar"] = ex
        selfsup = next((r for r in rows if r["recipe"] == "selfsup"), None)
        text += (f"\n\nexemplar generator (selfsup embedder {selfsup['train_minutes'] if selfsup else '?'} min + generator "
                 f"{ex['train_minutes']} min, no labels): similarity to exemplar {ex['exemplar_similarity']:.3f} (real "
                 f"neighbours {ex['neighbour_similarity']:.3f}, random real pairs {ex['random_pair_similarity']:.3f}); "
                 f"evaluator class agreement {ex['class_agreement']:.1%} (real neighbours {ex['neighbour_class_agreement']:.1%}); "
                 f"diversity {ex['diversity_ratio']:.2f} of the real neighbours'; suspected copies {ex['suspected_copies']:.2%} "
                 f"(real floor {ex['suspected_copies_floor']:.2%})")
        print(text.split("\n\n")[-1])
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "results.md").write_text(text + "\n")
    print(f"\nwritten: {out / 'results.json'}, {out / 'results.md'}")


if __name__ == "__main__":
    main()
