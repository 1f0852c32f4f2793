"""similarity.augment: the changes a similarity run learns to ignore, chosen by the data, said and recorded;
each image its own seeded draw; runs from before the key keep what they trained with."""

import numpy as np
import pytest
import torch
import yaml

from condgan.config import load_config
from condgan.errors import ConfigError
from condgan.tasks.similarity.config import default_augment
from condgan.training import checkpoint as ckpt
from condgan.training import train
from condgan.training.augment import shift
from condgan.training.views import augment, random_crop, selfsup_view
from conftest import write_folders, write_idx


def tiny(data, recipe: str, steps: int = 2, **extra) -> list[str]:
    base = {"task": "similarity", "data.name": str(data), "similarity.recipe": recipe, "similarity.width": 4,
            "similarity.embed_dim": 8, "similarity.per_class": 4, "train.batch_size": 12, "train.steps": steps,
            "train.log_every": 1, "train.sample_every": 100, "train.checkpoint_every": 2, "train.deterministic": True}
    base.update(extra)
    return [f"{k}={v}" for k, v in base.items()]


def test_the_default_follows_the_data():
    garments = ["t-shirt", "trouser", "sandal"]
    assert default_augment(1, "fashion-mnist", garments, "triplet")[0] == ["flip", "shift"]
    assert default_augment(3, "photos/", garments, "triplet")[0] == ["flip", "shift", "colour"]
    ops, line = default_augment(1, "mnist", [str(i) for i in range(10)], "triplet")
    assert ops == ["shift"] and "mnist is digits" in line and "no flip" in line
    assert default_augment(1, "letters/", ["A", "B", "C"], "triplet")[0] == ["shift"]  # names like characters
    assert "crop" in default_augment(1, "fashion-mnist", garments, "selfsup")[1]  # selfsup says what it adds


def test_the_choice_is_printed_and_written_to_config_yaml(tmp_path, capsys):
    shoes = write_folders(tmp_path / "shoes", size=12)
    train(load_config(None, tiny(shoes, "triplet")), tmp_path / "run")
    err = capsys.readouterr().err
    assert "similarity.augment flip,shift by default" in err
    assert yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["similarity"]["augment"] == ["flip", "shift"]
    train(load_config(None, [*tiny(shoes, "triplet"), "similarity.augment=[]"]), tmp_path / "none")
    assert "similarity.augment" not in capsys.readouterr().err  # the user's choice is not announced as a default
    assert yaml.safe_load((tmp_path / "none" / "config.yaml").read_text())["similarity"]["augment"] == []
    with pytest.raises(ConfigError, match="similarity.augment items must be among flip, shift, crop, colour"):
        load_config(None, [*tiny(shoes, "triplet"), "similarity.augment=[mirror]"])
    with pytest.raises(ConfigError, match="classic"):
        load_config(None, [*tiny(shoes, "triplet"), "similarity.augment=[classic]"])


def test_labelled_recipes_train_on_augmented_views(tmp_path):
    data = write_idx(tmp_path / "idx", n_train=48, n_test=8, classes=4, size=12)
    weights = {}
    for ops in ("[]", "[flip,crop]"):
        train(load_config(None, tiny(data, "triplet", 2, **{"similarity.augment": ops})), tmp_path / ops, quiet=True)
        weights[ops] = ckpt.safe_load(tmp_path / ops / "checkpoints" / "step_00000002.pt")["state"]["embedder"]
    assert not torch.equal(weights["[]"]["head.3.weight"], weights["[flip,crop]"]["head.3.weight"])


def test_each_image_gets_its_own_seeded_draw():
    x = torch.linspace(-1, 1, 8 * 12 * 12).view(8, 1, 12, 12).repeat(1, 3, 1, 1)
    for ops in (["flip"], ["shift"], ["crop"], ["colour"], ["flip", "shift", "crop", "colour"]):
        a = augment(x, ops, torch.Generator().manual_seed(5))
        assert torch.equal(a, augment(x, ops, torch.Generator().manual_seed(5))), ops  # a resumed run draws the same
        assert a.shape == x.shape and a.min() >= -1 and a.max() <= 1, ops
        changed = (a != x).flatten(1).any(1)
        assert changed.any(), ops
    flipped = augment(x, ["flip"], torch.Generator().manual_seed(0))
    mirrored = (flipped == x.flip(-1)).flatten(1).all(1)
    assert mirrored.any() and not mirrored.all()  # some images mirrored, others not: not one draw for the batch
    flat = torch.full((16, 1, 12, 12), 0.3)
    assert torch.allclose(random_crop(flat, torch.Generator().manual_seed(0), (0.2, 1.0)), flat)  # never outside the image
    zoomed = random_crop(x, torch.Generator().manual_seed(0), (0.2, 0.3))
    assert (zoomed.amax((1, 2, 3)) - zoomed.amin((1, 2, 3)) < x.amax((1, 2, 3)) - x.amin((1, 2, 3))).all()  # a part only
    from condgan.training.augment import view  # the selfsup view of runs from before similarity.augment

    assert torch.equal(selfsup_view(x, ["classic"], torch.Generator().manual_seed(1)), view(x, torch.Generator().manual_seed(1)))


def test_shift_moves_each_image_by_its_own_offset():
    x = torch.zeros(2, 1, 6, 6)
    x[:, :, 2, 2] = 1
    moved = shift(x, torch.tensor([1, -2]), torch.tensor([0, 2]))
    assert moved[0, 0, 3, 2] == 1 and moved[1, 0, 0, 4] == 1 and moved.sum() == 2


