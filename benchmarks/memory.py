"""Memory and data speed of training on folders of 10,000 and 100,000 images at 128 px.

    python benchmarks/memory.py --root /work/bigdata --out bench-results/memory.json

1. Generates (once; resumable, and safe to run twice at the same time: every
   file is written under a temporary name, then renamed) a folder of 10 class
   sub-folders holding the largest --sizes of cheap synthetic 128 px PNGs; the
   smaller sizes are folders of hard links to the first images of each class.
2. For each size and each way of holding the data (data.cache=disk and
   data.cache=memory; with --baseline-src also the code at that path, e.g. the
   main branch before data.cache existed), one fresh process:
   - prepares the data as `condgan train` does (decoding every image into RAM,
     or building the disk cache, or opening a cache built before) and times it;
   - reads two epochs of batches without training (the data path alone): the
     first from a cold cache file (its pages dropped from the OS page cache
     with posix_fadvise), the second warm;
   - trains --steps steps of a small DCGAN through the one training loop;
   - reports its peak resident memory (ru_maxrss), which includes everything.
   Runs go one after another. The disk cache is deleted first and measured
   twice: the first run builds it (decoding, as the in-memory way does in every
   run), the second reuses it.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from multiprocessing import Pool
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLASSES = 10
SIZE = 128
MODEL = {"model.arch": "dcgan", "model.g_width": 8, "model.d_width": 8, "model.z_dim": 32, "train.batch_size": 64}


# ----- synthetic folders ----------------------------------------------------------------------------------
def _make_image(label: int, i: int):
    """A grey 128 px picture whose class shows: a shape per class at a random place and grey level, smooth
    (so a PNG of it is a few kB) with a faint per-image gradient."""
    import numpy as np
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(label * 1_000_003 + i)
    y, x = np.mgrid[0:SIZE, 0:SIZE]
    angle = rng.uniform(0, 2 * np.pi)
    background = (40 + 20 * np.sin(angle) * x / SIZE + 20 * np.cos(angle) * y / SIZE).astype(np.uint8)
    im = Image.fromarray(background, "L")
    draw = ImageDraw.Draw(im)
    r = int(rng.integers(18, 40))
    cx, cy = (int(v) for v in rng.integers(r, SIZE - r, 2))
    box, shade = (cx - r, cy - r, cx + r, cy + r), int(rng.integers(150, 255))
    kind = label % 5
    if kind == 0:
        draw.ellipse(box, fill=shade)
    elif kind == 1:
        draw.rectangle(box, fill=shade)
    elif kind == 2:
        draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=shade)
    elif kind == 3:
        draw.line([(cx - r, cy), (cx + r, cy)], fill=shade, width=max(2, r // 3))
    else:
        draw.ellipse(box, outline=shade, width=max(2, r // 4))
    if label >= 5:  # the second five classes carry a bar along the top as well
        draw.rectangle((0, 0, SIZE, 10), fill=shade // 2)
    return im


def _write_class_range(task: tuple[str, int, int, int]) -> int:
    folder, label, start, stop = task
    made = 0
    for i in range(start, stop):
        path = Path(folder) / f"{i:06d}.png"
        if path.exists():
            continue
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        _make_image(label, i).save(tmp, format="PNG")
        os.replace(tmp, path)
        made += 1
    return made


def generate(root: Path, sizes: list[int], jobs: int) -> dict[int, Path]:
    biggest = max(sizes)
    per_class = biggest // CLASSES
    full = root / f"n{biggest}"
    tasks = []
    for label in range(CLASSES):
        folder = full / f"class{label}"
        folder.mkdir(parents=True, exist_ok=True)
        tasks += [(str(folder), label, s, min(s + 1000, per_class)) for s in range(0, per_class, 1000)]
    t0 = time.monotonic()
    with Pool(jobs) as pool:
        made = sum(pool.imap_unordered(_write_class_range, tasks))
    if made:
        print(f"generated {made} images in {time.monotonic() - t0:.0f} s into {full}", flush=True)
    folders = {biggest: full}
    for n in sizes:
        if n == biggest:
            continue
        folder = root / f"n{n}"
        for label in range(CLASSES):
            (folder / f"class{label}").mkdir(parents=True, exist_ok=True)
            for i in range(n // CLASSES):
                link = folder / f"class{label}" / f"{i:06d}.png"
                if not link.exists():
                    os.link(full / f"class{label}" / f"{i:06d}.png", link)
        folders[n] = folder
    return folders


# ----- one measured process -------------------------------------------------------------------------------
def child(data: Path, mode: str, steps: int, out: Path) -> dict:
    """Runs in a fresh process: prepare the data, read two epochs, train; report times and peak memory."""
    import torch

    from condgan.config import load_config
    from condgan.training.trainer import Run

    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "1")))
    overrides = [f"data.name={data}", f"data.image_size={SIZE}", f"train.steps={steps}", "train.log_every=50",
                 "train.sample_every=100000", "train.checkpoint_every=100000", "train.checkpoint_minutes=1000"]
    overrides += [f"{k}={v}" for k, v in MODEL.items()]
    if mode != "baseline":  # the baseline code has no data.cache key (it always decodes into memory)
        overrides.append(f"data.cache={mode}")
    config = load_config(None, overrides)
    t0 = time.monotonic()
    run = Run(config.validate(), out, quiet=True)
    prepare_s = time.monotonic() - t0
    rss_prepared = _current_rss_mb()
    images = run.fields["image"]
    n = len(images)
    reads = []
    for epoch in range(2):
        if epoch == 0 and hasattr(images, "path"):  # cold: drop the cache file's pages from the OS page cache
            fd = os.open(images.path, os.O_RDONLY)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            os.close(fd)
        t1 = time.monotonic()
        for _ in range(run.batches_per_epoch):
            run._next_batch()
        reads.append(run.batches_per_epoch * run.batch_size / (time.monotonic() - t1))
    run.batches_done = 0
    summary = run.fit()
    return {"images": n, "mode": mode, "prepare_s": round(prepare_s, 1), "rss_after_prepare_mb": round(rss_prepared),
            "read_epoch1_images_per_s": round(reads[0]), "read_epoch2_images_per_s": round(reads[1]),
            "train_images_per_s": summary["images_per_s"], "train_steps": summary["steps"],
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}


def _current_rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def measure(data: Path, mode: str, steps: int, src: Path, cache: Path, threads: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        result_file = Path(tmp) / "result.json"
        code = (f"import json, sys; sys.path.insert(0, {str(ROOT / 'benchmarks')!r}); import memory; "
                f"r = memory.child(__import__('pathlib').Path({str(data)!r}), {mode!r}, {steps}, "
                f"__import__('pathlib').Path({str(Path(tmp) / 'run')!r})); "
                f"open({str(result_file)!r}, 'w').write(json.dumps(r))")
        env = {**os.environ, "PYTHONPATH": str(src), "CONDGAN_CACHE": str(cache), "CONDGAN_PROGRESS_SECONDS": "60",
               "BENCH_THREADS": str(threads), "OMP_NUM_THREADS": str(threads)}
        t0 = time.monotonic()
        proc = subprocess.Popen([sys.executable, "-c", code], env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        if status != 0:
            raise SystemExit(f"the {mode} run on {data} failed (status {status})")
        result = json.loads(result_file.read_text())
        result["wall_s"] = round(time.monotonic() - t0, 1)
        result["peak_rss_mb_wait4"] = round(usage.ru_maxrss / 1024)
        return result


def table(rows: list[dict]) -> str:
    lines = ["| images | data held | peak RSS (MB) | RSS after data ready (MB) | data ready in (s) | "
             "read epoch 1 (cold) img/s | read epoch 2 img/s | training img/s |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['images']:,} | {r['label']} | {r['peak_rss_mb']:,} | {r['rss_after_prepare_mb']:,} | {r['prepare_s']} | "
                     f"{r['read_epoch1_images_per_s']:,} | {r['read_epoch2_images_per_s']:,} | {r['train_images_per_s']} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default="/work/bigdata", help="where the synthetic folders go (not the repository)")
    parser.add_argument("--sizes", default="10000,100000", help="dataset sizes (default 10000,100000)")
    parser.add_argument("--steps", type=int, default=300, help="training steps per run (default 300)")
    parser.add_argument("--modes", default="disk,memory", help="data.cache values to measure (default disk,memory)")
    parser.add_argument("--baseline-src", help="also measure the code in this src/ folder, e.g. from before data.cache: "
                        "git archive 4e7ed19 src | tar -x -C /tmp/base, then --baseline-src /tmp/base/src")
    parser.add_argument("--jobs", type=int, default=2, help="processes generating images (default 2)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the measured process (default 1)")
    parser.add_argument("--out", default="bench-results/memory.json", help="JSON results (a .md table beside it)")
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    folders = generate(Path(args.root), sizes, args.jobs)
    cache = Path(args.root) / "cache"  # the decoded-image cache of these runs (CONDGAN_CACHE), built afresh
    shutil.rmtree(cache, ignore_errors=True)
    plan = []
    for m in [m for m in args.modes.split(",") if m]:  # --modes "" measures only --baseline-src
        plan += [(m, ROOT / "src", "data.cache=disk, cache built"), (m, ROOT / "src", "data.cache=disk, cache reused")] \
            if m == "disk" else [(m, ROOT / "src", f"data.cache={m}")]
    if args.baseline_src:
        plan.append(("baseline", Path(args.baseline_src), f"in memory, code in {args.baseline_src}"))
    rows = []
    for n in sizes:
        for mode, src, label in plan:
            print(f"--- {n} images, {label}", flush=True)
            r = measure(folders[n], mode, args.steps, src, cache, args.threads)
            r["label"] = label
            print(json.dumps(r), flush=True)
            rows.append(r)
    text = table(rows)
    print("\n" + text)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"image_size": SIZE, "model": MODEL, "steps": args.steps, "rows": rows}, indent=2))
    out.with_suffix(".md").write_text(text + "\n")
    print(f"\nwritten: {out}, {out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
