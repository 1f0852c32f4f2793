"""Small folders of one's own: colour decided from content, augmentation on by default below 10,000 images."""

import logging

import numpy as np
import yaml
from PIL import Image

from condgan.config import load_config
from condgan.data import load_dataset
from condgan.training import train
from conftest import class_pattern, tiny_overrides


def _mixed_folder(root, colour: bool):
    """Two classes of grey garments saved as L, RGB PNG and RGB JPEG (and, with colour=True, one red image)."""
    rng = np.random.default_rng(0)
    for label, name in enumerate(("boot", "sandal")):
        (root / name).mkdir(parents=True)
        for i in range(6):
            grey = class_pattern(label, 20, rng)
            if i % 3 == 0:
                Image.fromarray(grey).save(root / name / f"{i}.png")
            elif i % 3 == 1:
                Image.fromarray(grey).convert("RGB").save(root / name / f"{i}.png")
            else:
                Image.fromarray(grey).convert("RGB").save(root / name / f"{i}.jpg", quality=70)
    if colour:
        red = np.zeros((20, 20, 3), np.uint8)
        red[..., 0] = 200
        Image.fromarray(red).save(root / "boot" / "red.png")
    return root


def test_grey_content_trains_with_one_channel_whatever_the_file_modes(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="condgan"):
        data = load_dataset(str(_mixed_folder(tmp_path / "grey", colour=False)), image_size=16)
    assert data.channels == 1
    assert any("grey in content" in r.getMessage() and "1 channel" in r.getMessage() for r in caplog.records)


def test_a_folder_with_colour_keeps_three_channels_and_the_override_wins(tmp_path, caplog):
    folder = _mixed_folder(tmp_path / "colour", colour=True)
    with caplog.at_level(logging.INFO, logger="condgan"):
        assert load_dataset(str(folder), image_size=16).channels == 3
    assert any("have colour" in r.getMessage() for r in caplog.records)
    assert load_dataset(str(folder), image_size=16, channels=1).channels == 1
    assert load_dataset(str(_mixed_folder(tmp_path / "g", colour=False)), image_size=16, channels=3).channels == 3


def test_small_data_augments_by_default_and_the_config_can_turn_it_off(shoes_dir, tmp_path):
    train(load_config(None, tiny_overrides(shoes_dir, steps=1)), tmp_path / "auto", quiet=True)
    saved = yaml.safe_load((tmp_path / "auto" / "config.yaml").read_text())
    assert saved["train"]["augment"] == ["translation", "cutout"]  # resolved and recorded, so resume keeps it
    train(load_config(None, tiny_overrides(shoes_dir, steps=1, **{"train.augment": "[]"})), tmp_path / "off", quiet=True)
    assert yaml.safe_load((tmp_path / "off" / "config.yaml").read_text())["train"]["augment"] == []


def test_model_widths_follow_the_image_size_unless_set(shoes_dir, tmp_path, capsys):
    """The resnet's full-resolution widths: 16 up to 32 px, 8 above (where those layers cost most CPU time);
    resolved when the data is known, recorded in config.yaml, logged; an explicit width wins."""
    def widths(run, size, quiet=True, **extra):
        overrides = [o for o in tiny_overrides(shoes_dir, steps=1, **{"data.image_size": size})
                     if not o.startswith(("model.g_width", "model.d_width"))] + [f"{k}={v}" for k, v in extra.items()]
        train(load_config(None, overrides), tmp_path / run, quiet=quiet)
        model = yaml.safe_load((tmp_path / run / "config.yaml").read_text())["model"]
        return model["g_width"], model["d_width"]

    assert widths("big", 64, quiet=False) == (8, 8)
    assert "model.g_width 8, model.d_width 8 by default" in capsys.readouterr().err  # (tiny_overrides sets the batch)
    assert widths("small", 32) == (16, 16)
    assert widths("set", 64, **{"model.g_width": 12}) == (12, 8)
    assert widths("dcgan", 64, **{"model.arch": "dcgan", "train.loss": "lsgan"}) == (16, 16)


def test_size_defaults_fill_only_what_is_unset():
    config = load_config(None, ["data.name=some/folder"])
    assert (config.model.g_width, config.train.batch_size) == (None, None)  # known once the data is loaded
    assert config.resolve_for_size(64) == ["model.g_width", "model.d_width", "train.batch_size", "train.aux_form",
                                           "train.standing_stats", "train.adc_weight", "train.diversity_weight"]
    assert (config.model.g_width, config.model.d_width, config.train.batch_size, config.train.aux_form,
            config.train.diversity_weight) == (8, 8, 32, "adc", 0.75)
    config = load_config(None, ["train.batch_size=128"])
    assert config.resolve_for_size(28) == ["model.g_width", "model.d_width", "train.aux_form", "train.standing_stats",
                                           "train.adc_weight", "train.diversity_weight"]
    t = config.train
    assert (config.model.g_width, t.batch_size, t.aux_form, t.adc_weight, t.diversity_weight) == (16, 128, "adc", 0.1, 0.75)
    config = load_config(None, ["train.aux_form=twin", "train.diversity_weight=0.2"])
    config.resolve_for_size(28)
    t = config.train  # a chosen class term is kept, with its own default weight; a chosen diversity weight too
    assert (t.aux_form, t.twin_weight, t.diversity_weight) == ("twin", 0.35, 0.2)
    assert load_config(None, ["model.arch=dcgan", "train.loss=lsgan"]).train.aux_form == "ce"  # no class head
    assert load_config(None, ["task=translate"]).train.batch_size == 64  # other tasks: fixed defaults
