"""train.standing_stats: G_ema measures its own BatchNorm statistics before it is shown or saved
(tasks/gan.py GANStep.standing_statistics, training/run_files.py RunFiles.standing_statistics)."""

from __future__ import annotations

import pytest
import torch
from conftest import tiny_overrides, tiny_translate_overrides
from torch import nn

from condgan.config import load_config
from condgan.errors import ConfigError
from condgan.tasks.gan import GANOptions, GANStep
from condgan.training import checkpoint as ckpt
from condgan.training import train


class NormedG(nn.Module):
    """z -> BatchNorm(linear(z)) + label: records what its BatchNorm saw in train mode."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 3)
        self.bn = nn.BatchNorm1d(3)
        self.seen: list[torch.Tensor] = []

    def forward(self, z, labels):
        h = self.linear(z) + labels[:, None].float()
        if self.training:
            self.seen.append(h.detach().clone())
        return self.bn(h)


def test_g_ema_takes_the_statistics_of_its_own_outputs_and_keeps_its_weights():
    options = GANOptions(z_dim=4, loss="hinge", lr_g=1e-3, lr_d=1e-3, betas=(0.0, 0.99), ema_decay=0.9, ema_start=0,
                         augment_policy=[])
    step = GANStep(NormedG(), nn.Linear(3, 1), options)
    ema = step.G_ema
    ema.bn.running_mean.fill_(100.0)  # G's statistics, as update_ema copies them
    weights = {k: v.clone() for k, v in ema.state_dict().items() if "running" not in k and "num_batches" not in k}
    batches = [[torch.full((6,), float(k))] for k in range(3)]  # labels 0, 1, 2 shift the features
    step.standing_statistics(batches, torch.Generator().manual_seed(0))
    seen = torch.stack(ema.seen)  # (3 batches, 6, 3)
    assert len(ema.seen) == 3 and not ema.training
    assert torch.allclose(ema.bn.running_mean, seen.mean(dim=1).mean(dim=0), atol=1e-6)
    assert torch.allclose(ema.bn.running_var, seen.var(dim=1, unbiased=True).mean(dim=0), atol=1e-5)
    assert ema.bn.momentum == 0.1  # restored for the copies update_ema makes next
    assert all(torch.equal(v, ema.state_dict()[k]) for k, v in weights.items())


def _run(data, out, **extra):
    return train(load_config(None, tiny_overrides(data, steps=4, **{"train.deterministic": True, **extra})), out,
                 quiet=True)


def _norm_state(state: dict) -> dict:
    """BatchNorm's statistics (running mean and variance, the count of batches they average)."""
    return {k: v for k, v in state.items() if "running_" in k or k.endswith("num_batches_tracked")}


def test_standing_statistics_change_only_g_ema_statistics_so_training_is_the_same(shoes_dir, tmp_path):
    _run(shoes_dir, tmp_path / "off", **{"train.standing_stats": 0})
    _run(shoes_dir, tmp_path / "on", **{"train.standing_stats": 64})
    off = ckpt.Checkpoint.latest(tmp_path / "off" / "checkpoints").state
    on = ckpt.Checkpoint.latest(tmp_path / "on" / "checkpoints").state
    for part in ("G", "D", "opt_G", "opt_D"):  # training itself: bit-identical
        assert ckpt_equal(off[part], on[part]), part
    ema_weights = {k: v for k, v in on["G_ema"].items() if k not in _norm_state(on["G_ema"])}
    assert all(torch.equal(v, off["G_ema"][k]) for k, v in ema_weights.items())
    # off: G_ema keeps G's copied statistics; on: its own, which differ
    assert all(torch.equal(v, off["G"][k]) for k, v in _norm_state(off["G_ema"]).items())
    assert any(not torch.equal(v, on["G"][k]) for k, v in _norm_state(on["G_ema"]).items())


