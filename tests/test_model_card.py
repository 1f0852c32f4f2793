"""`condgan export` writes a model card (README.md with Hub front matter), sample.png and config.yaml; loading ignores them."""

import json
from pathlib import Path

import pytest
import torch
import yaml

import condgan
from condgan.cli import main
from condgan.config import load_config
from condgan.training import train

from conftest import tiny_overrides, tiny_translate_overrides, write_folders, write_pairs


def front_matter(card: str) -> dict:
    assert card.startswith("---\n")
    head, _ = card[4:].split("\n---\n", 1)
    return yaml.safe_load(head)


def text_files(folder: Path) -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8") for p in folder.iterdir() if p.suffix in (".md", ".json", ".yaml")}


@pytest.fixture(scope="module")
def cgan_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("cgan")
    train(load_config(None, tiny_overrides(write_folders(root / "shoes"))), root / "run", quiet=True)
    return root / "run"


@pytest.fixture(scope="module")
def translate_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("translate")
    train(load_config(None, tiny_translate_overrides(write_pairs(root / "pairs"))), root / "run", quiet=True)
    return root / "run"


def test_a_cgan_export_has_a_card_with_hub_front_matter_fields_and_training(cgan_run, tmp_path, capsys):
    assert main(["export", str(cgan_run), str(tmp_path / "export")]) == 0
    out = tmp_path / "export"
    card = (out / "README.md").read_text(encoding="utf-8")
    meta = front_matter(card)
    assert meta["library_name"] == "condgan" and meta["license"] == "mit"
    assert meta["pipeline_tag"] == "unconditional-image-generation"
    assert {"condgan", "cgan", "gan", "conditional-image-generation"} <= set(meta["tags"])
    assert meta["condgan_pipeline"] == "ClassConditional" and meta["condgan_task"] == "cgan"
    assert "3 classes: `boot`, `sandal`, `sneaker`" in card
    assert "model.sample('boot', n=4, seed=0)" in card
    summary = json.loads((cgan_run / "summary.json").read_text())
    assert f"- steps: {summary['steps']}" in card and f"- images/s: {summary['images_per_s']:,.0f}" in card
    assert "a local folder or file (`shoes`" in card
    assert "## Evaluation" not in card  # the run has no `condgan eval` yet
    assert (out / "sample.png").read_bytes() == (cgan_run / "samples" / "latest.png").read_bytes()
    assert "![samples from the model](sample.png)" in card
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["data"]["name"] == "shoes" and config["model"]["g_width"] == 4
    local = str(cgan_run.parent)
    for name, text in text_files(out).items():
        assert local not in text, name
    model, again = condgan.load(cgan_run), condgan.load(out)
    assert torch.equal(model.sample("sandal", n=2, seed=3), again.sample("sandal", n=2, seed=3))


def test_the_card_shows_the_latest_eval_beside_the_real_floor(cgan_run, tmp_path):
    report = {"model": {"fid": 12.3456, "accuracy": 0.875, "per_class": [1, 2], "note": "x", "recall": None},
              "real_floor": {"fid": 0.5, "accuracy": 0.99, "recall": 0.7}}
    (cgan_run / "eval").mkdir(exist_ok=True)
    (cgan_run / "eval" / "report.json").write_text(json.dumps(report))
    try:
        card = (condgan.load(cgan_run).save_pretrained(tmp_path / "export") / "README.md").read_text()
    finally:
        (cgan_run / "eval" / "report.json").unlink()
    assert "| fid | 12.35 | 0.5 |" in card and "| accuracy | 0.875 | 0.99 |" in card
    assert "recall" not in card and "per_class" not in card  # only numbers both sides have


def test_a_translate_export_after_condgan_eval(translate_run, tmp_path):
    assert main(["eval", str(translate_run)]) == 0
    assert main(["export", str(translate_run), str(tmp_path / "export")]) == 0
    out = tmp_path / "export"
    card = (out / "README.md").read_text(encoding="utf-8")
    meta = front_matter(card)
    assert meta["pipeline_tag"] == "image-to-image" and {"translate", "image-to-image", "gan"} <= set(meta["tags"])
    assert meta["condgan_pipeline"] == "Translator"
    assert "- `source`: an image, 1 channel, 16×16 px" in card and "model.translate(" in card
    floor = json.loads((translate_run / "eval" / "report.json").read_text())["real_floor"]
    assert "| ssim | " in card and f"| {floor['ssim']:.4g} |" in card
    assert (out / "sample.png").is_file() and (out / "config.yaml").is_file()
    for name, text in text_files(out).items():
        assert str(translate_run.parent) not in text, name
    x = torch.zeros(1, 1, 16, 16)
    assert torch.equal(condgan.load(out).translate(x, seed=1), condgan.load(translate_run).translate(x, seed=1))


def test_an_export_of_an_export_has_a_card_without_run_facts(cgan_run, tmp_path):
    first = condgan.load(cgan_run).save_pretrained(tmp_path / "first")
    second = condgan.load(first).save_pretrained(tmp_path / "second")
    card = (second / "README.md").read_text()
    assert front_matter(card)["condgan_task"] == "cgan" and "`sandal`" in card
    assert "## Samples" not in card and not (second / "sample.png").exists() and not (second / "config.yaml").exists()
    condgan.load(second)
