"""Evaluation suite: metric sanity, memorisation, NPZ checks, and the label-shuffled generator test.

Everything runs on a synthetic 16x16, 4-class folder dataset (tests/eval_fakes.py)
with a tiny evaluator trained for a few seconds, so the file stays well under a minute.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from condgan.data import load_dataset, to_uint8
from condgan.errors import UserError
from condgan.eval import evaluator as evaluator_mod
from condgan.cli import main
from condgan.cli.eval import add_eval_commands
from condgan.eval.evaluator import get_evaluator, train_evaluator
from condgan.eval.metrics import (compute_metrics, conditioning, fid, kid, look, nearest_pixel_distance, prdc,
                                  real_floor)
from condgan.eval.pictures import slerp
from condgan.eval.report import evaluate_generator, evaluate_samples, prepare
from condgan.eval.samples import load_samples_npz, save_samples_npz

from eval_fakes import CLASSES, SIZE, FakeGenerator, write_folder_dataset

EPOCHS = 8


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A folder dataset, an isolated evaluator cache, and the evaluator trained once."""
    root = tmp_path_factory.mktemp("eval")
    data = write_folder_dataset(root / "shapes")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CONDGAN_CACHE", str(root / "cache"))
        cfg = {"name": str(data), "image_size": SIZE, "channels": 1}
        ev = get_evaluator(cfg, epochs=EPOCHS, progress=False)
        yield {"root": root, "data": data, "cfg": cfg, "ev": ev}


@pytest.fixture(scope="module")
def reports(world):
    """Reports of an honest fake generator and of one whose labels are shifted by one class."""
    honest = evaluate_generator(FakeGenerator(world["data"]), world["root"] / "honest", n_per_class=100, progress=False)
    shuffled = evaluate_generator(FakeGenerator(world["data"], perm=[1, 2, 3, 0]), world["root"] / "shuffled",
                                  n_per_class=100, progress=False)
    return honest, shuffled


# --------------------------------------------------------------------------- metric sanity (no evaluator)

def test_fid_of_a_set_with_itself_is_zero_and_grows_with_noise():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2000, 16, generator=g) @ torch.randn(16, 16, generator=g)
    assert fid(x, x) == pytest.approx(0.0, abs=1e-6 * float(x.var(0).sum()))
    scores = [fid(x, x + s * torch.randn(x.shape, generator=g)) for s in (0.1, 0.5, 1.0, 2.0)]
    assert scores == sorted(scores) and scores[0] < 0.2 * scores[-1]
    assert fid(x[:1], x) is None  # one image has no covariance: reported as missing, not as a crash


def test_kid_near_zero_for_same_distribution_and_seeded():
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(1500, 8, generator=g), torch.randn(1500, 8, generator=g)
    same, _ = kid(a, b, subsets=20, subset_size=500)
    shifted, _ = kid(a, b + 1.0, subsets=20, subset_size=500)
    assert abs(same) < 0.05 < shifted
    assert kid(a, b, subsets=5, seed=3) == kid(a, b, subsets=5, seed=3)


def test_prdc_identical_and_disjoint_sets():
    x = torch.randn(600, 8, generator=torch.Generator().manual_seed(2))
    same = prdc(x, x.clone())
    assert same["precision"] == same["recall"] == same["coverage"] == 1.0
    assert 0.8 < same["density"] < 1.5
    far = prdc(x, x + 100.0)
    assert far["precision"] == far["recall"] == far["coverage"] == far["density"] == 0.0


def test_nearest_pixel_distance_is_exactly_zero_for_copies():
    g = torch.Generator().manual_seed(3)
    train = torch.randint(0, 256, (300, 1, 8, 8), dtype=torch.uint8, generator=g)
    query = torch.cat([train[[5, 17, 299]], torch.randint(0, 256, (4, 1, 8, 8), dtype=torch.uint8, generator=g)])
    dist, index = nearest_pixel_distance(query, train, chunk=2)
    assert dist[:3].tolist() == [0.0, 0.0, 0.0] and index[:3].tolist() == [5, 17, 299]
    assert (dist[3:] > 0.1).all()


