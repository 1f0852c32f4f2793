"""Issue 26, the last careless inputs (part b): evaluation inputs that used to fail late or say too little,
and checkpoints or exports whose parts disagree.

Evaluation runs on the synthetic 16x16, 4-class folder dataset of tests/eval_fakes.py; the refusals are
checked to come before any evaluator is trained (train_evaluator is replaced by a tripwire), and the one
evaluation that runs uses an evaluator trained for a single epoch on 144 images.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

import condgan
from condgan.cli import main
from condgan.config import load_config
from condgan.errors import CheckpointError, UserError
from condgan.eval import evaluator as evaluator_mod
from condgan.eval.evaluator import get_evaluator
from condgan.eval.report import evaluate_generator, evaluate_samples
from condgan.eval.samples import save_samples_npz
from condgan.training import checkpoint as ckpt
from condgan.training import train
from conftest import tiny_overrides

from eval_fakes import CLASSES, SIZE, FakeGenerator, write_folder_dataset

V1 = Path(__file__).parent / "fixtures" / "v1"


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    """The shapes folder dataset (36 train + 4 test images a class) and an isolated evaluator cache."""
    root = tmp_path_factory.mktemp("careless")
    data = write_folder_dataset(root / "shapes", per_class=40)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CONDGAN_CACHE", str(root / "cache"))
        yield {"root": root, "data": data}


@pytest.fixture
def no_evaluator_training(shapes, monkeypatch):
    """Fail the test if an evaluator is trained: the refusals must come first."""
    monkeypatch.setenv("CONDGAN_CACHE", str(shapes["root"] / "empty-cache"))

    def tripwire(*args, **kwargs):
        raise AssertionError("an evaluator was trained before the input was refused")

    monkeypatch.setattr(evaluator_mod, "train_evaluator", tripwire)


@pytest.fixture(scope="module")
def trained_evaluator(shapes):
    return get_evaluator({"name": str(shapes["data"]), "image_size": SIZE, "channels": 1}, epochs=1, progress=False)


def _npz(path: Path, per_class: dict[int, int], size: int = SIZE) -> Path:
    """A samples file with per_class[c] images of class c (every class of CLASSES is named in it)."""
    gen = FakeGenerator(Path("unused"))
    images, labels = gen.sample_per_class(max(per_class.values()), seed=1)
    keep = torch.cat([torch.nonzero(labels == c)[:n, 0] for c, n in per_class.items()])
    images = images[keep]
    if size != SIZE:
        images = torch.nn.functional.interpolate(images.float(), size=(size, size)).round().to(torch.uint8)
    return save_samples_npz(path, images, labels[keep], CLASSES)


def _one_error_line(capsys) -> str:
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("condgan: error:")]
    assert len(err) == 1, err
    return err[0]


# --------------------------------------------------------------------------- evaluation (items 2, 3, 7, 14)

def test_images_too_small_for_the_evaluator_are_refused_before_any_work(shapes, no_evaluator_training, tmp_path, capsys):
    npz = _npz(tmp_path / "tiny.npz", {c: 3 for c in range(4)}, size=1)
    with pytest.raises(UserError, match=r"are 1x1 pixels; condgan's evaluator needs at least 4x4"):
        evaluate_samples(npz, {"name": str(shapes["data"])}, progress=False)
    assert main(["eval", "--samples", str(npz), "--data", str(shapes["data"]), "--quiet"]) == 2
    assert "at least 4x4" in _one_error_line(capsys)
    assert not (tmp_path / "tiny-eval").exists()


def test_one_image_per_class_is_refused_up_front(shapes, no_evaluator_training, tmp_path, capsys):
    npz = _npz(tmp_path / "one.npz", {c: 1 for c in range(4)})
    with pytest.raises(UserError, match=r"fewer than 2 images of 4 class\(es\) \(bars, cross, disc, ring\)"):
        evaluate_samples(npz, {"name": str(shapes["data"])}, progress=False)
    assert main(["eval", "--samples", str(npz), "--data", str(shapes["data"]), "--quiet"]) == 2
    assert "at least 2 of each class" in _one_error_line(capsys)
    assert not (tmp_path / "one-eval").exists()  # no report files written before the refusal


def test_summary_line_shows_missing_numbers_as_na():
    from condgan.tasks.base import versus as _vs

    assert _vs({"fid": None}, {"fid": 0.25}, "fid", ".3f") == "n/a (real 0.250)"
    assert _vs({"fid": 1.5}, {"fid": None}, "fid", ".3f") == "1.500 (real n/a)"


def test_samples_of_some_classes_are_scored_on_those_classes_only(shapes, trained_evaluator, tmp_path, capsys):
    npz = _npz(tmp_path / "two.npz", {2: 2, 3: 2})  # disc and ring, two images each: too few for the k-NN metrics
    warning = r"no images of 2 of its 4 classes \(bars, cross\); scoring only the classes present \(disc, ring\)"
    with pytest.warns(UserWarning, match=warning):
        report = evaluate_samples(npz, {"name": str(shapes["data"])}, out_dir=tmp_path / "r", progress=False)
    assert report["classes"] == ["disc", "ring"] and report["missing_classes"] == ["bars", "cross"]
    assert report["real_floor"]["n_images"] == 8  # the test images of disc and ring only, not all four classes
    assert len(report["per_class"]) == 2 and report["model"]["class_fid_mean"] is not None
    assert report["model"]["precision"] is None and report["model"]["not_computable"]["precision"] == "needs ≥ 6 images"
    md = (tmp_path / "r" / "report.md").read_text()
    assert "**Classes without images** (2, left out of every number, the real floor's too): bars, cross." in md
    assert "| n/a (needs ≥ 6 images) |" in md
    saved = json.loads((tmp_path / "r" / "report.json").read_text())
    assert saved["missing_classes"] == ["bars", "cross"]
    # the command warns (one condgan: warning: line on stderr) and prints its summary line
    with pytest.warns(UserWarning, match=r"\(bars, cross\)"):
        code = main(["eval", "--samples", str(npz), "--data", str(shapes["data"]), "--out", str(tmp_path / "c"), "--quiet"])
    assert code == 0 and "mean class FID" in capsys.readouterr().out


def test_run_of_other_classes_is_refused_before_evaluator_training_and_sampling(shapes, no_evaluator_training, tmp_path):
    class OtherClasses(FakeGenerator):
        def __call__(self, z, labels):
            raise AssertionError("sampled before the classes were checked")

    gen = OtherClasses(shapes["data"])
    gen.class_names = ["boot", "sandal", "sneaker"]
    with pytest.raises(UserError, match=r"cannot judge these images: unknown class 'boot'"):
        evaluate_generator(gen, tmp_path / "out", n_per_class=2, progress=False)
    gen = OtherClasses(shapes["data"])
    gen.image_size, gen.data["image_size"] = 20, None  # a folder loads at 64 px when no size is given
    with pytest.raises(UserError, match=r"images to score are 20x20 with 1 channel\(s\), but .* loads as 64x64 with 1"):
        evaluate_generator(gen, tmp_path / "out", n_per_class=2, progress=False)
    assert not (tmp_path / "out").exists()


def test_eval_of_a_run_against_another_dataset_refuses_first(shapes, no_evaluator_training, shoes_dir, tmp_path, capsys):
    train(load_config(None, tiny_overrides(shoes_dir, steps=2)), tmp_path / "run", quiet=True)  # boot, sandal, sneaker
    assert main(["eval", str(tmp_path / "run"), "--data", str(shapes["data"]), "--n-per-class", "2", "--quiet"]) == 2
    assert "unknown class 'boot'" in _one_error_line(capsys)
    assert not (tmp_path / "run" / "eval").exists()


# --------------------------------------------------------------------------- checkpoints and exports (items 4, 10, 11, 12)

@pytest.fixture
def export(tmp_path) -> Path:
    """A format-2 export of the v1 fixture's 3-class ResNet generator."""
    return condgan.load(V1 / "export-resnet").save_pretrained(tmp_path / "export")


