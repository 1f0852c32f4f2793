"""Translation evaluation: pixel metrics, sharpness, the report, and evaluator scores on Fashion-MNIST pairs.

The synthetic pairs are tiny (16x16, grey mask -> colour image) so most tests take well under a second;
the Fashion-MNIST ones use three classes, so the real side the evaluator needs is built in seconds.
"""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from condgan.data import load_dataset, to_float
from condgan.data.paired import PairSet
from condgan.errors import UserError
from condgan.eval.translation import evaluate_translation, pixel_metrics, sharpness

from conftest import needs_fashion


def blur(images: torch.Tensor, passes: int = 2) -> torch.Tensor:
    """uint8 or [-1, 1] images -> [-1, 1] floats, 3x3 box-blurred `passes` times (edges renormalised)."""
    x = to_float(images) if images.dtype == torch.uint8 else images.float()
    for _ in range(passes):
        x = F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)
    return x


def tiny_pairs(n: int = 24, size: int = 16, seed: int = 0) -> PairSet:
    """Colour rectangles on a noisy background (targets) and their grey masks (sources)."""
    g = torch.Generator().manual_seed(seed)
    targets = torch.randint(0, 40, (n, 3, size, size), generator=g, dtype=torch.uint8)
    sources = torch.zeros(n, 1, size, size, dtype=torch.uint8)
    for i in range(n):
        y0, x0 = torch.randint(0, size // 2, (2,), generator=g).tolist()
        h, w = torch.randint(3, size // 2, (2,), generator=g).tolist()
        targets[i, :, y0:y0 + h, x0:x0 + w] = torch.randint(120, 256, (3, 1, 1), generator=g, dtype=torch.uint8)
        sources[i, :, y0:y0 + h, x0:x0 + w] = 255
    return PairSet(sources, targets, labels=torch.arange(n) % 2, class_names=["odd", "even"], name="tiny")


def identity_translator(pairs: PairSet):
    """A perfect translator: looks each source up and returns its target (as [-1, 1] floats)."""
    lookup = {s.numpy().tobytes(): t for s, t in zip(pairs.sources, pairs.targets)}
    return lambda src: to_float(torch.stack([lookup[s.numpy().tobytes()] for s in src]))


# --------------------------------------------------------------------------- metric sanity

def test_sharpness_drops_with_blur_and_matches_for_a_copy():
    images = tiny_pairs().targets
    assert sharpness(images) == pytest.approx(sharpness(images.clone()))
    assert sharpness(images) == pytest.approx(sharpness(to_float(images)), rel=1e-5)  # uint8 and float agree
    assert sharpness(blur(images)) < 0.6 * sharpness(images)
    assert sharpness(torch.full((2, 1, 8, 8), 77, dtype=torch.uint8)) == 0.0


def test_pixel_metrics_of_identical_images_and_of_a_blur():
    images = tiny_pairs().targets
    same = pixel_metrics(images, images.clone())
    assert same["l1"] == 0.0 and same["ssim"] == pytest.approx(1.0) and same["psnr"] == float("inf")
    blurred = pixel_metrics(blur(images), images)
    assert blurred["l1"] > 0.01 and blurred["ssim"] < 0.9 and 10 < blurred["psnr"] < 40


def test_pixel_metrics_shape_mismatch_names_both_shapes():
    with pytest.raises(UserError, match=r"\(2, 1, 16, 16\).*\(2, 3, 16, 16\)"):
        pixel_metrics(torch.zeros(2, 1, 16, 16), torch.zeros(2, 3, 16, 16))


# --------------------------------------------------------------------------- the report, pixel side only

def test_identity_translator_scores_perfectly_and_writes_the_report(tmp_path):
    pairs = tiny_pairs()
    r = evaluate_translation(identity_translator(pairs), pairs, tmp_path, progress=False, batch_size=5)
    m, f = r["model"], r["real_floor"]
    assert r["kind"] == "translation" and r["n_pairs"] == len(pairs) and r["dataset"] == "tiny"
    assert m["l1"] == pytest.approx(0.0, abs=1e-7) and m["ssim"] == pytest.approx(1.0, abs=1e-5)
    assert m["psnr"] is None and f["psnr"] is None  # infinite: identical images
    assert m["sharpness_ratio"] == pytest.approx(1.0) and f["sharpness_ratio"] == 1.0
    assert "fid" not in m and r["evaluator"] is None
    assert [row["class"] for row in r["per_class"]] == ["odd", "even"]
    for name in ("report.json", "report.md", r["pictures"]["sheet"]):
        assert (tmp_path / name).is_file()
    assert json.loads((tmp_path / "report.json").read_text())["model"]["l1"] == pytest.approx(0.0, abs=1e-7)
    md = (tmp_path / "report.md").read_text()
    assert "| metric | model | real floor | how to read |" in md and "translation.png" in md


def test_blurring_translator_loses_sharpness(tmp_path):
    pairs = tiny_pairs()
    r = evaluate_translation(lambda src: blur(identity_translator(pairs)(src)), pairs, tmp_path,
                             progress=False, max_pairs=10)
    assert r["n_pairs"] == 10
    assert r["model"]["sharpness_ratio"] < 0.6
    assert r["model"]["l1"] > 0.01 and r["model"]["ssim"] < 0.9


def test_translator_with_the_wrong_output_shape_is_a_user_error(tmp_path):
    pairs = tiny_pairs()
    with pytest.raises(UserError, match=r"\(24, 1, 16, 16\).*\(24, 3, 16, 16\)"):
        evaluate_translation(lambda src: to_float(src), pairs, tmp_path, progress=False)


# --------------------------------------------------------------------------- evaluator scores (Fashion-MNIST)

FASHION_CLASSES = ["sandal", "trouser", "bag"]  # a subset in non-evaluator order exercises the class map


@pytest.fixture(scope="module")
def fashion(tmp_path_factory):
    """~210 Fashion-MNIST test images of three classes as pairs (source: thresholded image), in an isolated cache."""
    root = tmp_path_factory.mktemp("translation")
    test = load_dataset("fashion-mnist", "test").subset(FASHION_CLASSES)
    keep = torch.cat([torch.nonzero(test.labels == c).flatten()[:70] for c in range(len(FASHION_CLASSES))])
    images, labels = test.images[keep], test.labels[keep]
    sources = torch.where(images > 60, 255, 0).to(torch.uint8)
    pairs = PairSet(sources, images, labels=labels, class_names=list(test.class_names), name="fashion-masks")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CONDGAN_CACHE", str(root / "cache"))
        yield {"root": root, "pairs": pairs, "data": {"name": "fashion-mnist"}}


@needs_fashion
def test_identity_translator_matches_the_real_floor_on_fashion(fashion):
    pairs = fashion["pairs"]
    assert pairs.class_names == FASHION_CLASSES
    r = evaluate_translation(identity_translator(pairs), pairs, fashion["root"] / "identity",
                             evaluator_data=fashion["data"], progress=False)
    m, f = r["model"], r["real_floor"]
    assert f["class_accuracy"] > 0.9  # the evaluator knows these classes
    assert m["class_accuracy"] == pytest.approx(f["class_accuracy"], abs=0.02)
    assert m["fid"] == pytest.approx(f["fid"], rel=0.05, abs=0.05)
    assert m["precision"] > 0.5 and m["coverage"] is not None
    assert r["evaluator"]["dataset"] == "fashion-mnist"
    assert (fashion["root"] / "identity" / r["pictures"]["confusion"]).is_file()
    assert all(row["class_accuracy_floor"] is not None for row in r["per_class"])


@needs_fashion
def test_blurred_fashion_outputs_score_worse_than_the_real_targets(fashion):
    pairs = fashion["pairs"]
    ident = identity_translator(pairs)
    r = evaluate_translation(lambda src: blur(ident(src), passes=3), pairs, fashion["root"] / "blur",
                             evaluator_data=fashion["data"], progress=False)
    m, f = r["model"], r["real_floor"]
    assert m["sharpness_ratio"] < 0.7
    assert m["fid"] > 2 * f["fid"]


@needs_fashion
def test_unlabelled_pairs_get_distribution_scores_but_no_class_accuracy(fashion):
    labelled = fashion["pairs"]
    pairs = PairSet(labelled.sources, labelled.targets, name="unlabelled")
    r = evaluate_translation(identity_translator(pairs), pairs, fashion["root"] / "unlabelled",
                             evaluator_data={**fashion["data"], "classes": FASHION_CLASSES}, progress=False)
    assert r["model"]["fid"] == pytest.approx(r["real_floor"]["fid"], rel=0.05, abs=0.05)
    assert "class_accuracy" not in r["model"] and "confusion" not in r["pictures"] and r["per_class"] is None
