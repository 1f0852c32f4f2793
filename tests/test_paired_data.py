"""Paired data: built-in Fashion-MNIST pairs, the user's A/B and side-by-side folders, read_image."""

import numpy as np
import pytest
import torch
from PIL import Image

from condgan.data import FASHION_MNIST_CLASSES, load_dataset
from condgan.data.paired import BUILTIN_PAIRS, PairSet, derive_source, load_pairs, read_image
from condgan.errors import DataError

from conftest import needs_fashion


def grey(value: int, h: int = 8, w: int = 8) -> Image.Image:
    return Image.new("L", (w, h), value)


def write_ab(root, n: int = 20, b_ext: str = "png", h: int = 8, w: int = 8):
    """n pairs whose A is grey level 10*i and B is grey level 250-10*i, so pairing can be checked."""
    (root / "A").mkdir(parents=True)
    (root / "B").mkdir(parents=True)
    for i in range(n):
        grey(10 * i, h, w).save(root / "A" / f"{i:04d}.png")
        grey(250 - 10 * i, h, w).save(root / "B" / f"{i:04d}.{b_ext}")
    return root


def levels(images: torch.Tensor) -> list[int]:
    """The mean grey level of each image, rounded."""
    return images.float().mean(dim=(1, 2, 3)).round().int().tolist()


# ---------------------------------------------------------------- built-in pairs

@needs_fashion
def test_builtin_masks_are_binary_silhouettes_of_the_real_test_split():
    pairs = load_pairs("fashion-mnist-masks", split="test")
    real = load_dataset("fashion-mnist", split="test")
    assert pairs.sources.shape == pairs.targets.shape == (10000, 1, 28, 28)
    assert pairs.sources.dtype == pairs.targets.dtype == torch.uint8
    assert set(pairs.sources.unique().tolist()) == {0, 255}
    assert torch.equal(pairs.targets, real.images) and torch.equal(pairs.labels, real.labels)
    assert pairs.class_names == FASHION_MNIST_CLASSES and pairs.names[42] == "test-00042"
    mask = pairs.sources == 255
    assert not (real.images > 64)[~mask].any()  # every clearly bright pixel is inside the silhouette
    assert torch.equal(derive_source(real.images[:500], "masks"), pairs.sources[:500])  # deterministic


@needs_fashion
def test_builtin_train_and_test_splits_differ():
    train, test = load_pairs("fashion-mnist-masks"), load_pairs("fashion-mnist-masks", split="test")
    assert len(train) == 60000 and len(test) == 10000 and train.names[0] == "train-00000"
    assert not torch.equal(train.sources[:100], test.sources[:100])


@needs_fashion
def test_builtin_edges_are_a_sparse_outline_and_keep_class_subsets():
    pairs = load_pairs("fashion-mnist-edges", split="test", classes=["sneaker", "bag"])
    real = load_dataset("fashion-mnist", split="test")
    assert pairs.class_names == ["sneaker", "bag"] and set(pairs.labels.tolist()) == {0, 1}
    assert len(pairs) == 2000
    index = int(pairs.names[7].split("-")[1])  # names keep each image's place in Fashion-MNIST
    assert torch.equal(pairs.targets[7], real.images[index])
    edges, masks = pairs.sources == 255, derive_source(pairs.targets, "masks") == 255
    assert set(pairs.sources.unique().tolist()) == {0, 255}
    assert edges.sum() < 0.8 * masks.sum()  # a line drawing, not a filled shape
    assert not torch.equal(pairs.sources, pairs.targets)
    background = torch.nn.functional.pad(~masks, (1, 1, 1, 1), value=True)  # outside the image is background
    near_background = (background[..., :-2, 1:-1] | background[..., 2:, 1:-1]
                       | background[..., 1:-1, :-2] | background[..., 1:-1, 2:])
    assert edges[masks & near_background].all()  # the silhouette's outline is always drawn
    swapped = load_pairs("fashion-mnist-edges", split="test", classes=["sneaker", "bag"], direction="BtoA")
    assert torch.equal(swapped.sources, pairs.targets) and torch.equal(swapped.targets, pairs.sources)


def test_derive_source_fills_holes_drops_dim_specks_and_outlines():
    img = np.zeros((16, 16), np.uint8)
    img[3:11, 3:11] = 200
    img[5:9, 5:9] = 0       # a hole, e.g. a bag's handle
    img[14, 14] = 30        # a dim speck of noise
    img[0, 15] = 200        # a bright detached pixel: part of the garment
    solid = np.zeros((16, 16), np.uint8)
    solid[2:14, 2:14] = 180
    images = torch.from_numpy(np.stack([img, solid]))[:, None]
    masks = derive_source(images, "masks")
    assert masks.shape == (2, 1, 16, 16) and masks.dtype == torch.uint8
    assert masks[0, 0, 5:9, 5:9].eq(255).all() and masks[0, 0, 14, 14] == 0 and masks[0, 0, 0, 15] == 255
    edges = derive_source(images, "edges")
    assert edges[1, 0, 2, 2:14].eq(255).all()      # the outline is drawn
    assert edges[1, 0, 5:11, 5:11].eq(0).all()     # a flat inside has no edges
    assert torch.equal(edges, derive_source(images, "edges"))
    with pytest.raises(DataError, match="'edges' or 'masks'"):
        derive_source(images, "sketch")
    assert set(BUILTIN_PAIRS) == {"fashion-mnist-edges", "fashion-mnist-masks"}


