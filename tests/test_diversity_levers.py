"""Two levers for variety, off by default: model.d_mbstd (D sees each group's feature spread) and model.g_skip_z
(the noise enters every G block). models/resnet.py, models/embed.py."""

from __future__ import annotations

import pytest
import torch
from conftest import tiny_overrides, tiny_translate_overrides

from condgan.config import load_config
from condgan.errors import ConfigError
from condgan.models.resnet import ProjectionDiscriminator, minibatch_stddev
from condgan.training import checkpoint as ckpt
from condgan.training import train


def test_each_group_gets_its_own_spread_and_groups_never_cross():
    torch.manual_seed(0)
    x = torch.randn(8, 5)
    x[4:] = x[4:] * 10  # the second group of four is ten times as spread
    out = minibatch_stddev(x, 4)
    first = x[:4].var(dim=0, unbiased=False).sqrt().mean()
    second = x[4:].var(dim=0, unbiased=False).sqrt().mean()
    assert out.shape == (8, 1)
    assert torch.allclose(out[:4], first.expand(4, 1), rtol=1e-5)
    assert torch.allclose(out[4:], second.expand(4, 1), rtol=1e-5)
    assert second > 5 * first


def test_identical_images_have_no_spread_and_odd_batches_use_a_smaller_group():
    same = torch.randn(1, 6).expand(4, 6)
    assert minibatch_stddev(same, 4).max() < 1e-3
    six = minibatch_stddev(torch.randn(6, 2), 4)  # 6 is not a multiple of 4: groups of 3
    assert six[0] == six[2] and six[3] == six[5] and six[0] != six[3]


def test_d_with_mbstd_keeps_its_outputs_and_the_plain_d_layout():
    plain = ProjectionDiscriminator(3, 1, 16, 4, class_head=True)
    with_spread = ProjectionDiscriminator(3, 1, 16, 4, class_head=True, mbstd_group=4)
    assert set(with_spread.state_dict()) - set(plain.state_dict()) == {"mbstd_scale"}
    x, labels = torch.randn(8, 1, 16, 16), torch.randint(0, 3, (8,))
    out = with_spread(x, labels)
    assert out["score"].shape == (8,) and out["classes"].shape == (8, 3)
    out["score"].sum().backward()
    assert with_spread.mbstd_scale.grad.abs().sum() > 0  # zero at first, and it learns


def _d_at(run, step: int) -> dict:
    return ckpt.safe_load(run / "checkpoints" / f"step_{step:08d}.pt")["state"]["D"]


def test_a_run_with_mbstd_trains_and_resumes_exactly(shoes_dir, tmp_path):
    extra = {"model.d_mbstd": 4, "train.deterministic": True}
    whole, split = tmp_path / "whole", tmp_path / "split"
    train(load_config(None, tiny_overrides(shoes_dir, steps=4, **extra)), whole, quiet=True)
    d = _d_at(whole, 4)
    assert d["mbstd_scale"].abs().sum() > 0  # trained away from its zero start
    train(load_config(None, tiny_overrides(shoes_dir, steps=2, **extra)), split, quiet=True)
    train(out=split, resume=True, stop_overrides={"steps": 2}, quiet=True)
    resumed = _d_at(split, 4)
    assert all(torch.equal(d[k], resumed[k]) for k in d)


@pytest.mark.parametrize("value", ["-1", "65"])
def test_out_of_range_group_is_refused(shoes_dir, tmp_path, value):
    with pytest.raises(ConfigError, match="model.d_mbstd"):
        train(load_config(None, tiny_overrides(shoes_dir, **{"model.d_mbstd": value})), tmp_path / "r", quiet=True)


@pytest.mark.parametrize("knobs", [{"model.d_mbstd": 4}, {"model.g_skip_z": "true"},
                                   {"model.d_mbstd": 4, "model.g_skip_z": "true"}])
def test_the_knobs_are_refused_where_nothing_would_read_them(shoes_dir, pairs_dir, knobs):
    with pytest.raises(ConfigError, match="works? with the resnet G and D of --task cgan or two-stage only"):
        load_config(None, tiny_overrides(shoes_dir, **knobs, **{"model.arch": "dcgan"}))
    with pytest.raises(ConfigError, match=" and ".join(sorted(knobs, key=lambda k: "d_mbstd" in k))):
        load_config(None, tiny_translate_overrides(pairs_dir, **knobs))


def test_the_network_builders_refuse_them_for_other_architectures_too():
    from condgan.models import build_discriminator, build_generator

    with pytest.raises(ConfigError, match="model.d_mbstd works with model.arch=resnet only"):
        build_discriminator("dcgan", 3, 1, 16, 4, mbstd_group=4)
    with pytest.raises(ConfigError, match="model.g_skip_z works with model.arch=resnet only"):
        build_generator("dcgan", 3, 8, 1, 16, 4, skip_z=True)


def test_skip_z_starts_as_the_plain_generator_and_then_lets_noise_steer_each_block():
    from condgan.models.resnet import ResNetGenerator

    torch.manual_seed(0)
    plain = ResNetGenerator(3, 8, 1, 16, 4)
    skip = ResNetGenerator(3, 8, 1, 16, 4, skip_z=True)
    extra = set(skip.state_dict()) - set(plain.state_dict())
    assert extra and all(".noise." in k for k in extra)  # new weights only; the plain G's names are unchanged
    skip.load_state_dict(plain.state_dict(), strict=False)
    z, labels = torch.randn(6, 8), torch.tensor([0, 1, 2, 0, 1, 2])
    assert torch.equal(plain(z, labels), skip(z, labels))  # zero-initialised: the same function at first
    with torch.no_grad():
        skip.blocks[0].bn1.noise.weight.normal_()
    assert not torch.allclose(plain(z, labels), skip(z, labels))


def test_a_run_with_skip_z_trains_and_resumes_exactly(shoes_dir, tmp_path):
    extra = {"model.g_skip_z": "true", "train.deterministic": True}
    whole, split = tmp_path / "whole", tmp_path / "split"
    train(load_config(None, tiny_overrides(shoes_dir, steps=4, **extra)), whole, quiet=True)
    train(load_config(None, tiny_overrides(shoes_dir, steps=2, **extra)), split, quiet=True)
    train(out=split, resume=True, stop_overrides={"steps": 2}, quiet=True)
    a, b = (ckpt.safe_load(r / "checkpoints" / "step_00000004.pt")["state"]["G"] for r in (whole, split))
    assert any(".noise." in k for k in a) and all(torch.equal(a[k], b[k]) for k in a)
