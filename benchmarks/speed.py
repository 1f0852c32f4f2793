"""Training speed on one machine: threads, processes, channels_last, bf16, torch.compile.

    python benchmarks/speed.py --out bench-results/speed.json [--steps 120] [--repeats 3]

Trains the default model (configs/fashion-mnist.yaml: resnet, batch 64, 28 px) for
--steps steps in each setting below, each in a fresh process (torchrun for two
processes), and reads images/s from the run's metrics.jsonl, leaving out the
first two log intervals (start-up, and compilation with torch.compile). The
settings run in turns, --repeats times, and the best of each counts: on a shared
machine the other load only ever slows a run down. The batch is the same 64
images everywhere (two processes take 32 each), so every setting trains the same
model, in fp32 unless the setting says otherwise (train.precision's default,
auto, is bf16 on CPUs with native bf16). torch.compile gets an empty compile
cache in every run, so its process wall time shows the first compilation a user
waits for.

| setting                      | processes x threads | also                      | compared with |
|------------------------------|---------------------|---------------------------|---------------|
| 1 process x 2 threads        | 1 x 2               | torch's default on 2 cores| itself        |
| 1 x 2 threads OMP_WAIT_POLICY=PASSIVE | 1 x 2    | waiting threads sleep     | 1 x 2         |
| 1 process x 1 thread         | 1 x 1               |                           | 1 x 2         |
| 2 processes x 1 thread       | 2 x 1               | torchrun, gloo, DDP       | 1 x 2         |
| channels_last off (1 x 1)    | 1 x 1               | train.channels_last=false | 1 x 1         |
| bf16 autocast (1 x 1)        | 1 x 1               | train.precision=bf16      | 1 x 1         |
| torch.compile (1 x 1)        | 1 x 1               | train.compile=true        | 1 x 1         |

`--part shared` (also in the default, both) measures the thread defaults when the machine is shared: see
benchmarks/speed_shared.py.

The options are measured with one thread: on a machine whose cores other work
also uses, a second thread's speed depends mostly on that other work, which
would drown the option's own effect. The load average at the start of every run
is recorded beside its figure.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import speed_shared  # beside this file

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
CONFIG = ROOT / "configs" / "fashion-mnist.yaml"

# name: (processes, threads per process, --set overrides, environment, the setting it is compared with)
SETTINGS = {
    "1 process x 2 threads": (1, 2, [], {}, "1 process x 2 threads"),
    "1 x 2 threads OMP_WAIT_POLICY=PASSIVE": (1, 2, [], {"OMP_WAIT_POLICY": "PASSIVE"}, "1 process x 2 threads"),
    "1 process x 1 thread": (1, 1, [], {}, "1 process x 2 threads"),
    "2 processes x 1 thread": (2, 1, [], {}, "1 process x 2 threads"),
    "channels_last off (1 x 1)": (1, 1, ["train.channels_last=false"], {}, "1 process x 1 thread"),
    "bf16 autocast (1 x 1)": (1, 1, ["train.precision=bf16"], {}, "1 process x 1 thread"),
    "torch.compile (1 x 1)": (1, 1, ["train.compile=true"], {}, "1 process x 1 thread"),
}


def run_setting(name: str, steps: int, log_every: int, folder: Path, device: str) -> dict:
    processes, threads, extra, env_extra, _ = SETTINGS[name]
    out = folder / f"run-{time.monotonic_ns()}"
    if not any(x.startswith("train.precision=") for x in extra):  # fp32 unless the setting says otherwise
        extra = [*extra, "train.precision=fp32"]
    sets = [f"train.threads={threads}", f"train.log_every={log_every}", "train.sample_every=1000000",
            "train.checkpoint_every=1000000", "train.checkpoint_minutes=1000", f"train.device={device}", *extra]
    train = ["-m", "condgan", "train", "--config", str(CONFIG), "--steps", str(steps), "--quiet", "--out", str(out), "--set", *sets]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": str(threads), **env_extra,
           "TORCHINDUCTOR_CACHE_DIR": str(out) + "-inductor"}  # torch.compile starts cold in every run
    if processes > 1:
        cmd = [str(BIN / "torchrun"), "--nproc_per_node", str(processes), "--master_port", str(29500 + os.getpid() % 1000), *train]
    else:
        cmd = [sys.executable, *train]
    load = os.getloadavg()[0]
    t0 = time.monotonic()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.monotonic() - t0
    if done.returncode != 0:
        raise SystemExit(f"{name} failed:\n{done.stderr[-3000:]}")
    rates = [json.loads(line)["images_per_s"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    steady = rates[2:] or rates
    return {"images_per_s": round(statistics.median(steady), 1), "intervals": rates, "wall_s": round(wall, 1),
            "load_before": round(load, 2)}


def table(results: dict) -> str:
    lines = ["| setting | images/s (best) | ratio | all runs (load average before each) | process wall time (s) |",
             "|---|---|---|---|---|"]
    for name, r in results.items():
        base = SETTINGS[name][4]
        ratio = f"{r['best'] / results[base]['best']:.2f}x {base}" if base != name and base in results else "—"
        runs = ", ".join(f"{x:.0f} ({load:.1f})" for x, load in zip(r["runs"], r["load_before"]))
        lines.append(f"| {name} | {r['best']:.0f} | {ratio} | {runs} | {', '.join(f'{w:.0f}' for w in r['wall_s'])} |")
    return "\n".join(lines)


def machine(device: str) -> dict:
    import torch

    return {"cpu_count": os.cpu_count(), "platform": platform.platform(), "torch": torch.__version__, "device": device}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="bench-results/speed.json", help="JSON results (a .md table is written beside it)")
    parser.add_argument("--steps", type=int, default=120, help="training steps per run (default 120)")
    parser.add_argument("--log-every", type=int, default=20, help="steps per measured interval (default 20)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of every setting, in turns (default 2)")
    parser.add_argument("--settings", default=",".join(SETTINGS), help="comma-separated subset of the settings")
    parser.add_argument("--device", default="cpu", help="train.device for every run (default cpu)")
    parser.add_argument("--part", choices=("settings", "shared", "both"), default="both",
                        help="settings: the table above; shared: alone / beside a busy loop / two at once for the old "
                             "and new thread defaults (benchmarks/speed_shared.py); both (default)")
    parser.add_argument("--seconds", type=float, default=60, help="shared part: training seconds per run (default 60)")
    parser.add_argument("--tasks", default="cgan,translate,two-stage", help="shared part: comma-separated tasks")
    parser.add_argument("--variants", default=None,
                        help="shared part: comma-separated thread settings (default: the old and new default); also: "
                             + ", ".join(speed_shared.REJECTED))
    parser.add_argument("--conditions", default=",".join(speed_shared.CONDITIONS),
                        help="shared part: comma-separated subset of: " + ", ".join(speed_shared.CONDITIONS))
    args = parser.parse_args()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if args.part != "settings":
        shared = speed_shared.measure(args.seconds, args.log_every, args.tasks.split(","), args.conditions.split(","),
                                      args.variants.split(",") if args.variants else None)
        text = speed_shared.table(shared)
        print("\n" + text)
        shared_out = out.with_name(out.stem + "-shared.json")
        shared_out.write_text(json.dumps({"seconds": args.seconds, "log_every": args.log_every, "machine": machine(args.device),
                                          "results": shared}, indent=2))
        shared_out.with_suffix(".md").write_text(text + "\n")
        print(f"\nwritten: {shared_out}, {shared_out.with_suffix('.md')}")
    if args.part == "shared":
        return
    names = [n.strip() for n in args.settings.split(",")]
    unknown = [n for n in names if n not in SETTINGS]
    if unknown:
        raise SystemExit(f"unknown setting {unknown[0]!r}; known: {', '.join(SETTINGS)}")
    results = {n: {"runs": [], "wall_s": [], "intervals": [], "load_before": []} for n in names}
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):
            for name in names:
                r = run_setting(name, args.steps, args.log_every, Path(tmp), args.device)
                results[name]["runs"].append(r["images_per_s"])
                results[name]["wall_s"].append(r["wall_s"])
                results[name]["intervals"].append(r["intervals"])
                results[name]["load_before"].append(r["load_before"])
                print(f"[{repeat + 1}/{args.repeats}] {name}: {r['images_per_s']:.0f} images/s (process {r['wall_s']:.0f} s)", flush=True)
    for r in results.values():
        r["best"] = max(r["runs"])
    text = table(results)
    print("\n" + text)
    out.write_text(json.dumps({"steps": args.steps, "log_every": args.log_every, "repeats": args.repeats,
                               "machine": machine(args.device), "results": results}, indent=2))
    out.with_suffix(".md").write_text(text + "\n")
    print(f"\nwritten: {out}, {out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
