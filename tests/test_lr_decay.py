"""train.lr_decay: the learning rates fall linearly to 0 over the last share of a run (training/schedule.py)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from conftest import tiny_overrides

from condgan.config import load_config
from condgan.errors import ConfigError
from condgan.tasks.gan import GANStep
from condgan.training import train
from condgan.training.checkpoint import list_checkpoints
from condgan.training.schedule import lr_scale, run_progress

LR_G, LR_D = 4e-4, 8e-4  # the defaults, which the tiny runs keep


@pytest.fixture
def rates(monkeypatch):
    """(lr of G, lr of D) as each GAN step of the test begins."""
    seen = []
    original = GANStep.step

    def step(self, batches, gen):
        seen.append((self.opt_G.param_groups[0]["lr"], self.opt_D.param_groups[0]["lr"]))
        return original(self, batches, gen)

    monkeypatch.setattr(GANStep, "step", step)
    return seen


def _train(data, out, steps: int, decay: float | None, **extra):
    more = {} if decay is None else {"train.lr_decay": decay}
    return train(load_config(None, tiny_overrides(data, steps=steps, **more, **extra)), out, quiet=True)


def _logged(run) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_progress_is_the_nearer_stop_condition_and_the_scale_falls_over_the_last_share():
    assert run_progress(5, 10, 0.0, None) == 0.5
    assert run_progress(5, 10, 54.0, 1.0) == pytest.approx(0.9)  # the budget is nearer
    assert run_progress(9, 10, 6.0, 1.0) == pytest.approx(0.9)   # the steps are nearer
    assert run_progress(0, None, 30.0, 1.0) == pytest.approx(0.5)
    assert [lr_scale(p, 0.0) for p in (0.0, 0.5, 0.99)] == [1.0, 1.0, 1.0]
    assert lr_scale(0.5, 0.5) == 1.0 and lr_scale(0.75, 0.5) == pytest.approx(0.5) and lr_scale(1.0, 0.5) == 0.0
    assert lr_scale(0.2, 1.0) == pytest.approx(0.8) and lr_scale(1.3, 0.5) == 0.0


def test_without_decay_the_rates_stay_at_their_base(shoes_dir, tmp_path, rates):
    _train(shoes_dir, tmp_path / "run", 6, None)
    assert rates == [(LR_G, LR_D)] * 6
    assert all("lr_scale" not in r for r in _logged(tmp_path / "run"))
    rates.clear()
    _train(shoes_dir, tmp_path / "zero", 6, 0.0)
    assert rates == [(LR_G, LR_D)] * 6


def test_decay_over_the_second_half_ends_near_zero(shoes_dir, tmp_path, rates):
    steps = 20
    _train(shoes_dir, tmp_path / "run", steps, 0.5)
    assert len(rates) == steps
    assert rates[:steps // 2 + 1] == [(LR_G, LR_D)] * (steps // 2 + 1)  # steps_done / steps <= 0.5: the base rates
    g = [r[0] for r in rates]
    assert all(later < earlier for earlier, later in zip(g[steps // 2:], g[steps // 2 + 1:]))  # falling to the end
    assert g[-1] == pytest.approx(LR_G * 0.1) and rates[-1][1] == pytest.approx(LR_D * 0.1)  # (1 - 19/20) / 0.5
    for done, (lr_g, lr_d) in enumerate(rates):  # G and D by the same factor
        assert lr_g / LR_G == pytest.approx(lr_d / LR_D) == pytest.approx(min(1.0, (1 - done / steps) / 0.5))
    logged = {r["step"]: r["lr_scale"] for r in _logged(tmp_path / "run")}
    assert logged[1] == 1.0 and logged[steps] == pytest.approx(0.1)


def test_a_resumed_run_gets_the_same_rates_as_one_that_never_stopped(shoes_dir, tmp_path, rates):
    run = tmp_path / "run"
    _train(shoes_dir, run, 12, 0.5, **{"train.keep_checkpoints": 10})
    whole = list(rates)
    for path in list_checkpoints(run / "checkpoints"):
        if int(path.stem.split("_")[1]) > 8:  # back to step 8, whose optimisers hold decayed rates
            path.unlink()
    rates.clear()
    train(None, run, resume=True, quiet=True)
    assert rates == whole[8:]


def test_the_similarity_task_decays_its_one_rate(tmp_path, shoes_dir, monkeypatch):
    pytest.importorskip("pytorch_metric_learning")
    from condgan.tasks.similarity.metric import MetricStep

    seen = []
    original = MetricStep.step
    monkeypatch.setattr(MetricStep, "step", lambda self, b, g: (seen.append(self.opt.param_groups[0]["lr"]), original(self, b, g))[1])
    config = load_config(None, ["task=similarity", f"data.name={shoes_dir}", "data.image_size=16", "similarity.width=4",
                                "similarity.embed_dim=8", "similarity.per_class=2", "train.batch_size=6", "train.steps=4",
                                "train.lr_decay=1.0"])
    train(config, tmp_path / "srun", quiet=True)
    base = config.similarity.lr
    assert seen == pytest.approx([base, 0.75 * base, 0.5 * base, 0.25 * base])


def test_the_joint_stage_decays_every_optimiser(tmp_path, monkeypatch):
    from test_two_stage import tiny, write_manifest

    from condgan.tasks.two_stage.joint import JointStep

    seen = []
    original = JointStep.step
    monkeypatch.setattr(JointStep, "step", lambda self, b, g: (seen.append([group["lr"] for opt in self.optimizers()
                                                                               for group in opt.param_groups]), original(self, b, g))[1])
    monkeypatch.setenv("CONDGAN_CACHE", str(tmp_path / "cache"))
    csv = write_manifest(tmp_path / "data")
    train(load_config(None, tiny(csv, steps=4, **{"train.lr_decay": 1.0, "stages.stage": "joint",
                                                     "stages.from_scratch": True})), tmp_path / "run", quiet=True)
    assert len(seen) == 4 and len(seen[0]) == 5  # G1, D1, G2, D2 and C
    for done, rates in enumerate(seen):
        assert rates == pytest.approx([r * (1 - done / 4) for r in seen[0]])


@pytest.mark.parametrize("value, message", [(1.5, "train.lr_decay must be in [0, 1]"), (-0.1, "train.lr_decay must be in [0, 1]"),
                                            (math.nan, "train.lr_decay must be a finite number")])
def test_a_bad_lr_decay_is_a_config_error(value, message, shoes_dir):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_config(None, tiny_overrides(shoes_dir, **{"train.lr_decay": value})).validate()


def test_similarity_labelled_recipes_decay_by_default_and_older_runs_keep_constant_rates():
    for recipe, default in [("siamese", 0.3), ("triplet", 0.3), ("frozen", 0.3), ("selfsup", 0.0)]:
        assert load_config(None, ["task=similarity", f"similarity.recipe={recipe}"]).train.lr_decay == default
    assert load_config(None, []).train.lr_decay == 0.0  # the GAN tasks: constant rates
    assert load_config(None, ["task=exemplar", "similarity.embedder=x"]).train.lr_decay == 0.0
    assert load_config(None, ["task=similarity", "train.lr_decay=0"]).train.lr_decay == 0.0  # a given 0 is kept
    old = Path(__file__).parent / "fixtures" / "v2" / "similarity" / "config.yaml"  # a triplet run from before the key
    assert "lr_decay" not in old.read_text()
    with pytest.warns(FutureWarning, match="renamed"):  # its train.twin_start, since renamed
        config = load_config(old, of_run=True)
    assert config.train.lr_decay == 0.0
    assert config.train.aux_form == "ce"  # the core's added keys still apply beside the task's
