"""Tiny synthetic datasets so every test runs in seconds on CPU."""

import gzip
import struct
from pathlib import Path

import numpy as np
import torch
import pytest
from PIL import Image

torch.set_num_threads(1)  # tiny models: one thread is as fast and leaves a core free

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


def class_pattern(label: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """A grayscale image whose class is obvious: a bar at a class-specific place, plus noise."""
    img = rng.integers(0, 40, (size, size)).astype(np.uint8)
    band = size // 4
    if label % 2 == 0:
        img[(label // 2) * band % size:(label // 2) * band % size + band, :] = 230
    else:
        img[:, (label // 2) * band % size:(label // 2) * band % size + band] = 230
    return img


def write_idx(folder: Path, n_train: int = 64, n_test: int = 16, classes: int = 4, size: int = 12, seed: int = 0) -> Path:
    """Write an MNIST-style IDX dataset (4 .gz files)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = np.arange(n, dtype=np.uint8) % classes
        images = np.stack([class_pattern(int(y), size, rng) for y in labels])
        with gzip.open(folder / f"{prefix}-images-idx3-ubyte.gz", "wb") as f:
            f.write(struct.pack(">BBBB3I", 0, 0, 0x08, 3, n, size, size) + images.tobytes())
        with gzip.open(folder / f"{prefix}-labels-idx1-ubyte.gz", "wb") as f:
            f.write(struct.pack(">BBBBI", 0, 0, 0x08, 1, n) + labels.tobytes())
    return folder


def write_folders(root: Path, classes=("boot", "sandal", "sneaker"), per_class: int = 12, size: int = 20, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    for label, name in enumerate(classes):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            Image.fromarray(class_pattern(label, size, rng)).save(root / name / f"{i:03d}.png")
    return root


@pytest.fixture
def idx_dir(tmp_path):
    return write_idx(tmp_path / "idx")


@pytest.fixture
def shoes_dir(tmp_path):
    return write_folders(tmp_path / "shoes")


def tiny_overrides(data: Path, steps: int = 4, **extra) -> list[str]:
    """Config overrides for a training run that takes about a second."""
    base = {"data.name": str(data), "data.image_size": 16, "model.g_width": 4, "model.d_width": 4, "model.z_dim": 8,
            "train.batch_size": 8, "train.steps": steps, "train.log_every": 1, "train.sample_every": 2,
            "train.checkpoint_every": 2, "train.ema_start": 1, "train.standing_stats": 32}
    base.update(extra)
    return [f"{k}={v}" for k, v in base.items()]


needs_fashion = pytest.mark.skipif(not (FASHION_DIR / "train-images-idx3-ubyte.gz").is_file(),
                                   reason="Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")


def write_pairs(root: Path, n: int = 20, size: int = 16, seed: int = 0) -> Path:
    """Paired folders root/A (a bright-bar mask) and root/B (the grey image it came from), matching names."""
    rng = np.random.default_rng(seed)
    (root / "A").mkdir(parents=True, exist_ok=True)
    (root / "B").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        image = class_pattern(i % 4, size, rng)
        Image.fromarray(np.where(image > 128, 255, 0).astype(np.uint8)).save(root / "A" / f"{i:03d}.png")
        Image.fromarray(image).save(root / "B" / f"{i:03d}.png")
    return root


@pytest.fixture
def pairs_dir(tmp_path):
    return write_pairs(tmp_path / "pairs")


def tiny_translate_overrides(data: Path, steps: int = 4, **extra) -> list[str]:
    """A translation run that takes about a second."""
    base = {"task": "translate", "data.name": str(data), "model.g_width": 4, "model.d_width": 4, "model.z_dim": 2,
            "train.batch_size": 4, "train.steps": steps, "train.log_every": 1, "train.sample_every": 2,
            "train.checkpoint_every": 2, "train.ema_start": 1}
    base.update(extra)
    return [f"{k}={v}" for k, v in base.items()]
