"""data.cache=disk (folders decoded once into a file, the same data as in memory) and train.precision."""

import json
import os
import time

import pytest
import torch

from conftest import tiny_overrides, write_folders
from condgan.config import load_config
from condgan.data import load_dataset
from condgan.data.cache import DiskImages, cache_root
from condgan.errors import ConfigError, DataError
from condgan.training import train


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("CONDGAN_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_disk_cache_holds_the_same_images_and_is_reused(tmp_path):
    root = write_folders(tmp_path / "shoes", per_class=12, size=20)
    memory = load_dataset(str(root), image_size=16, cache="memory")
    disk = load_dataset(str(root), image_size=16, cache="disk")
    assert isinstance(disk.images, DiskImages) and isinstance(memory.images, torch.Tensor)
    assert disk.images.shape == memory.images.shape and disk.class_names == memory.class_names
    assert torch.equal(disk.images[:], memory.images) and torch.equal(disk.labels, memory.labels)
    idx = torch.tensor([5, 0, 31, 5])
    assert torch.equal(disk.images[idx], memory.images[idx])
    assert torch.equal(disk.images[-1], memory.images[-1])
    with pytest.raises(IndexError):
        disk.images[torch.tensor([len(memory.labels)])]

    built = [p for p in cache_root().iterdir() if p.is_dir()]
    assert len(built) == 1
    stamp = (built[0] / "meta.json").stat().st_mtime_ns
    again = load_dataset(str(root), image_size=16, cache="disk")
    assert (built[0] / "meta.json").stat().st_mtime_ns == stamp, "a second load decoded again instead of reusing the cache"
    assert torch.equal(again.images[:], memory.images)

    # a class subset is a view of the same file, relabelled
    sub = load_dataset(str(root), image_size=16, cache="disk", classes=["sneaker", "boot"])
    sub_memory = load_dataset(str(root), image_size=16, cache="memory", classes=["sneaker", "boot"])
    assert torch.equal(sub.images[:], sub_memory.images) and torch.equal(sub.labels, sub_memory.labels)

    # a changed file, or another image size, is another cache
    changed = root / "boot" / "000.png"
    os.utime(changed, ns=(time.time_ns(), time.time_ns() + 10**9))
    load_dataset(str(root), image_size=16, cache="disk")
    load_dataset(str(root), image_size=8, cache="disk")
    assert len([p for p in cache_root().iterdir() if p.is_dir()]) == 3


def test_unreadable_files_are_skipped_in_the_cache_too(tmp_path):
    root = write_folders(tmp_path / "shoes", per_class=12, size=20)
    (root / "boot" / "junk.png").write_text("not an image")
    with pytest.warns(UserWarning, match="junk.png"):
        disk = load_dataset(str(root), split="all", image_size=16, cache="disk")
    with pytest.warns(UserWarning, match="junk.png"):  # reported again when the cache is reused
        load_dataset(str(root), split="all", image_size=16, cache="disk")
    assert len(disk.images) == 36
    with pytest.raises(DataError, match="junk.png"):
        load_dataset(str(root), split="all", image_size=16, cache="disk", bad_files="error")


def test_training_from_the_disk_cache_is_the_same_training(tmp_path):
    root = write_folders(tmp_path / "shoes", per_class=8, size=16)
    losses = {}
    for mode in ("memory", "disk"):
        summary = train(load_config(None, tiny_overrides(root, steps=3, **{"data.cache": mode})), tmp_path / mode, quiet=True)
        assert summary["steps"] == 3
        losses[mode] = [json.loads(line) for line in (tmp_path / mode / "metrics.jsonl").read_text().splitlines()]
        for record in losses[mode]:
            record.pop("images_per_s"), record.pop("elapsed_s")
    assert losses["memory"] == losses["disk"]


def test_bad_cache_and_precision_settings_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="data.cache"):
        load_config(None, ["data.cache=ram"])
    with pytest.raises(ConfigError, match="train.precision"):
        load_config(None, ["train.precision=fp8"])
    root = write_folders(tmp_path / "shoes", per_class=8, size=16)
    with pytest.raises(ConfigError, match="fp16 needs a GPU"):
        train(load_config(None, tiny_overrides(root, **{"train.precision": "fp16", "train.device": "cpu"})), tmp_path / "r")


def test_bf16_training_runs_on_cpu(tmp_path):
    if not torch.backends.mkldnn.is_available():
        pytest.skip("no oneDNN: bf16 autocast on this CPU is not supported")
    root = write_folders(tmp_path / "shoes", per_class=8, size=16)
    summary = train(load_config(None, tiny_overrides(root, steps=3, **{"train.precision": "bf16"})), tmp_path / "r", quiet=True)
    assert summary["steps"] == 3
    import condgan

    images = condgan.load(tmp_path / "r").sample(["boot"], n=2)
    assert images.dtype == torch.float32 and torch.isfinite(images).all()


def test_auto_precision_is_bf16_only_where_the_cpu_computes_it(tmp_path):
    from condgan.training.trainer import resolve_precision

    native = torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    assert resolve_precision("auto", torch.device("cpu")) == ("bf16" if native else "fp32")
    assert resolve_precision("fp32", torch.device("cpu")) == "fp32"
    root = write_folders(tmp_path / "shoes", per_class=8, size=16)
    summary = train(load_config(None, tiny_overrides(root, steps=1)), tmp_path / "r", quiet=True)
    assert summary["precision"] == ("bf16" if native else "fp32")
