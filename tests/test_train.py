"""Training, resuming, sampling and loading, on tiny synthetic data."""

import json

import numpy as np
import pytest
import torch

import condgan
from condgan.config import load_config
from condgan.errors import CheckpointError, DivergenceError, UserError
from condgan.training import train
from condgan.training import checkpoint as ckpt
from conftest import tiny_overrides


@pytest.mark.parametrize("arch,loss", [("resnet", "hinge"), ("dcgan", "lsgan"), ("mlp", "bce"), ("resnet", "bce"), ("mlp", "hinge")])
def test_every_model_trains_with_its_loss(shoes_dir, tmp_path, arch, loss):
    config = load_config(None, tiny_overrides(shoes_dir, **{"model.arch": arch, "train.loss": loss}))
    summary = train(config, tmp_path / "run", quiet=True)
    run = tmp_path / "run"
    assert summary["steps"] == 4
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3, 4]
    assert all(np.isfinite(r["loss_d"]) and r["images_per_s"] > 0 for r in records)
    for f in ("config.yaml", "loss.png", "samples/latest.png", "summary.json"):
        assert (run / f).is_file(), f
    assert [p.name for p in ckpt.list_checkpoints(run / "checkpoints")] == ["step_00000002.pt", "step_00000004.pt"]
    assert any((run / "tb").iterdir())


def test_augmentation_trains(shoes_dir, tmp_path):
    config = load_config(None, tiny_overrides(shoes_dir, **{"train.augment": "translation,cutout,brightness"}))
    assert train(config, tmp_path / "run", quiet=True)["steps"] == 4


def test_training_changes_the_generator(shoes_dir, tmp_path):
    config = load_config(None, tiny_overrides(shoes_dir, steps=2, **{"train.ema_decay": 0.0}))
    train(config, tmp_path / "run", quiet=True)
    state = ckpt.safe_load(tmp_path / "run" / "checkpoints" / "step_00000002.pt")
    torch.manual_seed(0)  # the run's initial weights are seeded with train.seed=0
    from condgan.models import build_generator

    init = build_generator("resnet", 3, 8, 1, 16, 4).state_dict()
    changed = [k for k, v in state["state"]["G"].items() if k in init and not torch.equal(v, init[k])]
    assert changed, "two steps of training left every generator weight untouched"


def test_keep_last_k_checkpoints(shoes_dir, tmp_path):
    config = load_config(None, tiny_overrides(shoes_dir, steps=8, **{"train.checkpoint_every": 1, "train.keep_checkpoints": 2}))
    train(config, tmp_path / "run", quiet=True)
    assert [p.name for p in ckpt.list_checkpoints(tmp_path / "run" / "checkpoints")] == ["step_00000007.pt", "step_00000008.pt"]


def test_resume_continues_from_last_checkpoint(shoes_dir, tmp_path):
    config = load_config(None, tiny_overrides(shoes_dir, steps=4))
    train(config, tmp_path / "run", quiet=True)
    summary = train(out=tmp_path / "run", resume=True, stop_overrides={"steps": 2}, quiet=True)  # two more
    assert summary["steps"] == 6
    steps = [json.loads(line)["step"] for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5, 6]


def test_resume_is_bit_identical(shoes_dir, tmp_path):
    """Interrupted at step 3 and resumed to 6 == an uninterrupted 6-step run (deterministic CPU mode)."""
    extra = {"train.deterministic": True, "train.checkpoint_every": 3, "train.augment": "translation,cutout"}
    train(load_config(None, tiny_overrides(shoes_dir, steps=6, **extra)), tmp_path / "straight", quiet=True)
    train(load_config(None, tiny_overrides(shoes_dir, steps=3, **extra)), tmp_path / "split", quiet=True)
    train(out=tmp_path / "split", resume=True, quiet=True)  # its own stop (3) is met: trains nothing, changes nothing
    train(out=tmp_path / "split", resume=True, stop_overrides={"steps": 3}, quiet=True)  # three more
    a = ckpt.safe_load(tmp_path / "straight" / "checkpoints" / "step_00000006.pt")["state"]
    b = ckpt.safe_load(tmp_path / "split" / "checkpoints" / "step_00000006.pt")["state"]
    for net in ("G", "D", "G_ema"):
        for key in a[net]:
            assert torch.equal(a[net][key], b[net][key]), f"{net}.{key} differs after resume"
    assert a["opt_G"]["state"][0]["exp_avg"].equal(b["opt_G"]["state"][0]["exp_avg"])


def test_refuses_to_overwrite_an_existing_run(shoes_dir, tmp_path):
    config = load_config(None, tiny_overrides(shoes_dir, steps=2))
    train(config, tmp_path / "run", quiet=True)
    with pytest.raises(UserError, match="already holds a run"):
        train(load_config(None, tiny_overrides(shoes_dir, steps=2)), tmp_path / "run", quiet=True)