def test_conditioning_counts_foreign_predictions_as_other():
    # evaluator knows 4 classes, the model only 2 (evaluator classes 2 and 0, in that order)
    logits = torch.nn.functional.one_hot(torch.tensor([2, 2, 1, 0, 0, 3]), 4).float()
    labels = torch.tensor([0, 0, 0, 1, 1, 1])
    out = conditioning(logits, labels, torch.tensor([2, 0]))
    assert out["accuracy"] == pytest.approx(4 / 6)
    assert out["per_class"] == pytest.approx([2 / 3, 2 / 3])
    assert out["confusion"] == [[2, 0, 1], [0, 2, 1]]


def test_slerp_hits_both_ends():
    z0, z1 = torch.randn(3, 5), torch.randn(3, 5)
    assert torch.allclose(slerp(z0, z1, torch.zeros(3)), z0, atol=1e-5)
    assert torch.allclose(slerp(z0, z1, torch.ones(3)), z1, atol=1e-5)
    assert torch.allclose(slerp(z0, z0, torch.full((3,), 0.5)), z0, atol=1e-5)  # parallel: no division by zero


# --------------------------------------------------------------------------- NPZ files

def _npz(path, **arrays):
    np.savez(path, **arrays)
    return path


GOOD = dict(images=np.zeros((4, SIZE, SIZE), np.uint8), labels=np.array([0, 1, 2, 3]), class_names=np.array(CLASSES))


@pytest.mark.parametrize("change, message", [
    ({"images": None}, "lacks 'images'"),
    ({"class_names": None}, "lacks 'class_names'"),
    ({"images": np.zeros((4, SIZE, SIZE), np.float32)}, "must be uint8"),
    ({"images": np.zeros((4, SIZE, SIZE, 2), np.uint8)}, "expected N x H x W"),
    ({"images": np.zeros((4, SIZE, SIZE + 1), np.uint8)}, "square"),
    ({"labels": np.array([0, 1, 2, 4])}, "out of range"),
    ({"labels": np.array([0, 1, -1, 2])}, "out of range"),
    ({"labels": np.array([0, 1, 2])}, "4 images but 3 labels"),
    ({"labels": np.array([0.0, 1, 2, 3])}, "integer"),
    ({"class_names": np.array([1, 2, 3, 4])}, "strings"),
])
def test_npz_loader_rejects_bad_files(tmp_path, change, message):
    arrays = {k: v for k, v in {**GOOD, **change}.items() if v is not None}
    with pytest.raises(UserError, match=message):
        load_samples_npz(_npz(tmp_path / "bad.npz", **arrays))


def test_npz_loader_rejects_non_npz_and_pickles(tmp_path):
    (tmp_path / "junk.npz").write_bytes(b"not a zip at all")
    with pytest.raises(UserError, match="not a readable .npz"):
        load_samples_npz(tmp_path / "junk.npz")
    with pytest.raises(UserError, match="does not exist"):
        load_samples_npz(tmp_path / "missing.npz")
    objects = dict(GOOD, class_names=np.array(CLASSES, dtype=object))
    with pytest.raises(UserError):
        load_samples_npz(_npz(tmp_path / "pickled.npz", **objects))


def test_npz_round_trip_grayscale_and_rgb(tmp_path):
    for c in (1, 3):
        images = torch.randint(0, 256, (6, c, SIZE, SIZE), dtype=torch.uint8)
        labels = torch.tensor([0, 1, 2, 3, 0, 1])
        path = save_samples_npz(tmp_path / f"s{c}.npz", images, labels, CLASSES)
        got_images, got_labels, names = load_samples_npz(path)
        assert torch.equal(got_images, images) and torch.equal(got_labels, labels) and names == CLASSES


# --------------------------------------------------------------------------- evaluator

