"""The built-in IDX datasets, Fashion-MNIST and MNIST: where their files are found and what their classes are called.

registry.load_dataset serves them by name; the built-in pairs and two-label sets derive theirs from
Fashion-MNIST through load_mnist, without going back through the registry.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import DataError
from .idx import has_idx, load_idx_set
from .imageset import ImageSet

FASHION_MNIST_CLASSES = ["t-shirt", "trouser", "pullover", "dress", "coat",
                         "sandal", "shirt", "sneaker", "bag", "ankle-boot"]
MNIST_CLASSES = [str(i) for i in range(10)]

DEFAULT_DIRS = {
    "fashion-mnist": ["/usr/share/datasets/fashion-mnist"],
    "mnist": ["/usr/share/datasets/mnist"],
}
HOW_TO_GET = {
    "fashion-mnist": ("install it with `sudo apt-get install dataset-fashion-mnist` (Debian/Ubuntu), "
                      "or download the four *-ubyte.gz files from https://github.com/zalandoresearch/fashion-mnist "
                      "and pass --data-dir FOLDER"),
    "mnist": "put train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz and "
             "t10k-labels-idx1-ubyte.gz in a folder and pass --data-dir FOLDER",
}


def load_mnist(key: str, split: str, data_dir: str | None = None) -> ImageSet:
    """'fashion-mnist' or 'mnist' (a DEFAULT_DIRS key), one split or 'all', as found by find_folder."""
    names = FASHION_MNIST_CLASSES if key == "fashion-mnist" else MNIST_CLASSES
    return load_idx_set(find_folder(key, data_dir), split, names, key)


def find_folder(key: str, data_dir: str | None) -> Path:
    """The folder of `key`'s IDX files: data_dir if given, else $CONDGAN_<KEY>_DIR, else the usual places."""
    candidates = [data_dir] if data_dir else [os.environ.get(f"CONDGAN_{key.upper().replace('-', '_')}_DIR")] + DEFAULT_DIRS[key]
    for c in candidates:
        if c and has_idx(Path(c)):
            return Path(c)
    where = data_dir or " or ".join(DEFAULT_DIRS[key])
    raise DataError(f"{key} not found in {where}: {HOW_TO_GET[key]}")
