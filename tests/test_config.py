import pytest

from condgan.config import load_config
from condgan.errors import ConfigError


def test_defaults_and_overrides(tmp_path):
    c = load_config(None, ["train.lr_g=1e-4", "data.classes=sandal,bag", "model.arch=dcgan"])
    assert c.train.lr_g == 1e-4 and c.data.classes == ["sandal", "bag"] and c.model.arch == "dcgan"
    f = tmp_path / "c.yaml"
    f.write_text("train:\n  batch_size: 32\n")
    assert load_config(f).train.batch_size == 32


@pytest.mark.parametrize("override,message", [
    ("train.lrg=1", "unknown config key 'train.lrg'"),
    ("training.lr=1", "unknown config section 'training'"),
    ("train.batch_size=abc", "train.batch_size must be int"),
    ("train.batch_size=true", "train.batch_size must be int"),
    ("train.lr_g=fast", "train.lr_g must be a number"),
    ("model.arch=vae", "model.arch for task cgan must be one of"),
    ("train.loss=wgan", "train.loss must be one of"),
    ("train.batch_size=0", "batch_size must be between"),
    ("train.diversity_weight=-1", "train.diversity_weight must be >= 0"),
    ("train.diversity_weight=abc", "train.diversity_weight must be a number"),
    ("lr=1", "section.key=value"),
])
def test_bad_values_name_the_key(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [override])


def test_bad_yaml_file(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("train: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(f)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")


def test_shipped_configs_load():
    from pathlib import Path

    shipped = sorted(Path(__file__).parents[1].joinpath("configs").glob("*.yaml"))
    assert len(shipped) >= 5, "the configs users copy are missing"
    tasks = {load_config(path).task for path in shipped}
    assert {"cgan", "translate"} <= tasks, f"a copyable config for the main tasks, got {tasks}"
