"""Truncation at sampling (the truncation trick) for class-conditional models: pipelines/latents.truncate,
ClassConditional.sample(..., truncation=T), `condgan sample --truncation T` and `condgan eval --truncation T`."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import tiny_overrides, write_folders

import condgan
from condgan.cli import main
from condgan.config import load_config
from condgan.data import to_uint8
from condgan.errors import UserError
from condgan.eval import report as eval_report
from condgan.pipelines.latents import check_truncation, truncate
from condgan.training import train

from eval_fakes import FakeGenerator, write_folder_dataset


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("truncation")
    train(load_config(None, tiny_overrides(write_folders(root / "shoes"), steps=2)), root / "run", quiet=True)
    return root / "run"


@pytest.fixture(scope="module")
def gen(run):
    return condgan.load(run)


def test_truncate_redraws_only_the_entries_beyond_the_threshold():
    z = torch.randn(500, 16, generator=torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(0)
    t = truncate(torch.randn(500, 16, generator=g), g, 1.0)
    inside = z.abs() <= 1.0
    assert t.abs().max() <= 1.0 and torch.equal(t[inside], z[inside]) and not torch.equal(t, z)
    assert truncate(z, g, None) is z  # off: untouched


@pytest.mark.parametrize("value", [0, -1.5, 0.01, float("nan"), float("inf"), True, "1.5"])
def test_a_bad_truncation_is_refused(value):
    with pytest.raises(UserError, match="truncation must be a number of at least 0.05"):
        check_truncation(value)


def test_truncated_latents_are_within_the_threshold_and_the_same_for_a_seed(gen):
    for threshold in (0.5, 1.0, 2.0):
        z = gen.noise(1000, seed=3, truncation=threshold)
        assert z.abs().max() <= threshold
        assert torch.equal(z, gen.noise(1000, seed=3, truncation=threshold))
    assert not torch.equal(gen.noise(10, seed=3, truncation=1.0), gen.noise(10, seed=4, truncation=1.0))


def test_the_same_seed_gives_the_same_truncated_images(gen):
    images = gen.sample(["boot", "sandal"], n=4, seed=7, truncation=1.5)
    assert torch.equal(images, gen.sample(["boot", "sandal"], n=4, seed=7, truncation=1.5))
    assert not torch.equal(images, gen.sample(["boot", "sandal"], n=4, seed=7))
    path = gen.interpolate("boot", seed_a=1, seed_b=2, steps=5, truncation=1.0)
    assert torch.allclose(path[0], gen.sample("boot", n=1, seed=1, truncation=1.0)[0], atol=1e-5)  # (slerp's rounding)
    assert torch.allclose(path[-1], gen.sample("boot", n=1, seed=2, truncation=1.0)[0], atol=1e-5)


def test_without_truncation_the_images_are_exactly_todays(gen):
    ids = gen.label_ids(["boot", "sneaker"]).repeat_interleave(3)
    expected = gen(torch.randn(6, gen.z_dim, generator=torch.Generator().manual_seed(5)), ids)  # the draw before truncation
    assert torch.equal(gen.sample(["boot", "sneaker"], n=3, seed=5), expected)
    assert torch.equal(gen.sample(["boot", "sneaker"], n=3, seed=5, truncation=None), expected)
    images, labels = gen.sample_per_class(3, seed=5)
    z = torch.randn(9, gen.z_dim, generator=torch.Generator().manual_seed(5))
    assert torch.equal(images, to_uint8(gen(z, labels))) and torch.equal(images, eval_report.sample(gen, 3, 5, progress=False)[0])


def test_sample_cli_takes_truncation_and_repeats_itself(run, gen, tmp_path, capsys):
    def sample(name: str, *flags: str) -> np.ndarray:
        assert main(["sample", str(run), "--n-per-class", "4", "--out", str(tmp_path / name), "--device", "cpu", *flags]) == 0
        return np.load(tmp_path / name)["images"]

    truncated = sample("a.npz", "--truncation", "1.5")
    assert "latents truncated at ±1.5" in capsys.readouterr().out
    assert np.array_equal(truncated, sample("b.npz", "--truncation", "1.5"))
    assert np.array_equal(truncated, gen.sample_per_class(4, seed=0, truncation=1.5)[0][:, 0].numpy())
    plain = sample("c.npz")
    assert np.array_equal(plain, gen.sample_per_class(4, seed=0)[0][:, 0].numpy()) and not np.array_equal(plain, truncated)
    assert main(["sample", str(run), "--truncation", "1.0", "--out", str(tmp_path / "grid.png"), "--device", "cpu"]) == 0
    capsys.readouterr()
    with pytest.raises(SystemExit) as exited:  # a usage error: argparse's exit, with condgan's one line
        main(["sample", str(run), "--truncation", "0", "--out", str(tmp_path / "bad.png")])
    assert exited.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("condgan: error: --truncation must be a number of at least 0.05")


def test_eval_cli_passes_truncation_on_and_leaves_it_off_by_default(run, monkeypatch, tmp_path):
    asked = []

    def evaluate_generator(model, out, n, seed, progress, source, truncation=None):
        asked.append(truncation)
        return {"model": {}, "real_floor": {}}

    monkeypatch.setattr(eval_report, "evaluate_generator", evaluate_generator)
    assert main(["eval", str(run), "--truncation", "1.25", "--out", str(tmp_path / "e"), "--quiet"]) == 0
    assert main(["eval", str(run), "--out", str(tmp_path / "e"), "--quiet"]) == 0
    assert asked == [1.25, None]


class TruncatingFake(FakeGenerator):
    """eval_fakes' generator with a noise() that truncates, as ClassConditional's does."""

    def noise(self, n: int, seed: int | None = None, truncation: float | None = None) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed if seed is not None else 0)
        return truncate(torch.randn(n, self.z_dim, generator=g), g, truncation)


def test_the_report_says_its_images_were_truncated(tmp_path, monkeypatch):
    monkeypatch.setenv("CONDGAN_CACHE", str(tmp_path / "cache"))
    data = write_folder_dataset(tmp_path / "shapes", per_class=40)
    condgan.eval.evaluator.get_evaluator({"name": str(data), "image_size": 16, "channels": 1}, epochs=1, progress=False)
    truncated = eval_report.evaluate_generator(TruncatingFake(data), tmp_path / "t", n_per_class=8, progress=False,
                                               truncation=1.0)
    assert truncated["settings"]["truncation"] == 1.0
    assert "**Truncated latents** (`--truncation 1`)" in (tmp_path / "t" / "report.md").read_text()
    plain = eval_report.evaluate_generator(FakeGenerator(data), tmp_path / "p", n_per_class=8, progress=False)
    assert plain["settings"]["truncation"] is None and "Truncated" not in (tmp_path / "p" / "report.md").read_text()