@pytest.mark.parametrize("recipe,before", [("triplet", []), ("selfsup", ["classic"])])
def test_a_run_from_before_the_key_resumes_as_it_trained(recipe, before, tmp_path):
    """An older config.yaml without similarity.augment: labelled recipes trained on the images as they are,
    selfsup on its one fixed view; resuming keeps that (weights as if the key had been written)."""
    data = write_idx(tmp_path / "idx", n_train=48, n_test=8, classes=4, size=12)
    train(load_config(None, tiny(data, recipe, 2, **{"similarity.augment": before or "[]"})), tmp_path / "old", quiet=True)
    text = (tmp_path / "old" / "config.yaml").read_text()
    (tmp_path / "old" / "config.yaml").write_text(text.replace("  augment:\n  - classic\n", "").replace("  augment: []\n", ""))
    assert "augment" not in (tmp_path / "old" / "config.yaml").read_text().split("similarity:")[1]
    assert load_config(tmp_path / "old" / "config.yaml", of_run=True).similarity.augment == before
    train(out=tmp_path / "old", resume=True, stop_overrides={"steps": 2}, quiet=True)
    train(load_config(None, tiny(data, recipe, 4, **{"similarity.augment": before or "[]"})), tmp_path / "straight", quiet=True)
    a = ckpt.safe_load(tmp_path / "old" / "checkpoints" / "step_00000004.pt")["state"]["embedder"]
    b = ckpt.safe_load(tmp_path / "straight" / "checkpoints" / "step_00000004.pt")["state"]["embedder"]
    assert all(torch.equal(v, b[k]) for k, v in a.items())


def test_rgb_colour_change_keeps_grey_grey():
    grey = torch.full((4, 3, 6, 6), 0.2)
    out = augment(grey, ["colour"], torch.Generator().manual_seed(0))
    assert torch.allclose(out[:, 0], out[:, 1], atol=1e-5) and torch.allclose(out[:, 1], out[:, 2], atol=1e-5)
    rgb = torch.from_numpy(np.random.default_rng(0).uniform(-1, 1, (16, 3, 6, 6)).astype(np.float32))
    assert not torch.allclose(augment(rgb, ["colour"], torch.Generator().manual_seed(0)), rgb)


# ----- the evaluation that tests it: one side flipped, or shifted ------------------------------------------
class _Fixed:
    """An 'embedder' that is a fixed function of the pixels, so the evaluation's answers are known."""

    threshold = 0.5

    def __init__(self, features):
        self.features = features

    def embed(self, images):
        x = images.float() / 127.5 - 1 if images.dtype == torch.uint8 else images
        return torch.nn.functional.normalize(self.features(x).flatten(1), dim=1)


def test_flipped_and_shifted_figures_find_what_an_embedding_ignores(tmp_path):
    from condgan.eval.similarity import evaluate_embedder

    rng = np.random.default_rng(0)
    labels = torch.arange(60) % 3
    base = torch.from_numpy(rng.uniform(0, 255, (3, 1, 10, 10)).astype(np.uint8))
    images = (base[labels].float() + torch.from_numpy(rng.normal(0, 20, (60, 1, 10, 10)))).clamp(0, 255).to(torch.uint8)
    rows = _Fixed(lambda x: x.mean(3))  # each row's mean: blind to a mirror, not to a shift
    pixels = _Fixed(lambda x: x)  # every pixel where it is: sees both
    m = {name: evaluate_embedder(model, images, labels, ["a", "b", "c"], tmp_path / name, progress=False)["model"]
         for name, model in (("rows", rows), ("pixels", pixels))}
    assert m["rows"]["roc_auc_flipped"] == pytest.approx(m["rows"]["roc_auc"], abs=1e-6)
    assert m["rows"]["precision_at_1_flipped"] == pytest.approx(m["rows"]["precision_at_1"], abs=1e-6)
    assert m["pixels"]["roc_auc_flipped"] < m["pixels"]["roc_auc"] - 0.1
    assert m["pixels"]["roc_auc_shifted"] < m["pixels"]["roc_auc"] - 0.1
    assert "second image shifted" in (tmp_path / "rows" / "report.md").read_text()


def test_changes_are_seeded_and_small():
    from condgan.eval.invariance import changed, max_shift, precision_at_1
    from condgan.eval.similarity import retrieval

    x = torch.arange(5 * 28 * 28, dtype=torch.float).view(5, 1, 28, 28) / (5 * 28 * 28)
    assert torch.equal(changed(x, "shifted", 3), changed(x, "shifted", 3)) and max_shift(28) == 2 and max_shift(64) == 5
    assert torch.equal(changed(x, "flipped", 0), x.flip(-1))
    moved = changed(x, "shifted", 3)
    assert all(not torch.equal(moved[k], x[k]) for k in range(5))  # never moved by (0, 0)
    found = [(dy, dx) for k in range(5) for dy in range(-2, 3) for dx in range(-2, 3)
             if torch.equal(moved[k, 0, 2:-2, 2:-2], torch.roll(x[k, 0], (dy, dx), (0, 1))[2:-2, 2:-2])]
    assert len(found) == 5  # each image moved by one offset of at most 2 px
    e = torch.nn.functional.normalize(torch.randn(50, 6, generator=torch.Generator().manual_seed(0)), dim=1)
    labels = torch.arange(50) % 4
    assert precision_at_1(e, e, labels) == pytest.approx(retrieval(e, labels)["precision_at_1"])  # PML's, unchanged

