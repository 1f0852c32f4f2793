"""benchmarks/standing_stats.py scores one run's G_ema with three sets of BatchNorm statistics: G's, the saved
ones, and its own measured afresh. The scorer is replaced by one that records the statistics it was handed, so
this checks what each row was scored with, in a second and without an evaluator."""

from __future__ import annotations

import json
import sys

import torch
from conftest import tiny_overrides
from test_bench_variants import _module

import condgan.eval.report as eval_report
from condgan.config import load_config
from condgan.training import checkpoint as ckpt
from condgan.training import train


def _statistics(state: dict) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in state.items() if "running_" in k}


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_each_row_is_scored_with_the_statistics_it_names(shoes_dir, tmp_path, monkeypatch):
    runs = {}
    for name, n in (("before", 0), ("since", 32)):  # a run made before train.standing_stats, and one since
        runs[name] = tmp_path / name
        train(load_config(None, tiny_overrides(shoes_dir, **{"train.standing_stats": n})), runs[name], quiet=True)
    seen = []

    def evaluate_generator(gen, folder, n_per_class, seed, progress, source):
        seen.append((source, _statistics(gen.net.state_dict())))
        return {"model": {"fid": 1.0, "class_fid_mean": 2.0, "conditioning_accuracy": 0.9, "diversity_ratio_mean": 1.0,
                          "kid": 0.0, "precision": 0.5, "recall": 0.5, "copy_fraction": 0.0}, "per_class": []}

    monkeypatch.setattr(eval_report, "evaluate_generator", evaluate_generator)
    bench = _module("standing_stats")
    monkeypatch.setattr(sys, "argv", ["standing_stats.py", str(runs["before"]), str(runs["since"]), "--images", "16",
                                      "--batch", "8", "--out", str(tmp_path / "out")])
    bench.main()

    rows = json.loads((tmp_path / "out" / "standing.json").read_text())["rows"]
    # "as saved" is left out where the checkpoint holds G's statistics: it would score the same as "G's"
    assert [(r["run"], r["statistics"]) for r in rows] == [
        ("before", "G's"), ("before", "own 16"), ("since", "G's"), ("since", "as saved"), ("since", "own 16")]
    for name, run in runs.items():
        state = ckpt.Checkpoint.latest(run / "checkpoints").state
        g, saved = _statistics(state["G"]), _statistics(state["G_ema"])
        scored = [stats for source, stats in seen if source == str(run)]
        assert _same(scored[0], g)
        assert not _same(scored[-1], g)  # measured afresh: neither G's ...
        if name == "since":
            assert _same(scored[1], saved) and not _same(saved, g)
            assert not _same(scored[-1], saved)  # ... nor the saved ones (other noise and labels)
