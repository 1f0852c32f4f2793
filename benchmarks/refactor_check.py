"""Prove a refactor changed nothing: train every task a few steps with one thread, hash what it wrote.

    python benchmarks/refactor_check.py --out before.json      # on the old commit
    python benchmarks/refactor_check.py --out after.json       # on the new one
    python benchmarks/refactor_check.py --compare before.json after.json

Each run goes through the command line (the one interface both commits share), with one thread and
train.deterministic. The hashes cover every tensor of the last checkpoint's state (weights, EMA,
optimiser moments) and metrics.jsonl (every step logged) without its two wall-clock columns (images_per_s,
elapsed_s).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

RUNS = {  # name: (train arguments, run directories whose last checkpoint is hashed)
    "cgan": (["--steps", "60"], ["."]),
    "translate": (["--task", "translate", "--data", "fashion-mnist-edges", "--steps", "20"], ["."]),
    "two-stage": (["--task", "two-stage", "--data", "fashion-mnist-colours", "--steps", "10"], ["stage1", "stage2", "joint"]),
    # the same in fp32: before issue 22 the joint stage ignored train.precision and always trained in fp32
    "two-stage-fp32": (["--task", "two-stage", "--data", "fashion-mnist-colours", "--steps", "10", "--set",
                        "train.precision=fp32"], ["stage1", "stage2", "joint"]),
    "similarity": (["--task", "similarity", "--steps", "20"], ["."]),
    "exemplar": (["--task", "exemplar", "--embedder", "{similarity}", "--steps", "20", "--set", "train.sample_every=10"], ["."]),
}


def tensor_hashes(obj, prefix: str = "") -> dict[str, str]:
    out = {}
    if isinstance(obj, torch.Tensor):
        t = obj.detach().cpu().contiguous().reshape(-1)
        out[prefix] = hashlib.sha256(str(t.dtype).encode() + str(tuple(t.shape)).encode() + t.view(torch.uint8).numpy().tobytes()
                                     if t.numel() else b"empty").hexdigest()[:16]
    elif isinstance(obj, dict):
        for k, v in obj.items():
            out.update(tensor_hashes(v, f"{prefix}/{k}"))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            out.update(tensor_hashes(v, f"{prefix}/{i}"))
    elif isinstance(obj, (int, float)) and prefix.endswith("steps_done"):
        out[prefix] = str(obj)
    return out


def metrics_hash(path: Path) -> str:
    lines = []
    for line in path.read_text().splitlines():
        record = json.loads(line)
        record.pop("images_per_s", None)
        record.pop("elapsed_s", None)
        lines.append(json.dumps(record, sort_keys=True))
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16]


def run_all(root: Path, only: list[str]) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CONDGAN_PROGRESS_SECONDS": "3600"}
    results = {}
    for name, (args, dirs) in RUNS.items():
        if only and name not in only:
            continue
        out = root / name
        args = [a.format(similarity=root / "similarity") for a in args]
        cmd = [sys.executable, "-m", "condgan", "train", *args, "--out", str(out), "--quiet", "--set",
               "train.threads=1", "train.deterministic=true", "train.checkpoint_every=1000000", "train.log_every=1"]
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if done.returncode:
            raise SystemExit(f"{name} failed:\n{done.stderr[-2000:]}")
        entry = {}
        for d in dirs:
            run = out / d
            ckpts = sorted((run / "checkpoints").glob("step_*.pt"))
            state = torch.load(ckpts[-1], map_location="cpu", weights_only=True)
            entry[d] = {"checkpoint": ckpts[-1].name, "state": tensor_hashes(state["state"]),
                        "metrics": metrics_hash(run / "metrics.jsonl")}
        results[name] = entry
        print(f"{name}: done", flush=True)
    return results


def compare(a: dict, b: dict) -> int:
    bad = 0
    for name in a:
        if name not in b:
            print(f"{name}: missing in the second file")
            bad += 1
            continue
        for d, entry in a[name].items():
            other = b[name].get(d, {})
            diffs = [k for k in entry["state"] if entry["state"][k] != other.get("state", {}).get(k)]
            extra = [k for k in other.get("state", {}) if k not in entry["state"]]
            same_metrics = entry["metrics"] == other.get("metrics")
            verdict = "bit-identical" if not diffs and not extra and same_metrics else "DIFFERENT"
            print(f"{name:11s} {d:7s} {len(entry['state']):4d} tensors, metrics.jsonl {'same' if same_metrics else 'DIFFERENT'}: "
                  f"{verdict}" + (f" ({len(diffs)} tensors differ, first {diffs[0]})" if diffs else "")
                  + (f" ({len(extra)} new tensors)" if extra else ""))
            bad += verdict != "bit-identical"
    return 1 if bad else 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", help="write the hashes here (JSON)")
    p.add_argument("--only", nargs="*", default=[], help=f"run only these ({', '.join(RUNS)})")
    p.add_argument("--compare", nargs=2, metavar=("BEFORE", "AFTER"), help="compare two files written by --out")
    args = p.parse_args()
    if args.compare:
        return compare(*(json.loads(Path(f).read_text()) for f in args.compare))
    with tempfile.TemporaryDirectory() as root:
        results = run_all(Path(root), args.only)
    text = json.dumps(results, indent=1)
    if args.out:
        Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
