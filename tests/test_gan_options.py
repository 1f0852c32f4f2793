"""GANStep's options (GANOptions): every generator task builds its step(s) through GANOptions.from_config, so the
run's settings (train.precision resolved, the memory format) reach every step, the joint stage's two included."""

import pytest
import torch

from condgan.config import load_config
from condgan.tasks.class_terms import ADC, CrossEntropy
from condgan.tasks.gan import GANOptions, GANStep, Roles
from condgan.training import train
from condgan.training.trainer import Run
from conftest import tiny_overrides, tiny_translate_overrides
from test_two_stage import tiny, write_manifest


@pytest.fixture
def built(monkeypatch):
    """Every GANOptions.from_config call, as (roles, options returned)."""
    calls = []
    original = GANOptions.from_config.__func__

    def spy(cls, config, roles, precision="fp32", **overrides):
        options = original(cls, config, roles, precision, **overrides)
        calls.append((roles, options))
        return options

    monkeypatch.setattr(GANOptions, "from_config", classmethod(spy))
    return calls


def test_from_config_reads_every_setting_and_overrides_by_name():
    config = load_config(None, ["train.aux_form=adc", "train.adc_weight=0.3", "train.fake_term_start=4", "train.lr_g=1e-3",
                                "train.augment=[translation]", "train.aux_weight=2"])
    config.resolve_for_size(28)
    roles = Roles("image", ("label",), ("label",), "label")
    o = GANOptions.from_config(config, roles, precision="bf16", l1_weight=3.0)
    assert (o.z_dim, o.loss, o.lr_g, o.lr_d, o.betas, o.augment_policy) == (64, "hinge", 1e-3, 8e-4, (0.0, 0.99), ["translation"])
    assert (o.roles, o.aux_weight, o.class_term, o.diversity_weight, o.precision) == (roles, 2.0, ADC(0.3, 4), 0.75, "bf16")
    assert o.l1_weight == 3.0  # the override
    with pytest.raises(TypeError):
        GANOptions.from_config(config, roles, no_such_option=1)


def test_every_gan_task_builds_its_steps_from_the_config_once(built, shoes_dir, pairs_dir, tmp_path):
    runs = {"cgan": load_config(None, tiny_overrides(shoes_dir, **{"train.aux_form": "ce"})),
            "translate": load_config(None, tiny_translate_overrides(pairs_dir))}
    csv = write_manifest(tmp_path / "two")
    for stage in ("stage1", "stage2", "joint"):
        runs[stage] = load_config(None, tiny(csv, **{"stages.stage": stage, "stages.from_scratch": stage == "joint"}))
    targets = {}
    for name, config in runs.items():
        built.clear()
        run = Run(config, tmp_path / name / name)
        steps = [run.step.s1, run.step.s2] if name == "joint" else [run.step]
        assert len(built) == len(steps), name  # one from_config per step, nothing built by hand
        for step, (roles, options) in zip(steps, built):
            assert isinstance(step, GANStep) and step.options.roles == roles and step.precision == run.precision
        targets[name] = [roles.target for roles, _ in built]
        if name != "joint":
            assert run.step.options is built[0][1]
    assert targets == {"cgan": ["image"], "translate": ["image"], "stage1": ["mask"], "stage2": ["image"],
                       "joint": ["mask", "image"]}


def test_gan_options_default_to_ac_gan_and_the_class_field_label():
    o = GANOptions(z_dim=2, loss="bce", lr_g=1e-3, lr_d=1e-3, betas=(0.5, 0.9), ema_decay=0.0, ema_start=0, augment_policy=[])
    assert o.class_term == CrossEntropy() and o.roles.class_field == "label" and o.precision == "fp32"


@pytest.fixture(scope="module")
def stage_runs(tmp_path_factory):
    """A tiny pipeline's stage 1 and stage 2 runs (bf16), for joint stages to start from."""
    root = tmp_path_factory.mktemp("joint_precision")
    csv = write_manifest(root / "data")
    for stage in ("stage1", "stage2"):
        train(load_config(None, tiny(csv, steps=2, **{"stages.stage": stage, "train.precision": "bf16"})), root / "p",
              quiet=True)
    return csv, root / "p"


def _joint(csv, pipeline, name: str, **extra) -> Run:
    """A joint stage run in pipeline/name, started from the pipeline's stage runs."""
    return Run(load_config(None, tiny(csv, steps=1, **{"stages.stage": "joint", **extra})), pipeline / name)


def _channels_last(net: torch.nn.Module) -> list[bool]:
    """For each 4-d weight of a net whose two layouts differ (several input channels and kernel positions): is it
    stored NHWC?"""
    return [p.is_contiguous(memory_format=torch.channels_last) for p in net.parameters()
            if p.dim() == 4 and p.shape[1] > 1 and p.shape[2] * p.shape[3] > 1]


def test_joint_stage_steps_get_the_runs_precision_and_memory_format(stage_runs):
    """The joint stage's two steps are built like every step: train.precision=bf16 reaches both, and every pass
    of a joint step runs in autocast; weights are channels_last on CPU, and train.channels_last=false is obeyed."""
    csv, pipeline = stage_runs
    run = _joint(csv, pipeline, "joint", **{"train.precision": "bf16"})
    assert run.precision == run.step.s1.precision == run.step.s2.precision == "bf16"
    nets = run.step.networks()
    assert all(all(_channels_last(net)) and _channels_last(net) for net in nets.values())
    autocast = {}
    for name, net in nets.items():
        net.register_forward_hook(lambda m, i, o, name=name: autocast.setdefault(name, set()).add(
            torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16))
    summary = run.fit()
    assert summary["steps"] == 1
    assert autocast == {name: {True} for name in nets}, "every joint pass in bf16 autocast"

    run = _joint(csv, pipeline, "joint-nchw", **{"train.precision": "fp32", "train.channels_last": False})
    assert run.step.s1.precision == run.step.s2.precision == "fp32"
    assert not any(any(_channels_last(net)) for net in run.step.networks().values())
