"""Data as people keep it: a CSV of path,label (cgan) or source,target[,label] (translate), and hf:PATH."""

import csv
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from condgan.cli import main
from condgan.data import load_dataset
from condgan.data.paired import load_pairs
from condgan.errors import DataError

from conftest import class_pattern

CLASSES = ("boot", "sandal", "sneaker")
TINY = ["--set", "data.image_size=16", "model.g_width=4", "model.d_width=4", "model.z_dim=8", "train.batch_size=8",
        "train.log_every=1", "train.sample_every=2", "train.checkpoint_every=2", "--steps", "2", "--quiet"]


def write_csv(path: Path, header, rows) -> Path:
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows([header, *rows])
    return path


def labelled_images(root: Path, per_class: int = 12, size: int = 12):
    """Images under root/img/ and the (relative path, label) of each, classes interleaved as people append them."""
    (root / "img").mkdir(parents=True, exist_ok=True)
    rng, rows = np.random.default_rng(0), []
    for i in range(per_class):
        for label, name in enumerate(CLASSES):
            rel = f"img/{name}-{i:02d}.png"
            Image.fromarray(class_pattern(label, size, rng)).save(root / rel)
            rows.append([rel, name])
    return rows


def train_run(tmp_path, *args) -> int:
    return main(["train", *args, "--out", str(tmp_path / "run"), *TINY])


# ---------------------------------------------------------------- path,label

def test_class_csv_names_counts_and_every_10th_row_of_each_class(tmp_path):
    f = write_csv(tmp_path / "labels.csv", ["path", "label"], labelled_images(tmp_path))
    train, test = load_dataset(str(f), "train"), load_dataset(str(f), "test")
    assert train.class_names == list(CLASSES) and test.class_names == list(CLASSES)
    assert train.counts() == [11, 11, 11] and test.counts() == [1, 1, 1]
    assert train.channels == 1 and train.image_size == 64  # grey content; folders' default size


def test_class_csv_split_column_and_training_run(tmp_path):
    rows = [[p, label, "test" if i < 3 else "train"] for i, (p, label) in enumerate(labelled_images(tmp_path, 4))]
    f = write_csv(tmp_path / "labels.csv", ["path", "label", "split"], rows)
    assert load_dataset(str(f), "test").counts() == [1, 1, 1]
    assert load_dataset(str(f), "train").counts() == [3, 3, 3]
    assert train_run(tmp_path, "--data", str(f)) == 0
    assert (tmp_path / "run" / "config.yaml").is_file()


def test_class_csv_bad_rows_are_skipped_naming_the_line_or_refused(tmp_path):
    rows = labelled_images(tmp_path, 4)
    (tmp_path / "img" / "junk.png").write_bytes(b"not a png")
    rows[0] = ["img/missing.png", "boot"]               # line 2
    rows[1] = ["img/junk.png", "sandal"]                # line 3
    rows[2] = ["img/sneaker-00.png", "sneaker", "x"]    # line 4: a cell the header does not name
    f = write_csv(tmp_path / "labels.csv", ["path", "label"], rows)
    with pytest.warns(UserWarning) as caught:
        data = load_dataset(str(f), "all")
    text = " ".join(str(w.message) for w in caught)
    assert "line 2" in text and "does not exist" in text and "line 3" in text and "line 4" in text
    assert len(data) == 9
    with pytest.raises(DataError, match=r"line 4: 3 cells, but the header names 2 columns.*data.bad_files=skip"):
        load_dataset(str(f), "all", bad_files="error")
    del rows[2]
    f = write_csv(tmp_path / "labels.csv", ["path", "label"], rows)
    with pytest.raises(DataError, match=r"line 2: image 'img/missing.png' does not exist.*data.bad_files=skip"):
        load_dataset(str(f), "all", bad_files="error")


def test_class_csv_rows_outside_its_folder_warn_or_are_refused(tmp_path):
    rows = labelled_images(tmp_path / "data", 2)
    Image.fromarray(np.zeros((12, 12), np.uint8)).save(tmp_path / "outside.png")
    rows.append(["../outside.png", "boot"])
    f = write_csv(tmp_path / "data" / "labels.csv", ["path", "label"], rows)
    with pytest.warns(UserWarning, match="1 row\\(s\\) name files outside its folder"):
        assert len(load_dataset(str(f), "all")) == 7
    with pytest.raises(DataError, match="outside the CSV's folder"):
        load_dataset(str(f), "all", paths_outside="error")
    assert train_run(tmp_path, "--data", str(f), "--set", "data.paths_outside=error") == 2


def test_class_csv_missing_column_is_one_clear_error(tmp_path, capsys):
    f = write_csv(tmp_path / "labels.csv", ["file", "label"], labelled_images(tmp_path, 2))
    with pytest.raises(DataError, match="lacks the column\\(s\\) path; the first line must be path,label\\[,split\\]"):
        load_dataset(str(f))
    assert train_run(tmp_path, "--data", str(f)) == 2
    assert "lacks the column(s) path" in capsys.readouterr().err


# ---------------------------------------------------------------- source,target[,label]

