"""SIGKILL during training (often mid-checkpoint), then resume: nothing is corrupted.

The 20-kill version runs in `make bench` (benchmarks/kill_resume.py)."""

import importlib.util
from pathlib import Path

spec = importlib.util.spec_from_file_location("kill_resume", Path(__file__).parents[1] / "benchmarks" / "kill_resume.py")
kill_resume = importlib.util.module_from_spec(spec)
spec.loader.exec_module(kill_resume)


def test_three_kills_three_clean_resumes():
    result = kill_resume.kill_and_resume(kills=3, seed=1)
    assert result["clean_resumes"] == 3, result["rounds"]
    assert all(r["newest_step"] > 0 for r in result["rounds"]), "the run never got far enough to checkpoint"
    assert result["final_resume_ok"], result