def _edit_manifest(folder: Path, edit) -> Path:
    manifest = json.loads((folder / "condgan.json").read_text())
    edit(manifest)
    (folder / "condgan.json").write_text(json.dumps(manifest))
    return folder


def test_fewer_class_names_than_the_network_has_classes_is_refused(export, tmp_path):
    _edit_manifest(export, lambda m: m["spec"]["label"].update(class_names=["sandal", "sneaker"]))
    with pytest.raises(CheckpointError, match=r"inconsistent model: its spec says 'label' has 2 class names, but its "
                                              r"generator network was built for 3 \(num_classes=3\)"):
        condgan.load(export)
    # the same in a checkpoint, and for the image's channels
    state = ckpt.safe_load(V1 / "run-mlp" / "checkpoints" / "step_00000004.pt")
    state["spec"]["image"]["channels"] = 3
    torch.save(state, tmp_path / "edited.pt")
    with pytest.raises(CheckpointError, match=r"its spec says 'image' has 3 channels, but its generator network was "
                                              r"built for 1 \(channels=1\)"):
        condgan.load(tmp_path / "edited.pt")


def test_weights_that_do_not_fit_name_the_keys_and_shapes(export):
    weights = load_file(str(export / "generator.safetensors"))
    shaped = next(k for k, v in weights.items() if v.dim() >= 2)
    expected = tuple(weights[shaped].shape)
    weights[shaped] = torch.zeros(3, 3)
    dropped = sorted(k for k in weights if k != shaped)[0]
    del weights[dropped]
    weights["extra.weight"] = torch.zeros(1)
    save_file(weights, str(export / "generator.safetensors"))
    with pytest.raises(CheckpointError) as caught:
        condgan.load(export)
    message = str(caught.value)
    assert "\n" not in message and "do not fit the recorded ResNetGenerator" in message
    assert f"{shaped}: expected {expected}, found (3, 3); {dropped} missing; extra.weight unexpected" in message