def test_pair_csv_labels_splits_and_a_training_run(tmp_path):
    rng, rows = np.random.default_rng(0), []
    for folder in ("src", "dst"):
        (tmp_path / folder).mkdir()
    for i in range(20):
        image = class_pattern(i % 2, 16, rng)
        Image.fromarray(np.where(image > 128, 255, 0).astype(np.uint8)).save(tmp_path / "src" / f"{i}.png")
        Image.fromarray(image).save(tmp_path / "dst" / f"{i}.png")
        rows.append([f"src/{i}.png", f"dst/{i}.png", ["even", "odd"][i % 2]])
    rows[4][1] = "dst/missing.png"
    f = write_csv(tmp_path / "pairs.csv", ["source", "target", "label"], rows)
    with pytest.warns(UserWarning, match="line 6: image 'dst/missing.png' does not exist"):
        train = load_pairs(str(f), "train")
    test = load_pairs(str(f), "test")
    assert len(train) == 17 and len(test) == 2 and train.class_names == ["even", "odd"]
    assert train.sources.shape[1:] == (1, 16, 16) and train.names[0] == "0"
    with pytest.raises(DataError, match="line 6: image 'dst/missing.png'"):
        load_pairs(str(f), "train", bad_files="error")
    with pytest.warns(UserWarning):
        assert train_run(tmp_path, "--task", "translate", "--data", str(f), "--set", "model.use_label=true") == 0


# ---------------------------------------------------------------- hf:PATH

needs_datasets = pytest.mark.skipif(importlib.util.find_spec("datasets") is None,
                                    reason="the optional extra hf is not installed (pip install 'condgan[hf]')")


def hf_dataset(n: int = 24, labels=None):
    import datasets

    rng = np.random.default_rng(0)
    y = list(range(3)) * (n // 3)
    features = datasets.Features({"picture": datasets.Image(),
                                  "kind": labels or datasets.ClassLabel(names=list(CLASSES))})
    images = [Image.fromarray(class_pattern(k, 12, rng)) for k in y]
    return datasets.Dataset.from_dict({"picture": images, "kind": y}, features=features)


@needs_datasets
def test_hf_saved_dataset_dict_class_names_splits_and_training_run(tmp_path):
    import datasets

    dd = datasets.DatasetDict(train=hf_dataset(), test=hf_dataset(6))
    dd.save_to_disk(str(tmp_path / "saved"))
    name = f"hf:{tmp_path / 'saved'}"
    train = load_dataset(name, "train", image_column="picture", label_column="kind")
    test = load_dataset(name, "test", image_column="picture", label_column="kind")
    assert train.class_names == list(CLASSES) and train.counts() == [8, 8, 8] and test.counts() == [2, 2, 2]
    assert train.channels == 1
    assert train_run(tmp_path, "--data", name, "--image-column", "picture", "--label-column", "kind") == 0


@needs_datasets
def test_hf_parquet_with_plain_labels_holds_out_every_10th_row_per_class(tmp_path):
    import datasets

    hf_dataset(60, datasets.Value("int64")).to_parquet(str(tmp_path / "data.parquet"))
    name = f"hf:{tmp_path / 'data.parquet'}"
    train = load_dataset(name, "train", image_column="picture", label_column="kind")
    assert train.class_names == ["0", "1", "2"] and train.counts() == [18, 18, 18]
    assert load_dataset(name, "test", image_column="picture", label_column="kind").counts() == [2, 2, 2]
    (tmp_path / "folder").mkdir()
    hf_dataset(30).to_parquet(str(tmp_path / "folder" / "train-0.parquet"))
    hf_dataset(6).to_parquet(str(tmp_path / "folder" / "test-0.parquet"))
    folder = f"hf:{tmp_path / 'folder'}"
    assert load_dataset(folder, "test", image_column="picture", label_column="kind").counts() == [2, 2, 2]


@needs_datasets
def test_hf_missing_column_or_missing_extra_is_one_clear_error(tmp_path, monkeypatch, capsys):
    hf_dataset(6).save_to_disk(str(tmp_path / "saved"))
    with pytest.raises(DataError, match="has no column 'image'.*picture, kind.*--image-column"):
        load_dataset(f"hf:{tmp_path / 'saved'}")
    monkeypatch.setitem(sys.modules, "datasets", None)
    assert train_run(tmp_path, "--data", f"hf:{tmp_path / 'saved'}") == 2
    assert "needs the optional extra: pip install 'condgan[hf]'" in capsys.readouterr().err


@needs_datasets
def test_hf_unreadable_image_is_skipped_or_refused(tmp_path):
    import datasets

    good = hf_dataset(6)
    junk = datasets.Dataset.from_dict({"picture": [{"bytes": b"not an image", "path": None}], "kind": [1]},
                                      features=good.features)
    datasets.concatenate_datasets([good, junk]).save_to_disk(str(tmp_path / "saved"))
    name = f"hf:{tmp_path / 'saved'}"
    with pytest.warns(UserWarning, match="split train, row 6: not a readable image"):
        assert len(load_dataset(name, "all", image_column="picture", label_column="kind")) == 6
    with pytest.raises(DataError, match="row 6: not a readable image.*data.bad_files=skip"):
        load_dataset(name, "all", image_column="picture", label_column="kind", bad_files="error")