def test_evaluator_learns_the_classes_and_is_cached(world, monkeypatch):
    ev = world["ev"]
    assert ev.info["test_accuracy"] >= 0.95
    assert (ev.path / "evaluator.safetensors").is_file()
    assert json.loads((ev.path / "evaluator.json").read_text())["class_names"] == CLASSES

    def no_training(*a, **k):
        raise AssertionError("the cached evaluator should have been reused")

    monkeypatch.setattr(evaluator_mod, "train_evaluator", no_training)
    again = get_evaluator(world["cfg"])
    assert again.path == ev.path and again.info["test_accuracy"] == ev.info["test_accuracy"]
    x = load_dataset(**world["cfg"], split="test").images[:32]
    assert torch.allclose(again.run(x)[1], ev.run(x)[1], atol=1e-5)


def test_evaluator_training_is_reproducible(world):
    train = load_dataset(**world["cfg"], split="train")
    test = load_dataset(**world["cfg"], split="test")
    a = train_evaluator(train, test, epochs=1, seed=7, progress=False)
    b = train_evaluator(train, test, epochs=1, seed=7, progress=False)
    for (name, p), q in zip(a.net.state_dict().items(), b.net.state_dict().values()):
        assert torch.equal(p, q), name


def test_evaluator_refuses_images_of_the_wrong_size(world):
    with pytest.raises(UserError, match="do not fit the evaluator"):
        world["ev"].run(torch.zeros(2, 1, SIZE * 2, SIZE * 2, dtype=torch.uint8))


# --------------------------------------------------------------------------- metrics on images

def test_real_floor_is_good_and_fid_grows_with_pixel_noise(world):
    ctx = prepare(world["cfg"], CLASSES, progress=False)
    floor = compute_metrics(real_floor(ctx.ref), ctx.ref, ctx.class_map)
    assert floor["conditioning_accuracy"] >= 0.95 and floor["precision"] > 0.7 and floor["coverage"] > 0.7
    test = load_dataset(**world["cfg"], split="test")
    scores = []
    for sigma in (0.0, 0.3, 0.8):
        noisy = to_uint8((test.images.float() / 127.5 - 1 + sigma * torch.randn(test.images.shape)).clamp(-1, 1))
        scores.append(compute_metrics(look(ctx.ev, noisy, test.labels, ctx.train.images, progress=False),
                                      ctx.ref, ctx.class_map)["fid"])
    assert scores == sorted(scores) and scores[-1] > 5 * scores[0]


def test_memorisation_flags_copies_of_training_images(world):
    ctx = prepare(world["cfg"], CLASSES, progress=False)
    gen = FakeGenerator(world["data"])
    fresh, fresh_labels = gen.sample_per_class(25, seed=99)
    copies, copy_labels = ctx.train.images[::7][:100], ctx.train.labels[::7][:100]
    images, labels = torch.cat([fresh, copies]), torch.cat([fresh_labels, copy_labels])
    m = compute_metrics(look(ctx.ev, images, labels, ctx.train.images, progress=False), ctx.ref, ctx.class_map)
    assert m["exact_copies"] == 100
    assert 0.5 <= m["copy_fraction"] <= 0.6  # the 100 copies, plus at most a few chance near-neighbours
    honest = compute_metrics(look(ctx.ev, fresh, fresh_labels, ctx.train.images, progress=False), ctx.ref, ctx.class_map)
    assert honest["copy_fraction"] < 0.1 and honest["exact_copies"] == 0


# --------------------------------------------------------------------------- the key test

def test_label_shuffled_generator_is_caught(reports):
    """A model that draws the wrong class for every label has a fine overall FID: only the
    conditional metrics (per-class FID, conditioning accuracy) expose it."""
    honest, shuffled = reports
    h, s = honest["model"], shuffled["model"]
    assert h["conditioning_accuracy"] > 0.9
    assert s["conditioning_accuracy"] < 0.1
    assert s["class_fid_mean"] > 10 * h["class_fid_mean"]
    assert s["fid"] < 1.5 * h["fid"] + 1e-3  # overall distribution unchanged: overall FID is blind to labels
    assert s["fid"] < 0.2 * s["class_fid_mean"]
    # the confusion matrix shows where each label went: label c is drawn as class c+1
    confusion = torch.tensor(shuffled["confusion"])
    assert confusion.argmax(1).tolist() == [1, 2, 3, 0]


