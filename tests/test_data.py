import gzip

import numpy as np
import pytest
import torch
from PIL import Image

from condgan.data import load_dataset, resolve_class
from condgan.data.folders import load_image
from condgan.errors import DataError


def test_idx_dataset_by_path(idx_dir):
    data = load_dataset(str(idx_dir))
    assert data.images.shape == (64, 1, 12, 12) and data.images.dtype == torch.uint8
    assert data.counts() == [16, 16, 16, 16]
    test = load_dataset(str(idx_dir), split="test")
    assert len(test) == 16


def test_idx_by_name_with_data_dir_and_subset(idx_dir):
    data = load_dataset("mnist", data_dir=str(idx_dir), classes=["3", "1"])
    assert data.class_names == ["3", "1"]
    assert set(data.labels.tolist()) == {0, 1} and len(data) == 32
    # relabelled: what was class 3 is now 0
    full = load_dataset("mnist", data_dir=str(idx_dir))
    assert torch.equal(data.images[data.labels == 0], full.images[full.labels == 3])


def test_truncated_idx_is_a_clear_error(idx_dir):
    path = idx_dir / "train-images-idx3-ubyte.gz"
    raw = gzip.open(path).read()
    with gzip.open(path, "wb") as f:
        f.write(raw[: len(raw) // 2])
    with pytest.raises(DataError, match="truncated"):
        load_dataset(str(idx_dir))


def test_missing_fashion_mnist_says_how_to_get_it(tmp_path):
    with pytest.raises(DataError, match="apt-get install dataset-fashion-mnist"):
        load_dataset("fashion-mnist", data_dir=str(tmp_path))


def test_folder_dataset_names_and_resize(shoes_dir):
    data = load_dataset(str(shoes_dir), image_size=16, split="all")
    assert data.class_names == ["boot", "sandal", "sneaker"]
    assert data.images.shape == (36, 1, 16, 16)
    train, test = load_dataset(str(shoes_dir), image_size=16), load_dataset(str(shoes_dir), split="test", image_size=16)
    assert len(train) + len(test) == 36 and len(test) == 3


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "P", "I;16", "LA", "1"])
def test_any_pillow_mode_is_normalised(tmp_path, mode):
    arr = (np.arange(64 * 48) % 251).reshape(48, 64).astype(np.uint8)
    img = Image.fromarray(arr).convert(mode) if mode != "I;16" else Image.fromarray(arr.astype(np.uint16) * 257)
    path = tmp_path / f"x_{mode.replace(';', '')}.png"
    img.save(path)
    for channels in (1, 3):
        out = load_image(path, channels, 16)
        assert out.shape == (channels, 16, 16) and out.dtype == np.uint8
    if mode == "I;16":  # 16-bit is scaled to 8 bits, not clipped: same picture as the 8-bit file
        Image.fromarray(arr).save(tmp_path / "eight.png")
        diff = load_image(path, 1, 16).astype(int) - load_image(tmp_path / "eight.png", 1, 16).astype(int)
        assert abs(diff).max() <= 2


def test_bad_files_are_skipped_or_refused(shoes_dir):
    (shoes_dir / "boot" / "empty.png").write_bytes(b"")
    (shoes_dir / "boot" / "notes.txt").write_text("not an image")
    good = (shoes_dir / "boot" / "000.png").read_bytes()
    (shoes_dir / "boot" / "truncated.png").write_bytes(good[: len(good) // 2])
    with pytest.warns(UserWarning, match="skipped"):
        data = load_dataset(str(shoes_dir), split="all")
    assert len(data) == 36
    with pytest.raises(DataError, match="not a readable image"):
        load_dataset(str(shoes_dir), split="all", bad_files="error")


def test_decompression_bomb_is_refused(tmp_path):
    Image.new("L", (9000, 9000)).save(tmp_path / "bomb.png")  # 81 Mpx of zeros compresses to a few KB
    with pytest.raises(DataError, match="too large|decompression bomb"):
        load_image(tmp_path / "bomb.png", 1, 16)


def test_empty_class_folder_single_class_and_unknown_class(shoes_dir, tmp_path):
    (shoes_dir / "heels").mkdir()
    with pytest.raises(DataError, match="heels is empty"):
        load_dataset(str(shoes_dir))
    (shoes_dir / "heels").rmdir()
    with pytest.raises(DataError, match="unknown class 'loafer'; known classes: boot, sandal, sneaker"):
        load_dataset(str(shoes_dir), classes=["boot", "loafer"])
    with pytest.raises(DataError, match="at least 2"):
        load_dataset(str(shoes_dir), classes=["boot"])
    single = tmp_path / "single"
    (single / "only").mkdir(parents=True)
    Image.new("L", (8, 8)).save(single / "only" / "a.png")
    with pytest.raises(DataError, match="single class"):
        load_dataset(str(single))
    with pytest.raises(DataError, match="does not exist|unknown dataset"):
        load_dataset(str(tmp_path / "nowhere"))


def test_resolve_class_names_and_indices():
    names = ["t-shirt", "ankle-boot", "bag"]
    assert resolve_class("Ankle Boot", names) == 1
    assert resolve_class("2", names) == 2
    with pytest.raises(DataError, match="out of range"):
        resolve_class(7, names)
