"""condgan.train from Python: its data forms, and the answers to careless calls."""

import numpy as np
import pytest
import torch

import condgan
from condgan.cli import main
from condgan.errors import UserError

TINY = {"task": "cgan", "model": {"g_width": 4, "d_width": 4, "z_dim": 8}, "train": {"batch_size": 8, "log_every": 1}}


def arrays(n=40, size=12, classes=("a", "b")):
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (n, size, size), dtype=np.uint8), np.arange(n) % len(classes), list(classes)


def test_arrays_become_an_npz_the_command_line_can_resume_and_sample(tmp_path, capsys):
    gen = condgan.train(TINY, data=arrays(), out=tmp_path / "run", steps=2)
    assert gen.class_names == ["a", "b"] and (tmp_path / "run" / "data.npz").is_file()
    assert main(["train", "--resume", str(tmp_path / "run"), "--steps", "1", "--quiet"]) == 0
    assert main(["sample", str(tmp_path / "run"), "--label", "b", "--n", "2", "--out", str(tmp_path / "b.png")]) == 0
    # the same file is a dataset on the command line
    assert main(["train", "--data", str(tmp_path / "run" / "data.npz"), "--steps", "1", "--quiet", "--out",
                 str(tmp_path / "again"), "--set", "model.g_width=4", "model.d_width=4", "train.batch_size=8"]) == 0


def test_a_yaml_path_and_overrides(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("model: {g_width: 4, d_width: 4, z_dim: 8}\ntrain: {batch_size: 8}\n")
    gen = condgan.train(cfg, data=arrays(), out=tmp_path / "y", steps=1, overrides=["train.lr_g=1e-4"])
    assert gen.z_dim == 8
    assert "lr_g: 0.0001" in (tmp_path / "y" / "config.yaml").read_text()


@pytest.mark.parametrize("data,message", [
    ((np.zeros((4, 8, 8), np.float32), [0, 1, 0, 1], ["a", "b"]), "images must be uint8"),
    ((np.zeros((4, 8, 8), np.uint8), [0, 1, 0], ["a", "b"]), "4 images but 3 labels"),
    ((np.zeros((4, 8, 8), np.uint8), [0, 1, 2, 1], ["a", "b"]), "labels must be in 0..1"),
    ((np.zeros((4, 8, 8), np.uint8), [0, 0, 0, 0], ["a"]), "at least 2 distinct names"),
    ((np.zeros((4, 8, 6), np.uint8), [0, 1, 0, 1], ["a", "b"]), "must be square"),
    ([1, 2, 3], "data must be a dataset name or path"),
])
def test_careless_data_is_one_clear_error_and_writes_nothing(tmp_path, data, message):
    with pytest.raises(UserError, match=message):
        condgan.train(TINY, data=data, out=tmp_path / "run", steps=1)
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_a_dataset_without_class_names_is_refused_and_one_with_them_trains(tmp_path):
    class Plain(torch.utils.data.Dataset):
        def __len__(self):
            return 16

        def __getitem__(self, i):
            return torch.rand(1, 12, 12), i % 2

    with pytest.raises(UserError, match="give class names"):
        condgan.train(TINY, data=Plain(), out=tmp_path / "x", steps=1)
    gen = condgan.train(TINY, data=(Plain(), ["odd", "even"]), out=tmp_path / "x", steps=1)
    assert gen.class_names == ["odd", "even"]


def test_an_existing_run_is_not_overwritten_and_resume_takes_no_new_recipe(tmp_path):
    condgan.train(TINY, data=arrays(), out=tmp_path / "run", steps=1)
    before = (tmp_path / "run" / "data.npz").read_bytes()
    with pytest.raises(UserError, match="already holds a run"):
        condgan.train(TINY, data=arrays(n=60), out=tmp_path / "run", steps=1)
    assert (tmp_path / "run" / "data.npz").read_bytes() == before, "the run's data was not replaced"
    with pytest.raises(UserError, match="leave config and data out"):
        condgan.train(TINY, out=tmp_path / "run", resume=True, steps=1)
    assert condgan.train(out=tmp_path / "run", resume=True, steps=1).class_names == ["a", "b"]