def test_report_files_and_floor(reports, world):
    honest, _ = reports
    out = world["root"] / "honest"
    for name in ("report.json", "report.md", "confusion.png", "interference.png", "traversal.png", "samples.png"):
        assert (out / name).stat().st_size > 0, name
    assert len(list((out / "samples").glob("*.png"))) == len(CLASSES)
    saved = json.loads((out / "report.json").read_text())
    assert saved["model"]["fid"] == pytest.approx(honest["model"]["fid"])
    assert saved["real_floor"]["conditioning_accuracy"] >= 0.95
    assert saved["latent_traversal"]["fraction_kept"] > 0.9  # labels hold along latent paths
    md = (out / "report.md").read_text()
    assert "| conditioning accuracy |" in md and "real floor" in md and "![interference grid](interference.png)" in md
    assert [row["class"] for row in saved["per_class"]] == CLASSES


def test_evaluate_samples_for_a_class_subset(world, tmp_path):
    gen = FakeGenerator(world["data"])
    images, labels = gen.sample_per_class(60, seed=5)
    keep = labels >= 2  # "disc" and "ring" only, relabelled 0..1
    path = save_samples_npz(tmp_path / "two.npz", images[keep], labels[keep] - 2, CLASSES[2:])
    report = evaluate_samples(path, {"name": str(world["data"])}, out_dir=tmp_path / "out", progress=False)
    assert report["classes"] == CLASSES[2:]
    assert report["model"]["conditioning_accuracy"] > 0.9
    assert len(report["confusion"][0]) == 3  # two classes + "other" (the evaluator knows four)
    with pytest.raises(UserError, match="does not match"):
        evaluate_samples(path, {"name": str(world["data"]), "classes": ["cross", "ring"]}, progress=False)


# --------------------------------------------------------------------------- command line

def _parser():
    import argparse

    parser = argparse.ArgumentParser(prog="condgan")
    add_eval_commands(parser.add_subparsers(dest="command"))
    return parser


def test_cli_every_flag_has_help():
    parser = _parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    evaluator_actions = next(a for a in sub.choices["evaluator"]._actions if a.__class__.__name__ == "_SubParsersAction")
    for p in (sub.choices["eval"], evaluator_actions.choices["train"]):
        for action in p._actions:
            assert action.help, f"{p.prog}: {action.option_strings or action.dest} has no help"
    args = parser.parse_args(["eval", "runs/x", "--n-per-class", "5", "--seed", "2", "--out", "o"])
    assert (args.run, args.n_per_class, args.seed, args.out) == ("runs/x", 5, 2, "o") and callable(args.func)
    args = parser.parse_args(["evaluator", "train", "--data", "mnist", "--epochs", "3", "--force"])
    assert (args.data, args.epochs, args.force) == ("mnist", 3, True) and callable(args.func)


def test_cli_commands_run_and_errors_exit_2(world, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CONDGAN_CACHE", str(world["root"] / "cache"))
    data = str(world["data"])
    assert main(["evaluator", "train", "--data", data, "--image-size", str(SIZE), "--quiet"]) == 0
    assert "test accuracy" in capsys.readouterr().out
    images, labels = FakeGenerator(world["data"]).sample_per_class(30)
    npz = save_samples_npz(tmp_path / "s.npz", images, labels, CLASSES)
    assert main(["eval", "--samples", str(npz), "--data", data, "--out", str(tmp_path / "r"), "--quiet"]) == 0
    assert "conditioning accuracy" in capsys.readouterr().out and (tmp_path / "r" / "report.md").is_file()
    assert main(["eval", "--samples", str(npz)]) == 2
    assert "needs --data" in capsys.readouterr().err
    assert main(["eval"]) == 2
    assert main(["eval", "run", "--samples", str(npz), "--data", data]) == 2
    assert main(["evaluator", "train", "--data", str(tmp_path / "nowhere")]) == 2
    assert main(["evaluator", "train", "--data", data, "--epochs", "0"]) == 2