def ckpt_equal(a, b) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(ckpt_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(ckpt_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, torch.Tensor):
        return torch.equal(a, b)
    return a == b


def test_off_where_g_ema_is_g_itself(shoes_dir, tmp_path):
    """train.ema_decay 0 (the textbook recipes): G_ema is a copy of G, and keeps G's statistics."""
    _run(shoes_dir, tmp_path / "plain", **{"train.standing_stats": 64, "train.ema_decay": 0.0})
    state = ckpt.Checkpoint.latest(tmp_path / "plain" / "checkpoints").state
    assert all(torch.equal(v, state["G"][k]) for k, v in _norm_state(state["G_ema"]).items())


def test_on_for_the_cgan_up_to_64_px_off_above_and_for_other_tasks_and_checked(shoes_dir):
    for size, expected in ((28, 1024), (64, 1024), (66, 0), (128, 0)):
        config = load_config(None, [f"data.name={shoes_dir}"])
        assert config.train.standing_stats is None  # the cgan's depends on the image size, known with the data
        assert "train.standing_stats" in config.resolve_for_size(size) and config.train.standing_stats == expected
    chosen = load_config(None, [f"data.name={shoes_dir}", "train.standing_stats=512"])
    assert "train.standing_stats" not in chosen.resolve_for_size(128) and chosen.train.standing_stats == 512
    translate = load_config(None, ["task=translate"])
    assert translate.train.standing_stats == 0
    translate.resolve_for_size(28)
    assert translate.train.standing_stats == 0


def test_a_cgan_above_64_px_keeps_g_statistics_says_so_and_records_it(shoes_dir, tmp_path, capsys):
    import yaml

    overrides = [o for o in tiny_overrides(shoes_dir, steps=2, **{"data.image_size": 80})
                 if not o.startswith("train.standing_stats")]
    train(load_config(None, overrides), tmp_path / "big", quiet=False)
    assert "80 px images: G_ema keeps G's BatchNorm statistics by default" in capsys.readouterr().err
    assert yaml.safe_load((tmp_path / "big" / "config.yaml").read_text())["train"]["standing_stats"] == 0
    state = ckpt.Checkpoint.latest(tmp_path / "big" / "checkpoints").state
    assert all(torch.equal(v, state["G"][k]) for k, v in _norm_state(state["G_ema"]).items())
    with pytest.raises(ConfigError, match="standing_stats"):
        load_config(None, tiny_overrides(shoes_dir, **{"train.standing_stats": -1}))


def test_a_translator_measures_on_source_images_from_the_data_when_asked(pairs_dir, tmp_path):
    """Off by default for translate; set, G_ema's conditions are training items' source images."""
    overrides = tiny_translate_overrides(pairs_dir, **{"train.standing_stats": 8, "train.deterministic": True})
    train(load_config(None, overrides), tmp_path / "t", quiet=True)
    state = ckpt.Checkpoint.latest(tmp_path / "t" / "checkpoints").state
    assert any(not torch.equal(v, state["G"][k]) for k, v in _norm_state(state["G_ema"]).items())


def test_the_joint_two_stage_chain_measures_both_generators_as_they_are_sampled(tmp_path, monkeypatch):
    """Set for two-stage, the joint stage measures G1_ema on label A and G2_ema on G1_ema's intermediates."""
    from test_two_stage import tiny, write_manifest

    from condgan.tasks.two_stage.joint import JointStep

    calls = []
    original = JointStep.standing_statistics
    monkeypatch.setattr(JointStep, "standing_statistics", lambda self, c, g: calls.append(len(c)) or original(self, c, g))
    monkeypatch.setenv("CONDGAN_CACHE", str(tmp_path / "cache"))
    csv = write_manifest(tmp_path / "data")
    train(load_config(None, tiny(csv, **{"train.standing_stats": 16})), tmp_path / "run", quiet=True)
    assert calls and all(n == 2 for n in calls)  # 16 images at batch 8, before each preview and checkpoint
    state = ckpt.Checkpoint.latest(tmp_path / "run" / "joint" / "checkpoints").state
    for g in ("G1", "G2"):
        own = _norm_state(state[f"{g}_ema"])
        assert own and any(not torch.equal(v, state[g][k]) for k, v in own.items()), g
