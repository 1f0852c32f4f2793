"""Count how condgan answers the bad-input table (tests/bad_inputs.py): clear, vague, traceback, silent, ...

    python benchmarks/bad_input_census.py --out bench-results/bad_input_census.json

Run it against an older checkout (PYTHONPATH=OLD/src) to get the 'before' figures in docs/reliability.md.
Each case runs in-process with a time limit; one that runs past it counts as 'unbounded'. Cases run
in a child process; one that kills that process counts as 'crashed' and the next child goes on after it.
"""

from __future__ import annotations

import argparse
import collections
import json
import signal
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import torch  # noqa: E402

from bad_inputs import Env, Outcome, attempt, cases  # noqa: E402


class Unbounded(Exception):
    pass


def _alarm(*_):
    raise Unbounded()


def run_cases(start: int, rows_file: Path, limit_seconds: int) -> None:
    """Child: run cases from `start` on, appending one JSON line per case as it finishes."""
    torch.set_num_threads(1)
    signal.signal(signal.SIGALRM, _alarm)
    with tempfile.TemporaryDirectory() as tmp, open(rows_file, "a") as sink:
        env = Env(Path(tmp))
        for case in cases()[start:]:
            t0 = time.time()
            signal.alarm(limit_seconds)
            try:
                outcome = attempt(case, env)
            except Unbounded:
                outcome = Outcome("unbounded", None, [], f"still running after {limit_seconds} s")
            except Exception as e:  # the case's own setup failed on this version
                outcome = Outcome("traceback", None, [], f"{type(e).__name__}: {e}"[:300])
            finally:
                signal.alarm(0)
            row = {"category": case.category, "case": case.name, "outcome": outcome.kind, "exit": outcome.code,
                   "detail": (outcome.detail or (outcome.lines[-1] if outcome.lines else ""))[:300],
                   "seconds": round(time.time() - t0, 2)}
            sink.write(json.dumps(row) + "\n")
            sink.flush()
            print(f"{outcome.kind:10s} {case.category:12s} {case.name}", file=sys.__stdout__, flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="bench-results/bad_input_census.json", help="JSON file for the per-case outcomes")
    parser.add_argument("--limit-seconds", type=int, default=60, help="a case running longer than this is 'unbounded'")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--rows", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        run_cases(args.child, Path(args.rows), args.limit_seconds)
        return 0
    import subprocess

    table = cases()
    rows_file = Path(tempfile.mkdtemp()) / "rows.jsonl"
    rows_file.touch()
    while True:
        done = len(rows_file.read_text().splitlines())
        if done >= len(table):
            break
        subprocess.run([sys.executable, __file__, "--child", str(done), "--rows", str(rows_file),
                        "--limit-seconds", str(args.limit_seconds)])
        if len(rows_file.read_text().splitlines()) == done:  # the child died on this case
            case = table[done]
            with open(rows_file, "a") as f:
                f.write(json.dumps({"category": case.category, "case": case.name, "outcome": "crashed", "exit": None,
                                    "detail": "the process died", "seconds": None}) + "\n")
            print(f"{'crashed':10s} {case.category:12s} {case.name}", flush=True)
    rows = [json.loads(line) for line in rows_file.read_text().splitlines()]
    counts = collections.Counter(r["outcome"] for r in rows)
    by_cat = collections.defaultdict(collections.Counter)
    for r in rows:
        by_cat[r["category"]][r["outcome"]] += 1
    print("\noutcomes:", dict(counts), f"({len(rows)} cases)")
    for cat, c in by_cat.items():
        print(f"  {cat:12s} {dict(c)}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"counts": counts, "by_category": by_cat, "cases": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
