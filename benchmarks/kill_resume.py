"""Kill training with SIGKILL at random moments, resume, repeat; count clean resumes.

    python benchmarks/kill_resume.py --kills 20 --out bench-results/kill_resume.json

Each round starts (or resumes) a small run that checkpoints every step, waits a
random moment once it is training, and SIGKILLs it — often in the middle of a checkpoint write. A
resume is clean when every checkpoint file left behind loads, the resumed run
starts from the newest one, and its step count never goes backwards.
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "src"))

from conftest import write_folders  # noqa: E402  (tiny synthetic dataset)

from condgan.training import checkpoint as ckpt  # noqa: E402

STARTUP_TIMEOUT = 120  # seconds a (re)started run may take to write its first new checkpoint
TRAIN_ARGS = ["--quiet", "--set", "data.image_size=16", "--set", "model.g_width=4", "--set", "model.d_width=4",
              "--set", "train.batch_size=8", "--set", "train.checkpoint_every=1", "--set", "train.keep_checkpoints=2",
              "--set", "train.sample_every=1000", "--set", "train.log_every=1"]


def start(run: Path, data: Path, first: bool) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "condgan", "train"]
    cmd += (["--data", str(data), "--out", str(run), "--steps", "1000000"] + TRAIN_ARGS) if first else \
           ["--resume", str(run), "--steps", "1000000", "--quiet"]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _newest(run: Path) -> int:
    files = ckpt.list_checkpoints(run / "checkpoints")
    return int(files[-1].name[5:13]) if files else 0


def kill_and_resume(kills: int, seed: int = 0, min_wait: float = 0.0, max_wait: float = 2.0) -> dict:
    rng = random.Random(seed)
    rounds = []
    with tempfile.TemporaryDirectory() as tmp:
        data = write_folders(Path(tmp) / "data")
        run = Path(tmp) / "run"
        last_step = 0
        for i in range(kills):
            proc = start(run, data, first=i == 0)
            # Let the (re)started run make progress, then kill it at a random moment: with a
            # checkpoint every step, many kills land in the middle of a checkpoint write.
            deadline = time.monotonic() + STARTUP_TIMEOUT
            while time.monotonic() < deadline and proc.poll() is None and _newest(run) <= last_step:
                time.sleep(0.1)
            time.sleep(rng.uniform(min_wait, max_wait))
            proc.send_signal(signal.SIGKILL)
            _, err = proc.communicate()
            files = ckpt.list_checkpoints(run / "checkpoints")
            loadable = True
            for f in files:
                try:
                    ckpt.safe_load(f)
                except Exception:
                    loadable = False
            newest = _newest(run)
            logged = [json.loads(ln)["step"] for ln in (run / "metrics.jsonl").read_text().splitlines()[:-1]]
            consecutive = logged == list(range(1, len(logged) + 1))  # resumed exactly where the checkpoint was
            clean = loadable and newest > last_step and consecutive
            rounds.append({"round": i + 1, "checkpoints": [f.name for f in files], "newest_step": newest,
                           "all_loadable": loadable, "log_consecutive": consecutive, "clean": clean, "stderr_tail": err.strip().splitlines()[-1:] if err else []})
            print(f"kill {i + 1:2d}: newest checkpoint step {newest:5d}, all loadable: {loadable}, clean: {clean}")
            last_step = max(last_step, newest)
        final = subprocess.run([sys.executable, "-m", "condgan", "train", "--resume", str(run),
                                "--steps", "2", "--quiet"], capture_output=True, text=True)  # two more steps
        finished = final.returncode == 0 and ckpt.list_checkpoints(run / "checkpoints")[-1].name == f"step_{last_step + 2:08d}.pt"
    return {"kills": kills, "clean_resumes": sum(r["clean"] for r in rounds), "final_resume_ok": finished,
            "final_step": last_step + 2, "rounds": rounds}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=20, help="how many times to SIGKILL the run (default 20)")
    parser.add_argument("--seed", type=int, default=0, help="seed for the kill times")
    parser.add_argument("--out", default="bench-results/kill_resume.json", help="where to write the JSON result")
    args = parser.parse_args()
    result = kill_and_resume(args.kills, args.seed)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(f"\n{result['clean_resumes']}/{result['kills']} clean resumes; final resume "
          f"{'ok' if result['final_resume_ok'] else 'FAILED'}; written to {args.out}")
