"""train.compile: a run whose step passes go through torch.compile trains (tasks/gan.py, GANStep.compile).

The inductor backend takes minutes to compile even a tiny model, so the test compiles with the 'eager' backend:
the same wrapper (torch's OptimizedModule, which refuses len() and so truth tests) and the same graph capture,
without generating kernels."""

from __future__ import annotations

import functools
import json

import torch
from conftest import tiny_overrides

from condgan.config import load_config
from condgan.training import train


def _losses_d(run) -> list[float]:
    rows = (json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines())
    return [r["loss_d"] for r in rows if "loss_d" in r]


def test_a_compiled_gan_run_trains_and_matches_the_uncompiled_one(shoes_dir, tmp_path, monkeypatch):
    extra = {"train.deterministic": True}
    plain = train(load_config(None, tiny_overrides(shoes_dir, steps=3, **extra)), tmp_path / "plain", quiet=True)
    monkeypatch.setattr(torch, "compile", functools.partial(torch.compile, backend="eager"))
    compiled = train(load_config(None, tiny_overrides(shoes_dir, steps=3, **extra, **{"train.compile": True})),
                     tmp_path / "compiled", quiet=True)
    assert compiled["steps"] == plain["steps"] == 3
    got, want = _losses_d(tmp_path / "compiled"), _losses_d(tmp_path / "plain")
    assert got and len(got) == len(want)
    assert torch.allclose(torch.tensor(got), torch.tensor(want), rtol=1e-4, atol=1e-5)