def test_weights_of_another_architecture_are_summarised_in_one_line(export):
    def to_dcgan(manifest):
        manifest["components"]["generator"]["class"] = "DCGANGenerator"
        for own in ("cond_dim", "skip_z"):  # the ResNet's own arguments
            manifest["components"]["generator"]["arguments"].pop(own)

    _edit_manifest(export, to_dcgan)
    with pytest.raises(CheckpointError, match=r"do not fit the recorded DCGANGenerator \(.*\(and \d+ more\)\)") as caught:
        condgan.load(export)
    assert "\n" not in str(caught.value)


def test_resume_names_the_tensor_that_does_not_fit(shoes_dir, tmp_path):
    run = tmp_path / "run"
    train(load_config(None, tiny_overrides(shoes_dir, steps=2)), run, quiet=True)
    last = ckpt.list_checkpoints(run / "checkpoints")[-1]
    state = torch.load(last, weights_only=True)
    key = next(k for k, v in state["state"]["G"].items() if v.dim() >= 2)
    state["state"]["G"][key] = torch.zeros(3, 3)
    torch.save(state, last)
    with pytest.raises(CheckpointError, match=rf"checkpoint does not match this model: G {key}: expected \(.*\), found \(3, 3\)"):
        train(out=run, resume=True, stop_overrides={"steps": 1}, quiet=True)


def test_export_without_its_manifest_is_neither_a_run_nor_an_export(export, tmp_path, capsys):
    (export / "condgan.json").unlink()
    with pytest.raises(CheckpointError, match=r"is neither a run \(no checkpoints/ folder\) nor an export \(no "
                                              r"condgan.json\).* It holds generator.safetensors but no condgan.json"):
        condgan.load(export)
    assert main(["sample", str(export), "--out", str(tmp_path / "x.png")]) == 2
    assert "neither a run" in _one_error_line(capsys)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CheckpointError, match=r"neither a run .* exported folder\.$"):
        condgan.load(empty)


def test_spec_without_class_names_says_so(export):
    _edit_manifest(export, lambda m: m["spec"]["label"].pop("class_names"))
    with pytest.raises(CheckpointError, match=r"field 'label' of the spec lacks its class names: 'class_names' must "
                                              r"list them, distinct strings in label order"):
        condgan.load(export)


def test_consistent_models_still_load(export):
    """The new checks pass every task's real files (the v1 fixtures and a fresh export)."""
    assert condgan.load(export).num_classes == 3
    assert condgan.load(V1 / "run-mlp").sample("sneaker", n=1).shape == (1, 1, 28, 28)
