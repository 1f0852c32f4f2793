"""train.r1_weight: the zero-centred gradient penalty on real images (tasks/gan.py, GANStep.r1_penalty)."""

from __future__ import annotations

import pytest
import torch
from conftest import tiny_overrides
from torch import nn

from condgan.config import load_config
from condgan.errors import ConfigError
from condgan.tasks.gan import R1_EVERY, GANOptions, GANStep
from condgan.training import train
from condgan.training import checkpoint as ckpt


class LinearD(nn.Module):
    """score = w . x: its gradient at any image is w, so R1 is |w|^2 exactly."""

    def __init__(self, size: int):
        super().__init__()
        self.w = nn.Parameter(torch.arange(size, dtype=torch.float32) / size)

    def forward(self, x, labels):
        return {"score": x.flatten(1) @ self.w}


def _options(**extra):
    return GANOptions(z_dim=4, loss="hinge", lr_g=1e-3, lr_d=1e-3, betas=(0.0, 0.99), ema_decay=0.0, ema_start=0,
                      augment_policy=[], **extra)


def test_penalty_is_the_squared_norm_of_d_gradient_at_real_images():
    d = LinearD(12)
    step = GANStep(nn.Linear(4, 12), d, _options())
    real = torch.randn(5, 1, 2, 6)
    penalty = step.r1_penalty(real, [torch.zeros(5, dtype=torch.long)])
    assert penalty.item() == pytest.approx(d.w.pow(2).sum().item(), rel=1e-6)
    penalty.backward()  # a gradient of a gradient: it reaches D's weights (d|w|^2/dw = 2w)
    assert torch.allclose(d.w.grad, 2 * d.w.detach(), rtol=1e-6)


EXTRA = {"train.deterministic": True, "train.checkpoint_every": R1_EVERY + 1}


def _run(data, out, steps: int = 2 * R1_EVERY, **extra):
    return train(load_config(None, tiny_overrides(data, steps=steps, **EXTRA, **extra)), out, quiet=True)


def _d_at(run, step: int) -> dict:
    return ckpt.safe_load(run / "checkpoints" / f"step_{step:08d}.pt")["state"]["D"]


def test_r1_trains_d_on_its_steps_only_and_a_resumed_run_ends_the_same(shoes_dir, tmp_path, monkeypatch):
    calls = []
    original = GANStep.r1_penalty
    monkeypatch.setattr(GANStep, "r1_penalty", lambda self, *a: calls.append(self.steps_done) or original(self, *a))
    _run(shoes_dir, tmp_path / "off")
    assert calls == []  # off by default
    _run(shoes_dir, tmp_path / "on", **{"train.r1_weight": 10.0})
    assert calls == [0, R1_EVERY]  # lazy: one step in R1_EVERY
    off, on = _d_at(tmp_path / "off", 2 * R1_EVERY), _d_at(tmp_path / "on", 2 * R1_EVERY)
    assert any(not torch.equal(off[k], on[k]) for k in off)  # the penalty trained D
    split = tmp_path / "split"  # stopped after R1_EVERY + 1 steps, resumed to the end
    _run(shoes_dir, split, steps=R1_EVERY + 1, **{"train.r1_weight": 10.0})
    train(out=split, resume=True, stop_overrides={"steps": R1_EVERY - 1}, quiet=True)
    resumed = _d_at(split, 2 * R1_EVERY)
    assert all(torch.equal(on[k], resumed[k]) for k in on)


@pytest.mark.parametrize("value", ["-1", "nan"])
def test_bad_r1_weight_is_refused(shoes_dir, value):
    with pytest.raises(ConfigError, match="r1_weight"):
        load_config(None, tiny_overrides(shoes_dir, **{"train.r1_weight": value}))


def test_r1_with_several_processes_is_refused_with_what_to_do():
    step = GANStep(nn.Linear(4, 12), LinearD(12), _options(r1_weight=1.0))
    with pytest.raises(ConfigError, match="r1_weight.*torchrun"):
        step.distribute(torch.device("cpu"))