def test_resume_with_another_model_type_is_refused(shoes_dir, tmp_path):
    train(load_config(None, tiny_overrides(shoes_dir, steps=2)), tmp_path / "run", quiet=True)
    (tmp_path / "run" / "config.yaml").write_text((tmp_path / "run" / "config.yaml").read_text().replace("arch: resnet", "arch: mlp")
                                                  .replace("aux_form: adc", "aux_form: ce"))  # (adc needs resnet)
    with pytest.raises(CheckpointError, match="is a 'resnet' model but the config asks for 'mlp'"):
        train(out=tmp_path / "run", resume=True, stop_overrides={"steps": 4}, quiet=True)


def test_nan_stops_training_and_keeps_the_good_checkpoint(shoes_dir, tmp_path, monkeypatch):
    from condgan.tasks import gan as loop

    original = loop.LOSSES["hinge"][0]
    calls = {"n": 0}

    def poisoned(real, fake):
        calls["n"] += 1
        loss = original(real, fake)
        return loss * float("nan") if calls["n"] >= 3 else loss

    monkeypatch.setitem(loop.LOSSES, "hinge", (poisoned, loop.LOSSES["hinge"][1]))
    config = load_config(None, tiny_overrides(shoes_dir, steps=6))
    with pytest.raises(DivergenceError, match="diverged.*step_00000002.pt"):
        train(config, tmp_path / "run", quiet=True)
    good = ckpt.safe_load(tmp_path / "run" / "checkpoints" / "step_00000002.pt")
    assert all(torch.isfinite(v).all() for v in good["state"]["G"].values() if v.is_floating_point())
    assert [p.name for p in ckpt.list_checkpoints(tmp_path / "run" / "checkpoints")] == ["step_00000002.pt"]


def test_nan_rollback_recovers(shoes_dir, tmp_path, monkeypatch):
    from condgan.tasks import gan as loop

    original = loop.LOSSES["hinge"][0]
    calls = {"n": 0}

    def poisoned_once(real, fake):
        calls["n"] += 1
        loss = original(real, fake)
        return loss * float("nan") if calls["n"] == 3 else loss

    monkeypatch.setitem(loop.LOSSES, "hinge", (poisoned_once, loop.LOSSES["hinge"][1]))
    config = load_config(None, tiny_overrides(shoes_dir, steps=5, **{"train.on_divergence": "rollback"}))
    assert train(config, tmp_path / "run", quiet=True)["steps"] == 5


def test_api_sample_and_export(shoes_dir, tmp_path):
    train(load_config(None, tiny_overrides(shoes_dir)), tmp_path / "run", quiet=True)
    gen = condgan.load(tmp_path / "run")
    assert gen.class_names == ["boot", "sandal", "sneaker"]
    x = gen.sample(["sandal", "boot"], n=3, seed=0)
    assert x.shape == (6, 1, 16, 16) and x.min() >= -1 and x.max() <= 1
    assert torch.equal(x, gen.sample(["sandal", "boot"], n=3, seed=0)), "same seed must give the same images"
    pics = gen.sample("sneaker", n=2, output_type="pil")
    assert len(pics) == 2 and pics[0].size == (16, 16)
    with pytest.raises(UserError, match="unknown class 'loafer'"):
        gen.sample("loafer")
    with pytest.raises(UserError, match="between 1 and"):
        gen.sample("boot", n=-1)
    exported = gen.save_pretrained(tmp_path / "export")
    again = condgan.load(exported)
    assert torch.equal(again.sample("boot", n=2, seed=1), gen.sample("boot", n=2, seed=1))
    images, labels = gen.sample_per_class(5)
    assert images.dtype == torch.uint8 and images.shape == (15, 1, 16, 16) and labels.tolist() == [0] * 5 + [1] * 5 + [2] * 5


def test_crafted_pickle_is_refused_and_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            import os

            return (os.system, (f"touch {marker}",))

    evil = tmp_path / "step_00000001.pt"
    torch.save({"format": "condgan-checkpoint", "payload": Exploit()}, evil)
    with pytest.raises(CheckpointError, match="refusing to load"):
        ckpt.safe_load(evil)
    with pytest.raises(CheckpointError, match="refusing to load"):
        condgan.load(evil)
    assert not marker.exists()


def test_disk_full_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    import errno

    good = tmp_path / "step_00000001.pt"
    ckpt.atomic_save({"format": ckpt.FORMAT, "version": ckpt.VERSION, "x": torch.ones(3)}, good)

    def full(obj, f, *a, **k):
        f.write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(CheckpointError, match="disk full"):
        ckpt.atomic_save({"x": 1}, good)
    monkeypatch.undo()
    assert torch.equal(ckpt.safe_load(good)["x"], torch.ones(3))
    assert [p.name for p in tmp_path.iterdir()] == ["step_00000001.pt"], "temporary file left behind"


