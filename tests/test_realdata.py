"""A short smoke test on the real default dataset (skipped, with the reason, when it is absent)."""

import numpy as np

import condgan
from condgan.cli import main
from condgan.data import load_dataset
from conftest import needs_fashion


@needs_fashion
def test_fashion_mnist_loads_with_class_names():
    data = load_dataset("fashion-mnist")
    assert data.images.shape == (60000, 1, 28, 28)
    assert data.class_names[5] == "sandal" and data.class_names[9] == "ankle-boot"
    assert data.counts() == [6000] * 10
    assert len(load_dataset("fashion-mnist", split="test")) == 10000


@needs_fashion
def test_shoe_subset_trains_and_samples_by_name(tmp_path):
    out = tmp_path / "shoes"
    code = main(["train", "--classes", "sandal,sneaker,ankle-boot", "--steps", "30", "--out", str(out), "--quiet",
                 "--set", "train.batch_size=32", "--set", "train.sample_every=15"])
    assert code == 0
    gen = condgan.load(out)
    assert gen.class_names == ["sandal", "sneaker", "ankle-boot"]
    boots = gen.sample("ankle-boot", n=4, seed=0, output_type="uint8")
    assert boots.shape == (4, 1, 28, 28)
    assert main(["sample", str(out), "--label", "sandal", "--n", "9", "--out", str(tmp_path / "sandals.png")]) == 0
    assert main(["sample", str(out), "--n-per-class", "10", "--out", str(tmp_path / "s.npz")]) == 0
    assert np.load(tmp_path / "s.npz")["images"].shape == (30, 28, 28)