# ---------------------------------------------------------------- A/B folders

def test_ab_folders_pair_by_name_and_hold_out_every_10th(tmp_path):
    root = write_ab(tmp_path / "pairs", b_ext="jpg")  # A/0001.png pairs with B/0001.jpg
    train, test, every = (load_pairs(str(root), split=s) for s in ("train", "test", "all"))
    assert (len(train), len(test), len(every)) == (18, 2, 20)
    assert test.names == ["0009", "0019"] and train.labels is None
    assert every.sources.shape == (20, 1, 8, 8) and every.targets.shape == (20, 1, 8, 8)
    assert levels(every.sources) == [10 * i for i in range(20)]
    assert np.allclose(levels(every.targets), [250 - 10 * i for i in range(20)], atol=2)  # JPEG is lossy
    swapped = load_pairs(str(root), split="all", direction="BtoA")
    assert torch.equal(swapped.sources, every.targets) and torch.equal(swapped.targets, every.sources)


def test_split_folders_are_used_when_present(tmp_path):
    write_ab(tmp_path / "pairs" / "train", n=3)
    write_ab(tmp_path / "pairs" / "test", n=2)
    test = load_pairs(str(tmp_path / "pairs"), split="test")
    assert test.names == ["test/0000", "test/0001"]
    assert len(load_pairs(str(tmp_path / "pairs"))) == 3 and len(load_pairs(str(tmp_path / "pairs"), split="all")) == 5


def test_side_by_side_images_are_split_in_halves(tmp_path):
    root = tmp_path / "facades"
    root.mkdir()
    for i in range(10):
        arr = np.full((4, 9), 200, np.uint8)  # odd width: the middle column belongs to neither half
        arr[:, :4], arr[:, 4] = 50 + i, 128
        Image.fromarray(arr).save(root / f"{i:03d}.png")
    pairs = load_pairs(str(root), split="all")
    assert pairs.sources.shape == pairs.targets.shape == (10, 1, 4, 4)
    assert levels(pairs.sources) == [50 + i for i in range(10)] and pairs.targets.eq(200).all()
    assert load_pairs(str(root), split="test").names == ["009"]


# ---------------------------------------------------------------- bad pairs

def test_missing_partner_is_skipped_with_a_warning_or_refused(tmp_path):
    root = write_ab(tmp_path / "pairs", n=5)
    (root / "B" / "0002.png").unlink()
    with pytest.warns(UserWarning, match="0002.png: no partner"):
        pairs = load_pairs(str(root), split="all")
    assert pairs.names == ["0000", "0001", "0003", "0004"]
    with pytest.raises(DataError, match="0002.png: no partner"):
        load_pairs(str(root), split="all", bad_files="error")


