"""Paired translation as a task of the one loop: train, resume, load, translate, apply, sample, eval."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

import condgan
from condgan.cli import main
from condgan.config import load_config
from condgan.errors import ConfigError, UserError
from condgan.training import checkpoint as ckpt
from condgan.training import train
from conftest import needs_fashion, tiny_overrides, tiny_translate_overrides


@pytest.fixture
def trained(pairs_dir, tmp_path):
    train(load_config(None, tiny_translate_overrides(pairs_dir)), tmp_path / "run", quiet=True)
    return tmp_path / "run"


def test_translation_trains_in_the_one_loop_and_checkpoints_its_task(trained):
    state = ckpt.safe_load(trained / "checkpoints" / "step_00000004.pt")
    assert state["task"] == "translate" and state["version"] == ckpt.VERSION
    assert state["networks"]["G"]["class"] == "UNetGenerator" and state["networks"]["D"]["class"] == "PatchDiscriminator"
    assert set(state["spec"]) == {"source", "image"}
    records = [json.loads(line) for line in (trained / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3, 4] and all("loss_l1" in r and "loss_d" in r for r in records)
    assert (trained / "samples" / "latest.png").is_file() and (trained / "loss.png").is_file()
    assert "task: translate" in (trained / "config.yaml").read_text()


def test_translation_resumes(trained):
    summary = train(out=trained, resume=True, stop_overrides={"steps": 2}, quiet=True)
    assert summary["steps"] == 6


def test_translator_takes_arrays_tensors_and_pil_images(trained):
    tr = condgan.load(trained)
    assert tr.task == "translate" and tr.source.channels == 1 and tr.target.size == (16, 16)
    mask = np.zeros((16, 16), dtype=np.uint8)
    mask[4:8] = 255
    one = tr.translate(mask)
    assert one.shape == (1, 1, 16, 16) and one.min() >= -1 and one.max() <= 1
    assert torch.equal(one, tr.translate(Image.fromarray(mask))), "PIL and uint8 arrays must agree"
    assert torch.equal(one, tr.translate(torch.from_numpy(mask)[None].float() / 127.5 - 1))
    batch = tr.translate(np.stack([mask] * 3), output_type="uint8")
    assert batch.dtype == torch.uint8 and batch.shape == (3, 1, 16, 16)
    rgb_rect = Image.fromarray(np.stack([mask] * 3, -1)).resize((40, 24))
    assert tr.translate([rgb_rect], output_type="pil")[0].size == (16, 16)
    with pytest.raises(UserError, match="uint8"):
        tr.translate(mask.astype(np.float64))
    with pytest.raises(UserError, match="cannot translate a str"):
        tr.translate("mask.png")


def test_export_loads_as_a_translator(trained, tmp_path):
    tr = condgan.load(trained)
    folder = tr.save_pretrained(tmp_path / "export")
    again = condgan.load(folder)
    assert type(again).__name__ == "Translator"
    x = np.full((16, 16), 255, dtype=np.uint8)
    assert torch.equal(again.translate(x, seed=4), tr.translate(x, seed=4))


def test_apply_keeps_names_skips_bad_files_and_writes_the_split_npz(trained, pairs_dir, tmp_path, capsys):
    inputs = tmp_path / "inputs"
    (inputs / "sub").mkdir(parents=True)
    Image.open(pairs_dir / "A" / "000.png").save(inputs / "first.png")
    Image.open(pairs_dir / "A" / "001.png").convert("RGB").save(inputs / "sub" / "second.jpg")
    (inputs / "broken.png").write_bytes(b"not an image")
    with pytest.warns(UserWarning, match="skipped .*broken.png: not a readable image"):
        assert main(["apply", str(trained), str(inputs), "--out", str(tmp_path / "out")]) == 0
    assert sorted(str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*.png")) == ["first.png", "sub/second.png"]
    assert "skipped 1 unreadable" in capsys.readouterr().out
    assert main(["apply", str(trained), "--split", "test", "--out", str(tmp_path / "t.npz")]) == 0
    npz = np.load(tmp_path / "t.npz")
    assert set(npz.files) == {"images", "sources", "targets"}
    assert npz["images"].dtype == np.uint8 and npz["images"].shape == npz["targets"].shape == (2, 16, 16)


@pytest.mark.parametrize("argv,message", [
    (["apply", "RUN", "--out", "x"], "give INPUT files/folders"),
    (["apply", "RUN", "--split", "test", "--out", "x.png"], "--out must be an .npz"),
    (["apply", "RUN", "nowhere/", "--out", "o"], "input nowhere does not exist"),
    (["sample", "RUN", "--out", "x.npz"], "sample sheet is a .png"),
])
def test_translation_commands_explain_bad_input(trained, tmp_path, capsys, argv, message, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = [str(trained) if a == "RUN" else a for a in argv]
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_apply_refuses_a_class_conditional_model(shoes_dir, tmp_path, capsys):
    train(load_config(None, tiny_overrides(shoes_dir, steps=2)), tmp_path / "cgan", quiet=True)
    assert main(["apply", str(tmp_path / "cgan"), str(shoes_dir), "--out", str(tmp_path / "o")]) == 2
    assert "use `condgan sample`" in capsys.readouterr().err


def test_sample_sheet_and_eval_of_a_translator(trained, tmp_path, capsys):
    assert main(["sample", str(trained), "--out", str(tmp_path / "sheet.png"), "--n", "2"]) == 0
    assert (tmp_path / "sheet.png").stat().st_size > 0
    assert main(["eval", str(trained), "--quiet"]) == 0
    report = json.loads((trained / "eval" / "report.json").read_text())
    assert report["kind"] == "translation" and report["n_pairs"] == 2
    for key in ("l1", "ssim", "sharpness_ratio"):
        assert report["model"][key] is not None and report["real_floor"][key] is not None
    assert "SSIM" in capsys.readouterr().out


def test_l1_only_variant_never_updates_d(pairs_dir, tmp_path):
    train(load_config(None, tiny_translate_overrides(pairs_dir, **{"train.adversarial_weight": 0})), tmp_path / "run", quiet=True)
    state = ckpt.safe_load(tmp_path / "run" / "checkpoints" / "step_00000004.pt")["state"]
    assert state["opt_D"]["state"] == {}, "an L1-only model must not spend time on D"
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert all(r["loss_g"] == pytest.approx(10 * r["loss_l1"], rel=1e-5) for r in records)


def test_feature_matching_and_jitter_train(pairs_dir, tmp_path):
    overrides = tiny_translate_overrides(pairs_dir, **{"train.feature_matching": 10, "data.jitter": "flip,shift"})
    train(load_config(None, overrides), tmp_path / "run", quiet=True)
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert all(r["loss_fm"] > 0 for r in records)


def test_jitter_moves_source_and_target_together():
    from condgan.training.augment import jitter

    x = torch.arange(2 * 8 * 8, dtype=torch.float32).view(2, 1, 8, 8)
    batch = {"source": x.clone(), "image": x.clone() * 2, "label": torch.tensor([0, 1])}
    out = jitter(batch, ["flip", "shift"], ["source", "image"], torch.Generator().manual_seed(3))
    assert torch.equal(out["image"], out["source"] * 2), "source and target were moved differently"
    assert not torch.equal(out["source"], x), "jitter changed nothing"
    assert torch.equal(out["label"], batch["label"])


def test_translation_config_errors_name_the_key(pairs_dir):
    with pytest.raises(ConfigError, match="model.arch for task translate"):
        load_config(None, tiny_translate_overrides(pairs_dir, **{"model.arch": "resnet"}))
    with pytest.raises(ConfigError, match="train.l1_weight is for --task translate"):
        load_config(None, ["train.l1_weight=10"])
    with pytest.raises(ConfigError, match="data.direction must be AtoB or BtoA"):
        load_config(None, tiny_translate_overrides(pairs_dir, **{"data.direction": "sideways"}))


@needs_fashion
def test_builtin_pairs_with_labels_conditioning_the_translator(tmp_path):
    overrides = tiny_translate_overrides("fashion-mnist-masks", steps=2, **{"data.classes": "sandal,bag", "model.use_label": True})
    train(load_config(None, overrides), tmp_path / "run", quiet=True)
    tr = condgan.load(tmp_path / "run")
    assert tr.uses_label and tr.class_names == ["sandal", "bag"]
    mask = np.zeros((28, 28), dtype=np.uint8)
    with pytest.raises(UserError, match="needs a label"):
        tr.translate(mask)
    assert tr.translate(mask, labels="bag").shape == (1, 1, 28, 28)


def test_use_label_without_labelled_pairs_is_a_clear_error(pairs_dir, tmp_path):
    with pytest.raises(ConfigError, match="model.use_label needs pairs with class labels"):
        train(load_config(None, tiny_translate_overrides(pairs_dir, **{"model.use_label": True})), tmp_path / "r", quiet=True)


def test_the_summary_line_reads_na_where_a_floor_is_missing(monkeypatch, capsys, tmp_path):
    """A floor the data could not give (None) prints 'n/a', as report.md does, instead of a format error."""
    import argparse

    import condgan.eval.translation as translation
    from condgan.tasks.translate import TranslationTask

    report = {"model": {"l1": 0.2, "ssim": 0.5, "sharpness_ratio": 0.9, "fid": 1.5, "recall": 0.4, "class_accuracy": 0.8},
              "real_floor": {"fid": None, "recall": 0.9, "class_accuracy": None}}
    monkeypatch.setattr(translation, "evaluate_translator", lambda *a, **k: report)
    args = argparse.Namespace(max_pairs=None, seed=0, quiet=True, run="run")
    assert TranslationTask.evaluate(None, args, tmp_path) == 0
    line = capsys.readouterr().out.splitlines()[0]
    assert "FID 1.500 (real n/a)" in line and "recall 0.400 (real 0.900)" in line and "80.0% (real n/a)" in line