def test_corrupt_newest_checkpoint_falls_back(tmp_path):
    ckpt.atomic_save({"format": ckpt.FORMAT, "version": ckpt.VERSION, "step": 1}, ckpt.checkpoint_path(tmp_path, 1))
    ckpt.checkpoint_path(tmp_path, 2).write_bytes(b"garbage")
    with pytest.warns(UserWarning, match="skipping unreadable checkpoint"):
        state, path = ckpt.load_latest(tmp_path)
    assert state["step"] == 1


def test_sample_npz_export_format(shoes_dir, tmp_path):
    from condgan.cli import main

    train(load_config(None, tiny_overrides(shoes_dir)), tmp_path / "run", quiet=True)
    assert main(["sample", str(tmp_path / "run"), "--n-per-class", "7", "--out", str(tmp_path / "s.npz")]) == 0
    npz = np.load(tmp_path / "s.npz")
    assert npz["images"].dtype == np.uint8 and npz["images"].shape == (21, 16, 16)
    assert npz["labels"].dtype == np.int64 and np.bincount(npz["labels"]).tolist() == [7, 7, 7]
    assert list(npz["class_names"]) == ["boot", "sandal", "sneaker"]
    assert main(["sample", str(tmp_path / "run"), "--label", "sandal", "--n", "5", "--out", str(tmp_path / "s.png")]) == 0
    assert (tmp_path / "s.png").stat().st_size > 0


def test_resume_stop_flags_mean_this_much_more(shoes_dir, tmp_path):
    """After a run has spent its budget, `--resume RUN --budget-minutes M` trains for M more minutes."""
    train(load_config(None, tiny_overrides(shoes_dir, steps="", **{"train.budget_minutes": 0.01})), tmp_path / "run", quiet=True)
    first = json.loads((tmp_path / "run" / "summary.json").read_text())["steps"]
    again = train(out=tmp_path / "run", resume=True, stop_overrides={"budget_minutes": 0.01}, quiet=True)
    assert again["steps"] > first, "resuming with a budget trained nothing: the budget counted the whole run"


def test_resume_accepts_runtime_keys_and_refuses_recipe_keys(shoes_dir, tmp_path):
    from condgan.errors import ConfigError

    train(load_config(None, tiny_overrides(shoes_dir, steps=2)), tmp_path / "run", quiet=True)
    train(out=tmp_path / "run", resume=True, stop_overrides={"steps": 2}, overrides=["train.log_every=2"], quiet=True)
    steps = [json.loads(line)["step"] for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 4], "train.log_every=2 given on resume was ignored"
    assert "log_every: 2" in (tmp_path / "run" / "config.yaml").read_text()
    with pytest.raises(ConfigError, match="train.lr_g cannot change when resuming"):
        train(out=tmp_path / "run", resume=True, stop_overrides={"steps": 1}, overrides=["train.lr_g=0.1"], quiet=True)
    with pytest.raises(ConfigError, match="model.g_width cannot change"):
        train(out=tmp_path / "run", resume=True, overrides=["model.g_width=64"], quiet=True)


def test_resume_with_recipe_flags_is_refused_by_the_cli(shoes_dir, tmp_path, capsys):
    from condgan.cli import main

    train(load_config(None, tiny_overrides(shoes_dir, steps=2)), tmp_path / "run", quiet=True)
    assert main(["train", "--resume", str(tmp_path / "run"), "--arch", "mlp", "--steps", "1"]) == 2
    assert "--arch cannot be used with --resume" in capsys.readouterr().err
    assert main(["train", "--resume", str(tmp_path / "run"), "--steps", "1", "--quiet", "--set", "train.sample_every=1"]) == 0
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["steps"] == 3


def test_progress_in_a_file_is_plain_lines(shoes_dir, tmp_path, capsys, monkeypatch):
    """`make demo > log`: no carriage-return bar updates, a few whole lines."""
    monkeypatch.setenv("CONDGAN_PROGRESS_SECONDS", "0")
    train(load_config(None, tiny_overrides(shoes_dir, steps=4)), tmp_path / "run", quiet=False)
    err = capsys.readouterr().err
    assert "\r" not in err
    lines = [ln for ln in err.splitlines() if ln.startswith("training cgan resnet")]
    assert len(lines) >= 4 and "4/4 step" in lines[-1]


def test_the_loss_plot_leaves_the_users_matplotlib_backend_alone(tmp_path):
    """Training in a notebook must not switch the kernel's inline backend to Agg (plt.show would show nothing)."""
    import json

    import matplotlib

    from condgan.visual import loss_plot

    before = matplotlib.get_backend()
    matplotlib.use("svg")
    try:
        (tmp_path / "m.jsonl").write_text("".join(json.dumps({"step": s, "loss_d": 1.0 / s, "loss_g": s}) + "\n" for s in (1, 2)))
        loss_plot(tmp_path / "m.jsonl", tmp_path / "loss.png")
        assert (tmp_path / "loss.png").stat().st_size > 0
        assert matplotlib.get_backend() == "svg"
    finally:
        matplotlib.use(before)
