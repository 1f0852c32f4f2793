"""Build the 'shoes' folder a new user arrives with, from Fashion-MNIST's test split (never trained on by the
built-in default): three class folders (sandal, sneaker, ankle-boot), ~600 images each, files of mixed formats
(PNG, JPEG, BMP, WebP), modes (L, RGB, P) and sizes (28 to 96 px), all grey garments.

    python benchmarks/make_shoe_folder.py --out /tmp/shoes --per-class 600
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from condgan.data import load_dataset

CLASSES = {"sandal": "sandal", "sneaker": "sneaker", "ankle-boot": "boot"}
FORMATS = (("png", "L"), ("png", "RGB"), ("jpg", "RGB"), ("bmp", "RGB"), ("webp", "RGB"), ("png", "P"))


def build(out: Path, per_class: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    data = load_dataset("fashion-mnist", split="test", classes=list(CLASSES))
    counts = {}
    for label, folder in enumerate(CLASSES.values()):
        (out / folder).mkdir(parents=True, exist_ok=True)
        images = data.images[data.labels == label][:per_class, 0].numpy()
        for i, grey in enumerate(images):
            ext, mode = FORMATS[rng.integers(len(FORMATS))]
            side = int(rng.integers(28, 97))
            im = Image.fromarray(grey).resize((side, side), Image.Resampling.BICUBIC).convert(mode)
            im.save(out / folder / f"{folder}_{i:04d}.{ext}", **({"quality": 90} if ext == "jpg" else {}))
        counts[folder] = len(images)
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="folder to create (class sub-folders go inside)")
    parser.add_argument("--per-class", type=int, default=600, help="images per class (default 600; the test split has 1000)")
    parser.add_argument("--seed", type=int, default=0, help="seed for formats and sizes (default 0)")
    args = parser.parse_args()
    counts = build(Path(args.out), args.per_class, args.seed)
    print(f"wrote {sum(counts.values())} images to {args.out}: {counts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
