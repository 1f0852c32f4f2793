"""train.lecam_weight: the LeCam regulariser on D's scores (losses.lecam, GANStep.lecam_term), off by default."""

from __future__ import annotations

import shutil

import pytest
import torch
from conftest import tiny_overrides

from condgan.config import load_config
from condgan.errors import ConfigError
from condgan.losses import lecam
from condgan.training import checkpoint as ckpt
from condgan.training import train


def test_only_scores_past_the_other_sides_average_are_penalised():
    real, fake = torch.tensor([0.5, 2.0]), torch.tensor([-1.0, 0.2])
    # real anchor 1.0, fake anchor 0.0: real 2.0 is 2.0 above the fakes' average, fake -1.0 is 2.0 below the reals'
    assert lecam(real, fake, real_anchor=1.0, fake_anchor=0.0).item() == pytest.approx((0.25 + 4.0) / 2 + (4.0 + 0.64) / 2)
    assert lecam(torch.tensor([-0.5]), torch.tensor([1.5]), real_anchor=1.0, fake_anchor=0.0).item() == 0.0


def _state(run, step: int) -> dict:
    return ckpt.safe_load(run / "checkpoints" / f"step_{step:08d}.pt")["state"]


def test_a_run_with_lecam_trains_differently_and_resumes_exactly(shoes_dir, tmp_path):
    extra = {"train.deterministic": True}
    plain, whole, split = tmp_path / "plain", tmp_path / "whole", tmp_path / "split"
    train(load_config(None, tiny_overrides(shoes_dir, steps=4, **extra)), plain, quiet=True)
    extra["train.lecam_weight"] = 0.3
    train(load_config(None, tiny_overrides(shoes_dir, steps=4, **extra)), whole, quiet=True)
    train(load_config(None, tiny_overrides(shoes_dir, steps=2, **extra)), split, quiet=True)
    train(out=split, resume=True, stop_overrides={"steps": 2}, quiet=True)
    off, a, b = _state(plain, 4), _state(whole, 4), _state(split, 4)
    assert "lecam" not in off  # off: the state's layout is the one older runs have
    assert torch.isfinite(a["lecam"]).all() and torch.equal(a["lecam"], b["lecam"])
    assert all(torch.equal(a["D"][k], b["D"][k]) for k in a["D"])
    assert any(not torch.equal(a["D"][k], off["D"][k]) for k in a["D"])  # it changed what D learned


def test_a_negative_weight_is_refused(shoes_dir):
    with pytest.raises(ConfigError, match="train.lecam_weight must be >= 0"):
        load_config(None, tiny_overrides(shoes_dir, **{"train.lecam_weight": -0.1}))


def test_the_joint_two_stage_step_saves_and_resumes_both_stages_averages(tmp_path, monkeypatch):
    from test_two_stage import tiny, write_manifest

    monkeypatch.setenv("CONDGAN_CACHE", str(tmp_path / "cache"))
    csv = write_manifest(tmp_path / "data")
    run = tmp_path / "run"
    train(load_config(None, tiny(csv, **{"train.lecam_weight": 0.3})), run, quiet=True)
    before = ckpt.Checkpoint.latest(run / "joint" / "checkpoints").state
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    train(out=copy, resume=True, stop_overrides={"steps": 2}, quiet=True)
    after = ckpt.Checkpoint.latest(copy / "joint" / "checkpoints").state
    for key in ("lecam1", "lecam2"):
        assert torch.isfinite(before[key]).all() and torch.isfinite(after[key]).all()
        assert not torch.equal(before[key], after[key])  # carried on from the saved averages
