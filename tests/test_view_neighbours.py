"""selfsup's neighbour views (similarity.neighbour_views): each image's nearest images in pixel space, found
once and kept in the run, give some second views (tasks/similarity/neighbours.py)."""

from types import SimpleNamespace

import pytest
import torch

from condgan.config import load_config
from condgan.errors import ConfigError
from condgan.tasks.similarity import metric
from condgan.tasks.similarity.neighbours import PIXEL_FILE, kept_pixel_neighbours, pixel_neighbours


def groups(n_groups: int = 3, per_group: int = 6, side: int = 10, channels: int = 1, seed: int = 0) -> torch.Tensor:
    """uint8 images in groups: noisy copies of one random picture per group, group after group."""
    g = torch.Generator().manual_seed(seed)
    base = torch.randint(0, 256, (n_groups, channels, side, side), generator=g).float()
    noise = torch.randint(-12, 13, (n_groups, per_group, channels, side, side), generator=g).float()
    return (base[:, None] + noise).clamp(0, 255).to(torch.uint8).flatten(0, 1)


@pytest.mark.parametrize("side,channels", [(10, 1), (40, 1), (8, 3)])  # 40 px: found among 32-px thumbnails
def test_neighbours_are_the_other_images_of_the_same_kind(side, channels):
    images = groups(side=side, channels=channels)
    knn = pixel_neighbours(images, 4)
    assert knn.shape == (18, 4)
    rows = torch.arange(18)[:, None]
    assert (knn != rows).all()  # never the image itself
    assert (knn // 6 == rows // 6).all()  # always one of its group


def test_neighbours_are_kept_in_the_run_and_recomputed_when_stale_or_damaged(tmp_path):
    images = groups()
    first, line = kept_pixel_neighbours(images, 3, tmp_path)
    assert line.startswith("found") and (tmp_path / PIXEL_FILE).is_file()
    again, line = kept_pixel_neighbours(images, 3, tmp_path)
    assert line.startswith("reused") and torch.equal(first, again)
    _, line = kept_pixel_neighbours(images, 2, tmp_path)  # another k
    assert line.startswith("found")
    changed = images.clone()
    changed[0] = 255 - changed[0]
    _, line = kept_pixel_neighbours(changed, 2, tmp_path)  # other images
    assert line.startswith("found")
    (tmp_path / PIXEL_FILE).write_bytes(b"not a torch file")
    recomputed, line = kept_pixel_neighbours(changed, 2, tmp_path)
    assert line.startswith("found") and recomputed.shape == (18, 2)


def _run(share: float, images: torch.Tensor, knn: torch.Tensor | None):
    fields = {"image": images} | ({"view_neighbours": knn} if knn is not None else {})
    config = SimpleNamespace(train=SimpleNamespace(seed=0), similarity=SimpleNamespace(neighbour_views=share))
    return SimpleNamespace(fields=fields, config=config, field_rows=lambda name, idx: fields[name][idx])


def test_the_second_view_comes_from_a_neighbour_for_the_share_asked_and_is_seeded_by_batch():
    images = groups()
    knn = pixel_neighbours(images, 3)
    idx = torch.arange(18)
    every = metric.MetricLearning.select(_run(1.0, images, knn), idx, 7)
    assert all(any(torch.equal(every["neighbour"][i], images[j]) for j in knn[i]) for i in range(18))
    assert torch.equal(every["image"], images)
    none = metric.MetricLearning.select(_run(0.0, images, knn), idx, 7)
    assert torch.equal(none["neighbour"], images)
    half = [metric.MetricLearning.select(_run(0.5, images, knn), idx, k)["neighbour"] for k in (7, 7, 8)]
    assert torch.equal(half[0], half[1]) and not torch.equal(half[0], half[2])  # batch k draws the same on resume
    assert metric.MetricLearning.select(_run(0.5, images, None), idx, 7) is None  # without the field: the rows


def test_selfsup_chooses_its_threshold_on_images_and_their_farthest_view_neighbour(monkeypatch):
    """The positives it calibrates on are (image, neighbour) pairs when given, (image, image) otherwise."""
    import condgan.eval.similarity as es

    images = groups(side=8)
    net = metric.Embedder(1, 8, 4, 8)
    seen = []
    monkeypatch.setattr(es, "best_threshold", lambda scores, positive: seen.append((scores, positive)) or 0.5)
    pixels = lambda x: torch.nn.functional.normalize(x.flatten(1), dim=1)  # noqa: E731  (an embedding we can check)
    monkeypatch.setattr(metric, "embed_all", lambda net, x: pixels(x))
    monkeypatch.setattr("condgan.training.views.selfsup_view", lambda x, ops, g: x)  # views left as they are
    s = load_config(None, ["task=similarity", "similarity.recipe=selfsup"]).similarity
    far = images.roll(5, 0)
    for calibration, second in [({"image": images}, images), ({"image": images, "neighbour": far}, far)]:
        metric.MetricStep(net, "selfsup", s, calibration).before_save()
        scores, positive = seen.pop()
        expected = (pixels(metric.to_float(images)) * pixels(metric.to_float(second))).sum(1)
        assert torch.allclose(scores[positive], expected)
    assert float(net.threshold) == 0.5


def test_the_default_is_by_recipe_and_its_mistakes_are_clear():
    assert load_config(None, ["task=similarity", "similarity.recipe=selfsup"]).similarity.neighbour_views == 1.0
    assert load_config(None, ["task=similarity"]).similarity.neighbour_views == 0.0
    with pytest.raises(ConfigError, match="neighbour_views is for recipe selfsup"):
        load_config(None, ["task=similarity", "similarity.neighbour_views=0.5"])
    with pytest.raises(ConfigError, match="share between 0 and 1"):
        load_config(None, ["task=similarity", "similarity.recipe=selfsup", "similarity.neighbour_views=1.5"])
    with pytest.raises(ConfigError, match="view_neighbours must be between 1"):
        load_config(None, ["task=similarity", "similarity.recipe=selfsup", "similarity.view_neighbours=0"])
