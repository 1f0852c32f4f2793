"""Evaluation-suite benchmark on Fashion-MNIST: evaluator accuracy, real-data floor, scoring speed.

    .venv/bin/python benchmarks/eval_speed.py [--out bench-results/eval_speed.json]

1. finds (or trains, once) the Fashion-MNIST evaluator and prints its test accuracy;
2. builds (or loads) the cached real side: train/test features, test->train distances;
3. scores 10,000 "generated" 28x28 images and times it. No trained generator is
   needed: they are the real test images with light pixel noise (so not exact
   copies), which also gives the real-data floor table;
4. scores the same images with their labels shifted by one class, the label-
   ignoring model: overall FID barely moves, per-class FID and conditioning
   accuracy collapse.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see condgan/__init__.py

import torch  # noqa: E402

from condgan.data import load_dataset, to_float, to_uint8  # noqa: E402
from condgan.eval.metrics import compute_metrics, look, real_floor  # noqa: E402
from condgan.eval.report import prepare  # noqa: E402

ROWS = ["fid", "kid", "class_fid_mean", "conditioning_accuracy", "precision", "recall", "density", "coverage",
        "diversity_ratio_mean", "copy_fraction", "exact_copies", "nn_distance_ratio"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="bench-results/eval_speed.json", help="where to write the JSON results")
    parser.add_argument("--n", type=int, default=10_000, help="number of images to score (default 10000)")
    args = parser.parse_args()
    cfg = {"name": "fashion-mnist"}
    classes = load_dataset("fashion-mnist", split="test").class_names

    t0 = time.time()
    ctx = prepare(cfg, classes)
    prepare_s = time.time() - t0

    test = load_dataset("fashion-mnist", split="test")
    g = torch.Generator().manual_seed(0)
    idx = torch.arange(args.n) % len(test)
    noisy = to_uint8((to_float(test.images[idx]) + 0.04 * torch.randn(len(idx), 1, 28, 28, generator=g)).clamp(-1, 1))
    labels = test.labels[idx]

    t0 = time.time()
    scored = compute_metrics(look(ctx.ev, noisy, labels, ctx.train.images), ctx.ref, ctx.class_map)
    score_s = time.time() - t0
    shuffled = compute_metrics(look(ctx.ev, noisy, (labels + 1) % len(classes), ctx.train.images, progress=False),
                               ctx.ref, ctx.class_map)
    t0 = time.time()
    floor = compute_metrics(real_floor(ctx.ref), ctx.ref, ctx.class_map)
    floor_s = time.time() - t0

    print(f"\nevaluator: {ctx.ev.path}  test accuracy {ctx.ev.info['test_accuracy']:.2%}  "
          f"(trained in {ctx.ev.info['train_seconds']} s, {ctx.ev.info['epochs']} epochs)")
    print(f"prepare (evaluator + real side, cached after the first run): {prepare_s:.1f} s")
    print(f"scoring {args.n} images of 28x28: {score_s:.1f} s   (real floor from cached features: {floor_s:.1f} s)\n")
    header = f"{'metric':<24}{'real floor':>12}{'test+noise':>12}{'labels shifted':>16}"
    print(header + "\n" + "-" * len(header))
    for key in ROWS:
        cells = [floor[key], scored[key], shuffled[key]]
        print(f"{key:<24}" + "".join(f"{c:>{w}.4f}" if isinstance(c, float) else f"{str(c):>{w}}"
                                     for c, w in zip(cells, (12, 12, 16))))
    result = {
        "machine": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(), "platform": platform.platform(),
                    "python": sys.version.split()[0], "torch": torch.__version__},
        "evaluator": {k: ctx.ev.info.get(k) for k in ("test_accuracy", "test_accuracy_per_class", "epochs", "seed",
                                                       "train_seconds", "key")},
        "seconds": {"prepare": round(prepare_s, 2), "score_n_images": round(score_s, 2), "floor": round(floor_s, 2)},
        "n_images": args.n,
        "real_floor": {k: floor[k] for k in ROWS},
        "test_plus_noise": {k: scored[k] for k in ROWS},
        "labels_shifted": {k: shuffled[k] for k in ROWS},
        "per_class_floor": {"class": classes, **floor["per_class"]},
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
