"""Training speed when the machine is also doing something else: the part of benchmarks/speed.py (--part shared).

    python benchmarks/speed.py --part shared --out bench-results/speed.json [--seconds 60]

For the cgan, translate and two-stage defaults, each with the old thread default (train.threads = torch's
count, every core) and the new one (train.threads: null, measured while training), three conditions:

- alone: one training, nothing else running;
- beside a busy loop: a normal-priority `while True: pass` in another process (one core taken);
- two at once: two identical trainings started together (their images/s added up).

A run trains for --seconds of training time (--budget-minutes) and its speed is the steady images/s: all
images over all time of the logged intervals after the first two (start-up). A run that adapts its threads
pays for its probes inside that figure. The cells run one after another, alternating old and new, so a
drift of the machine's speed hits both; each figure is in a fresh process with OMP_NUM_THREADS unset.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TASKS = {"cgan": "fashion-mnist.yaml", "translate": "translate-edges.yaml", "two-stage": "two-stage.yaml"}
CONDITIONS = ("alone", "beside a busy loop", "two at once")


def torch_threads() -> int:
    """torch's own thread count in a fresh process: the old default."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    done = subprocess.run([sys.executable, "-c", "import torch; print(torch.get_num_threads())"], env=env,
                          capture_output=True, text=True, check=True)
    return int(done.stdout)


OLD, NEW = "old (torch's threads)", "new (measured)"
# the rejected fixes, for --variants: name -> (--set overrides, environment); "ALL" is torch's own count
REJECTED = {"OMP_WAIT_POLICY=PASSIVE": (["train.threads=ALL"], {"OMP_WAIT_POLICY": "PASSIVE"}),
            "GOMP_SPINCOUNT=10000": (["train.threads=ALL"], {"GOMP_SPINCOUNT": "10000"}),
            "one thread always": (["train.threads=1"], {})}


def variants(names: list[str] | None = None) -> dict[str, tuple[list[str], dict]]:
    """The thread settings compared: the old and new default, and any of REJECTED."""
    everyone = {OLD: (["train.threads=ALL"], {}), NEW: ([], {}), **REJECTED}
    unknown = [n for n in names or [] if n not in everyone]
    if unknown:
        raise SystemExit(f"unknown variant {unknown[0]!r}; known: {', '.join(everyone)}")
    every_core = f"train.threads={torch_threads()}"
    return {n: ([every_core if x == "train.threads=ALL" else x for x in sets], env)
            for n, (sets, env) in everyone.items() if n in (names or [OLD, NEW])}


def start(task: str, sets: list[str], seconds: float, out: Path, log_every: int, env_extra: dict) -> subprocess.Popen:
    sets = [f"train.log_every={log_every}", "train.sample_every=1000000", "train.checkpoint_every=1000000",
            "train.checkpoint_minutes=1000", *sets]
    cmd = [sys.executable, "-m", "condgan", "train", "--config", str(ROOT / "configs" / TASKS[task]),
           "--budget-minutes", str(seconds / 60), "--quiet", "--out", str(out), "--set", *sets]
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    env.update(PYTHONPATH=str(ROOT / "src"), **env_extra)
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def steady_rate(out: Path) -> float:
    """Images/s over the logged intervals after each run's first two (two-stage: its three stage runs): the
    harmonic mean of the intervals' rates, as every interval holds the same number of images (log_every
    steps of one batch), so this is all their images over all their wall time."""
    rates = []
    for metrics in sorted(out.rglob("metrics.jsonl")):
        logged = [json.loads(x)["images_per_s"] for x in metrics.read_text().splitlines()]
        rates += logged[2:] or logged  # a run too slow to log three intervals: all it logged
    if not rates:  # not even one interval (a collapse): the whole run's figure from summary.json
        return min(json.loads(s.read_text())["images_per_s"] for s in out.rglob("summary.json"))
    return len(rates) / sum(1 / r for r in rates)


def threads_used(out: Path) -> dict[str, int]:
    used: dict[str, int] = {}
    for summary in out.rglob("summary.json"):
        s = json.loads(summary.read_text())
        if "steps_at_threads" not in s and "threads" not in s:
            continue  # a two-stage pipeline's own summary: its stage runs have the figures
        for n, steps in s.get("steps_at_threads", {str(s.get("threads")): s["steps"]}).items():
            used[n] = used.get(n, 0) + steps
    return used


def cell(task: str, setting: tuple[list[str], dict], condition: str, seconds: float, log_every: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        busy = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if condition == "beside a busy loop" else None
        try:
            outs = [Path(tmp) / f"run{i}" for i in range(2 if condition == "two at once" else 1)]
            runs = [start(task, setting[0], seconds, out, log_every, setting[1]) for out in outs]
            for run, out in zip(runs, outs):
                _, err = run.communicate()
                if run.returncode:
                    raise SystemExit(f"{task} {condition} failed:\n{err[-3000:]}")
        finally:
            if busy:
                busy.kill()
        rates = [steady_rate(out) for out in outs]
        return {"images_per_s": round(sum(rates), 1), "per_process": [round(r, 1) for r in rates],
                "threads_steps": [threads_used(out) for out in outs], "load_before": round(os.getloadavg()[0], 2)}


def measure(seconds: float, log_every: int, tasks: list[str], conditions: list[str] = CONDITIONS,
            names: list[str] | None = None) -> dict:
    unknown = [c for c in conditions if c not in CONDITIONS]
    if unknown:
        raise SystemExit(f"unknown condition {unknown[0]!r}; known: {', '.join(CONDITIONS)}")
    results: dict = {}
    for condition in conditions:
        for task in tasks:
            for name, setting in variants(names).items():
                t0 = time.monotonic()
                r = cell(task, setting, condition, seconds, log_every)
                results.setdefault(task, {}).setdefault(name, {})[condition] = r
                print(f"{task} | {name} | {condition}: {r['images_per_s']:.0f} images/s {r['per_process']} "
                      f"threads {r['threads_steps']} ({time.monotonic() - t0:.0f} s)", flush=True)
    return results


def table(results: dict) -> str:
    lines = ["| task | threads | alone (images/s) | beside a busy loop | share of alone | two at once (sum) | "
             "share of alone | alone vs old |", "|---|---|---|---|---|---|---|---|"]
    for task, by_default in results.items():
        old_alone = by_default.get(OLD, {}).get("alone", {}).get("images_per_s")
        for name, r in by_default.items():
            if len(r) < len(CONDITIONS):  # --conditions: a subset, listed as measured
                lines.append(f"| {task} | {name} | " + ", ".join(f"{c}: {x['images_per_s']:.0f}" for c, x in r.items()) + " |")
                continue
            alone, busy, two = (r[c]["images_per_s"] for c in CONDITIONS)
            versus_old = f"{alone / old_alone:.2f}" if old_alone else "—"
            lines.append(f"| {task} | {name} | {alone:.0f} | {busy:.0f} | {busy / alone:.2f} | {two:.0f} "
                         f"({' + '.join(f'{x:.0f}' for x in r['two at once']['per_process'])}) | {two / alone:.2f} | "
                         f"{versus_old} |")
    return "\n".join(lines)