def test_corrupt_file_is_skipped_or_refused(tmp_path):
    root = write_ab(tmp_path / "pairs", n=5)
    good = (root / "B" / "0003.png").read_bytes()
    (root / "B" / "0003.png").write_bytes(good[: len(good) // 2])
    (root / "A" / "0001.png").write_text("not an image")
    with pytest.warns(UserWarning, match="not a readable image"):
        pairs = load_pairs(str(root), split="all")
    assert pairs.names == ["0000", "0002", "0004"]
    with pytest.raises(DataError, match="0001.png: not a readable image"):
        load_pairs(str(root), split="all", bad_files="error")


def test_mismatched_sizes_within_a_pair(tmp_path):
    root = write_ab(tmp_path / "pairs", n=4)
    grey(99, h=6, w=8).save(root / "B" / "0001.png")
    with pytest.warns(UserWarning, match=r"0001.png \(8x8\).*0001.png \(6x8\): mismatched sizes"):
        pairs = load_pairs(str(root), split="all")
    assert len(pairs) == 3
    with pytest.raises(DataError, match="mismatched sizes"):
        load_pairs(str(root), split="all", bad_files="error")


def test_no_pairs_says_which_layouts_are_expected(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"no pairs.*ROOT/A/<files> and ROOT/B/<files>.*side-by-side"):
        load_pairs(str(tmp_path / "empty"))
    with pytest.raises(DataError, match="does not exist"):
        load_pairs(str(tmp_path / "nowhere"))
    (tmp_path / "half" / "A").mkdir(parents=True)
    with pytest.raises(DataError, match="has an A folder but no B folder"):
        load_pairs(str(tmp_path / "half"))


def test_bad_arguments_are_clear_errors(tmp_path):
    root = write_ab(tmp_path / "pairs", n=3)
    with pytest.raises(DataError, match="'AtoB'.*'BtoA'"):
        load_pairs(str(root), direction="sideways")
    with pytest.raises(DataError, match="split must be"):
        load_pairs(str(root), split="val")
    with pytest.raises(DataError, match="only applies to the built-in"):
        load_pairs(str(root), classes=["a", "b"])


# ---------------------------------------------------------------- modes, channels, sizes

def test_channels_are_decided_per_side_by_content(tmp_path):
    root = tmp_path / "pairs"
    (root / "A").mkdir(parents=True)
    (root / "B").mkdir(parents=True)
    for i in range(4):
        grey(40 * i).convert("RGB").save(root / "A" / f"{i}.png")  # RGB mode, grey content
        Image.new("RGB", (8, 8), (200, 40 * i, 10)).save(root / "B" / f"{i}.png")
    grey(77).save(root / "A" / "4.png")  # one real L-mode file among them
    Image.new("RGBA", (8, 8), (0, 0, 255, 255)).save(root / "B" / "4.png")
    pairs = load_pairs(str(root), split="all")
    assert pairs.sources.shape[1] == 1 and pairs.targets.shape[1] == 3
    assert pairs.targets[4, :, 0, 0].tolist() == [0, 0, 255]


def test_16bit_png_is_scaled_not_clipped(tmp_path):
    root = write_ab(tmp_path / "pairs", n=2)
    Image.fromarray(np.full((8, 8), 32896, np.uint16)).save(root / "A" / "0000.png")  # 0.502 of full range
    Image.fromarray(np.full((8, 8), 65535, np.uint16)).save(root / "A" / "0001.png")
    pairs = load_pairs(str(root), split="all")
    assert pairs.sources.shape == (2, 1, 8, 8) and levels(pairs.sources) == [128, 255]


def test_rectangular_images_keep_their_aspect(tmp_path):
    root = write_ab(tmp_path / "pairs", n=3, h=20, w=30)
    grey(5, 10, 10).save(root / "A" / "0003.png")  # one odd square pair is stretched to the common size
    grey(6, 10, 10).save(root / "B" / "0003.png")
    native = load_pairs(str(root), split="all")
    assert native.sources.shape == native.targets.shape == (4, 1, 20, 30)
    small = load_pairs(str(root), split="all", image_size=15)
    assert small.spec()["source"].size == (10, 15) and small.targets.shape == (4, 1, 10, 15)
    assert levels(small.sources) == [0, 10, 20, 5]


def test_pairset_subset_keeps_names_and_order(tmp_path):
    pairs = load_pairs(str(write_ab(tmp_path / "pairs", n=5)), split="all")
    part = pairs.subset([3, 1])
    assert isinstance(part, PairSet) and part.names == ["0003", "0001"] and levels(part.sources) == [30, 10]


# ---------------------------------------------------------------- read_image

def test_read_image_modes_sizes_orientation(tmp_path):
    Image.new("RGB", (10, 4), (10, 20, 30)).save(tmp_path / "wide.png")
    assert read_image(tmp_path / "wide.png", 3, None).shape == (3, 4, 10)
    out = read_image(str(tmp_path / "wide.png"), 1, (5, 7))
    assert out.shape == (1, 5, 7) and out.dtype == np.uint8
    exif = Image.Exif()
    exif[0x0112] = 6  # EXIF orientation: the camera was turned, show it rotated
    Image.new("RGB", (10, 4), (90, 90, 90)).save(tmp_path / "turned.jpg", exif=exif)
    assert read_image(tmp_path / "turned.jpg", 1, None).shape == (1, 10, 4)


def test_read_image_refuses_bad_files(tmp_path):
    (tmp_path / "notes.png").write_text("not an image")
    with pytest.raises(DataError, match="notes.png: not a readable image"):
        read_image(tmp_path / "notes.png", 3, None)
    with pytest.raises(DataError, match="not a readable image"):
        read_image(tmp_path / "missing.png", 3, None)
    Image.new("L", (9000, 9000)).save(tmp_path / "bomb.png")  # 81 Mpx of zeros compresses to a few KB
    with pytest.raises(DataError, match="too large"):
        read_image(tmp_path / "bomb.png", 1, (8, 8))


def test_exif_orientation_is_applied_before_pairing(tmp_path):
    root = tmp_path / "pairs"
    (root / "A").mkdir(parents=True)
    (root / "B").mkdir(parents=True)
    exif = Image.Exif()
    exif[0x0112] = 6  # stored 10 wide x 4 high, shown 4 wide x 10 high
    for i in range(3):
        Image.new("RGB", (10, 4), (90, 90, 90)).save(root / "A" / f"{i}.jpg", exif=exif)
        grey(30, h=10, w=4).save(root / "B" / f"{i}.png")
    pairs = load_pairs(str(root), split="all")
    assert pairs.sources.shape == pairs.targets.shape == (3, 1, 10, 4)
