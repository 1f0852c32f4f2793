"""model.d_mbstd: the resnet D's minibatch standard deviation channel (models/resnet.py, minibatch_stddev)."""

from __future__ import annotations

import pytest
import torch
from conftest import tiny_overrides

from condgan.config import load_config
from condgan.errors import ConfigError
from condgan.models.resnet import ProjectionDiscriminator, minibatch_stddev
from condgan.training import checkpoint as ckpt
from condgan.training import train


def test_each_group_gets_its_own_spread_and_groups_never_cross():
    torch.manual_seed(0)
    x = torch.randn(8, 3, 2, 2)
    x[4:] = x[4:] * 10  # the second group of four is ten times as spread
    out = minibatch_stddev(x, 4)
    assert out.shape == (8, 4, 2, 2) and torch.equal(out[:, :3], x)
    first = x[:4].var(dim=0, unbiased=False).sqrt().mean()
    second = x[4:].var(dim=0, unbiased=False).sqrt().mean()
    assert torch.allclose(out[:4, 3], first.expand(4, 2, 2), rtol=1e-5)
    assert torch.allclose(out[4:, 3], second.expand(4, 2, 2), rtol=1e-5)
    assert second > 5 * first


def test_identical_images_have_no_spread_and_odd_batches_use_a_smaller_group():
    same = torch.randn(1, 2, 3, 3).expand(4, 2, 3, 3)
    assert minibatch_stddev(same, 4)[:, 2].max() < 1e-3
    six = minibatch_stddev(torch.randn(6, 2, 1, 1), 4)  # 6 is not a multiple of 4: groups of 3
    assert six[0, 2] == six[2, 2] and six[3, 2] == six[5, 2] and six[0, 2] != six[3, 2]


def test_d_with_mbstd_keeps_its_outputs_and_state_layout():
    plain = ProjectionDiscriminator(3, 1, 16, 4, class_head=True)
    with_spread = ProjectionDiscriminator(3, 1, 16, 4, class_head=True, mbstd_group=4)
    assert set(plain.state_dict()) == set(with_spread.state_dict())  # old checkpoints' names are unchanged
    out = with_spread(torch.randn(8, 1, 16, 16), torch.randint(0, 3, (8,)))
    assert out["score"].shape == (8,) and out["classes"].shape == (8, 3)


def _d_at(run, step: int) -> dict:
    return ckpt.safe_load(run / "checkpoints" / f"step_{step:08d}.pt")["state"]["D"]


def test_a_run_with_mbstd_trains_and_resumes_exactly(shoes_dir, tmp_path):
    extra = {"model.d_mbstd": 4, "train.deterministic": True}
    whole, split = tmp_path / "whole", tmp_path / "split"
    train(load_config(None, tiny_overrides(shoes_dir, steps=4, **extra)), whole, quiet=True)
    d = _d_at(whole, 4)
    channels = d["blocks.0.conv1.parametrizations.weight.original"].shape[1]
    plain = ProjectionDiscriminator(2, channels, 16, 4).state_dict()  # same widths, no spread channel
    widened = [k for k in plain if k.startswith("blocks.") and d[k].shape != plain[k].shape]
    assert widened and all(k.startswith("blocks.2.") for k in widened)  # only the last block reads one more channel
    train(load_config(None, tiny_overrides(shoes_dir, steps=2, **extra)), split, quiet=True)
    train(out=split, resume=True, stop_overrides={"steps": 2}, quiet=True)
    resumed = _d_at(split, 4)
    assert all(torch.equal(d[k], resumed[k]) for k in d)


@pytest.mark.parametrize("value", ["-1", "65"])
def test_out_of_range_group_is_refused(shoes_dir, tmp_path, value):
    with pytest.raises(ConfigError, match="model.d_mbstd"):
        train(load_config(None, tiny_overrides(shoes_dir, **{"model.d_mbstd": value})), tmp_path / "r", quiet=True)


def test_mbstd_needs_the_resnet(shoes_dir, tmp_path):
    with pytest.raises(ConfigError, match="model.d_mbstd works with model.arch=resnet only"):
        train(load_config(None, tiny_overrides(shoes_dir, **{"model.d_mbstd": 4, "model.arch": "dcgan"})),
              tmp_path / "r", quiet=True)
