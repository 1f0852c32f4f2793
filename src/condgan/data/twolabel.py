"""Two-label data for the two-stage task: (image, intermediate, label A, label B).

A first model turns label A into the intermediate (a silhouette mask, an edge
map, a segmentation map); a second turns the intermediate plus label B into the
image. Two sources:

* built in, derived from real Fashion-MNIST (its own train/test split):
  `fashion-mnist-colours` (the intermediate is the garment's silhouette mask)
  and `fashion-mnist-colours-edges` (its edge map), both by `derive.derive_source`.
  Label A is the garment category; label B is a colour of PALETTE, drawn for
  every garment from a fixed seed, and the image is the garment's grey levels
  times that colour: every colour has a component of 255, so the grey detail
  comes back exactly as the maximum over the three channels (`grey_detail`).
* the user's own: a CSV manifest with the columns image, intermediate, label_a,
  label_b (paths relative to the CSV; an optional `split` column says train or
  test, otherwise every 10th row is held out as test).

In a batch the fields are `image` (3 channels), `mask` (the intermediate,
whatever its kind), `label_a` and `label_b`.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .. import untrusted
from ..conditions import ClassField, ImageField, Spec
from ..errors import DataError
from .derive import derive_source
from .folders import HELD_OUT_EVERY
from .images import read_image
from .imageset import ImageSet, resolve_class
from .mnist import load_mnist

# name -> intermediate kind (a derive.derive_source kind)
BUILTIN = {"fashion-mnist-colours": "masks", "fashion-mnist-colours-edges": "edges"}
# Saturated colours, 60 degrees apart in hue; each has a component of 255, so grey x colour keeps the grey.
PALETTE = {"red": (255, 0, 0), "yellow": (255, 255, 0), "green": (0, 255, 0),
           "cyan": (0, 255, 255), "blue": (0, 0, 255), "magenta": (255, 0, 255)}
COLOUR_SEED = 0    # label B of the built-ins is drawn from this seed (and the split), so it is the same every time
SPLITS = ("train", "test", "all")
MANIFEST_COLUMNS = ("image", "intermediate", "label_a", "label_b")
_HEX = re.compile(r"^#[0-9a-fA-F]{6}$")


@dataclass
class TwoLabelSet:
    images: torch.Tensor          # uint8 (N, 3, H, W)
    masks: torch.Tensor           # uint8 (N, Ci, H, W): the intermediate
    labels_a: torch.Tensor        # int64 (N,)
    labels_b: torch.Tensor        # int64 (N,)
    label_a_names: list[str]
    label_b_names: list[str]
    palette: torch.Tensor | None  # uint8 (K_B, 3) when every label B is a colour, else None
    intermediate: str = "masks"   # 'masks' | 'edges' | 'custom' (the user's own)
    name: str = "two-label"

    def __post_init__(self):
        x, m = self.images, self.masks
        if x.dtype != torch.uint8 or m.dtype != torch.uint8 or x.dim() != 4 or m.dim() != 4 or x.shape[1] != 3:
            raise DataError(f"{self.name}: images must be uint8 (N, 3, H, W) and intermediates uint8 (N, C, H, W)")
        if len(x) != len(m) or x.shape[2:] != m.shape[2:] or not len(self.labels_a) == len(self.labels_b) == len(x):
            raise DataError(f"{self.name}: images {tuple(x.shape)}, intermediates {tuple(m.shape)} and "
                            f"{len(self.labels_a)}/{len(self.labels_b)} labels do not line up")

    def __len__(self) -> int:
        return len(self.images)

    def spec(self) -> Spec:
        h, w = self.images.shape[2:]
        return Spec(image=ImageField(3, h, w), mask=ImageField(self.masks.shape[1], h, w),
                    label_a=ClassField(tuple(self.label_a_names)), label_b=ClassField(tuple(self.label_b_names)))

    def fields(self) -> dict[str, torch.Tensor]:
        return {"image": self.images, "mask": self.masks, "label_a": self.labels_a, "label_b": self.labels_b}

    def details(self) -> ImageSet:
        """The grey detail of every image (max over channels) labelled with label A: what the category
        evaluator judges."""
        return ImageSet(grey_detail(self.images), self.labels_a, list(self.label_a_names), f"{self.name} (grey detail)")

    def intermediates(self) -> ImageSet:
        """The intermediates labelled with label A: what stage 1 learns to draw."""
        return ImageSet(self.masks, self.labels_a, list(self.label_a_names), f"{self.name} (intermediates)")

    def joint_classes(self) -> ImageSet:
        """One class per (A, B) pair, named 'A B' (e.g. 'sandal red'): the data of a single
        class-conditional generator given both labels at once (the benchmark's baseline)."""
        k = len(self.label_b_names)
        names = [f"{a} {b}" for a in self.label_a_names for b in self.label_b_names]
        return ImageSet(self.images, self.labels_a * k + self.labels_b, names, self.name)


def grey_detail(images_uint8: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 3, H, W) colour images -> uint8 (N, 1, H, W): the maximum over the channels."""
    return images_uint8.amax(dim=1, keepdim=True)


def colourise(grey_uint8: torch.Tensor, rgb: torch.Tensor) -> torch.Tensor:
    """Grey garments (N, 1, H, W) times one colour per garment (N, 3) uint8 -> (N, 3, H, W) uint8."""
    scaled = grey_uint8.float() * rgb.float()[:, :, None, None] / 255.0
    return scaled.round_().clamp_(0, 255).to(torch.uint8)


def palette_rgb(names: list[str]) -> torch.Tensor | None:
    """(K, 3) uint8 when every name is a PALETTE colour or a '#rrggbb' code, else None."""
    rgb = []
    for name in names:
        key = name.strip().lower()
        if key in PALETTE:
            rgb.append(PALETTE[key])
        elif _HEX.match(key):
            rgb.append(tuple(int(key[i:i + 2], 16) for i in (1, 3, 5)))
        else:
            return None
    return torch.tensor(rgb, dtype=torch.uint8)


def load_two_label(name: str, split: str = "train", data_dir: str | None = None,
                   classes: list[str] | None = None, image_size: int | None = None,
                   paths_outside: str | None = "warn") -> TwoLabelSet:
    """A built-in two-label set by name, or the user's CSV manifest by path (paths_outside: what rows naming
    files outside its folder get, 'warn' or 'error': untrusted.paths_outside)."""
    if split not in SPLITS:
        raise DataError(f"split must be 'train', 'test' or 'all', not {split!r}")
    if name.lower() in BUILTIN:
        if image_size not in (None, 28):
            raise DataError(f"the built-in {name} is 28x28; data.image_size={image_size} is for CSV manifests")
        return _builtin(name.lower(), split, data_dir, classes)
    path = Path(name).expanduser()
    if path.suffix.lower() != ".csv":
        raise DataError(f"two-stage data must be a built-in ({', '.join(BUILTIN)}) or a CSV manifest "
                        f"(path/to/data.csv with columns {', '.join(MANIFEST_COLUMNS)}), not {name!r}")
    return _manifest(path, split, classes, image_size, paths_outside)


def _label_a(name: str, names: list[str]) -> int:
    try:
        return resolve_class(name, names)
    except DataError as e:
        raise DataError(f"--classes (label A): {e}") from None


# ---------------------------------------------------------------- built in

def _builtin(name: str, split: str, data_dir: str | None, classes: list[str] | None) -> TwoLabelSet:
    parts = []
    for i, s in enumerate(["train", "test"] if split == "all" else [split]):
        garments = load_mnist("fashion-mnist", s, data_dir)
        # colours are drawn for the whole split before any class subset, so a garment keeps its colour
        rng = np.random.default_rng([COLOUR_SEED, ("train", "test").index(s)])
        colours = torch.from_numpy(rng.integers(0, len(PALETTE), len(garments)))
        if classes:
            keep = torch.isin(garments.labels, torch.tensor([_label_a(c, garments.class_names) for c in classes]))
            colours = colours[keep]
            garments = garments.subset(list(classes))
        parts.append((garments, colours))
    garments = parts[0][0] if len(parts) == 1 else ImageSet(torch.cat([p[0].images for p in parts]),
                                                          torch.cat([p[0].labels for p in parts]),
                                                          parts[0][0].class_names, "fashion-mnist")
    colours = torch.cat([p[1] for p in parts])
    if len(garments.class_names) < 2:
        raise DataError("--classes must name at least 2 categories for a conditional model")
    palette = palette_rgb(list(PALETTE))
    return TwoLabelSet(colourise(garments.images, palette[colours]), derive_source(garments.images, BUILTIN[name]),
                       garments.labels, colours, list(garments.class_names), list(PALETTE), palette,
                       BUILTIN[name], name)


# ---------------------------------------------------------------- the user's manifest

def _manifest(path: Path, split: str, classes: list[str] | None, image_size: int | None,
              paths_outside: str | None = "warn") -> TwoLabelSet:
    """Read a CSV manifest; every problem is a DataError naming the row (as numbered in the file) and the fix."""
    rows = _manifest_rows(path)
    names_a = sorted({r["label_a"] for _, r in rows})
    names_b = sorted({r["label_b"] for _, r in rows})
    if classes:
        keep = [_label_a(c, names_a) for c in classes]
        if len(set(keep)) != len(keep):
            raise DataError(f"--classes names a category twice: {', '.join(classes)}")
        wanted = [names_a[i] for i in keep]
        rows = [(n, r) for n, r in rows if r["label_a"] in wanted]
        names_a = wanted
    for what, names in (("label_a", names_a), ("label_b", names_b)):
        if len(names) < 2:
            raise DataError(f"{path}: {what} has {len(names)} distinct value(s) ({', '.join(names)}); "
                            f"a conditional model needs at least 2")
    chosen = _split_rows(rows, split, path)
    if not chosen:
        raise DataError(f"{path}: no rows in the {split!r} split")
    untrusted.paths_outside(path, [(n, r[c]) for n, r in chosen for c in ("image", "intermediate")], paths_outside)
    size = (image_size, image_size) if image_size else None
    images, masks = [], []
    for n, r in chosen:
        files = {}
        for column in ("image", "intermediate"):
            f = (path.parent / r[column]).resolve() if not Path(r[column]).is_absolute() else Path(r[column])
            if not f.is_file():
                raise DataError(f"{path}, row {n}: {column} file {r[column]} does not exist (looked for {f}; "
                                f"paths are relative to the CSV's folder)")
            files[column] = f
        try:
            image = read_image(files["image"], 3, size)
            mask = read_image(files["intermediate"], 1, size)
        except DataError as e:  # (the file's own problem: not an image, too large; named with its row)
            raise DataError(f"{path}, row {n}: {e}") from None
        if image.shape[1:] != mask.shape[1:]:
            raise DataError(f"{path}, row {n}: image {r['image']} is {image.shape[1]}x{image.shape[2]} but intermediate "
                            f"{r['intermediate']} is {mask.shape[1]}x{mask.shape[2]} (H x W); an image and its "
                            f"intermediate must be the same size")
        if images and image.shape != images[0].shape:
            raise DataError(f"{path}, row {n}: {r['image']} is {image.shape[1]}x{image.shape[2]} but the first row's "
                            f"image is {images[0].shape[1]}x{images[0].shape[2]}; make them one size, or set "
                            f"data.image_size to resize every image to a square of that size")
        images.append(image)
        masks.append(mask)
    labels_a = torch.tensor([names_a.index(r["label_a"]) for _, r in chosen], dtype=torch.int64)
    labels_b = torch.tensor([names_b.index(r["label_b"]) for _, r in chosen], dtype=torch.int64)
    return TwoLabelSet(torch.from_numpy(np.stack(images)), torch.from_numpy(np.stack(masks)), labels_a, labels_b,
                       names_a, names_b, palette_rgb(names_b), "custom", str(path))


def _manifest_rows(path: Path) -> list[tuple[int, dict]]:
    """(line number, row) of every data row; the header must name the required columns."""
    if not path.is_file():
        raise DataError(f"manifest {path} does not exist; give a CSV with the columns {', '.join(MANIFEST_COLUMNS)} "
                        f"(and optionally split), or a built-in: {', '.join(BUILTIN)}")
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            header = [h.strip() for h in (reader.fieldnames or [])]
            missing = [c for c in MANIFEST_COLUMNS if c not in header]
            if missing:
                raise DataError(f"{path}: the header lacks the column(s) {', '.join(missing)}; the first line must "
                                f"name {', '.join(MANIFEST_COLUMNS)} (and optionally split), found {', '.join(header) or 'nothing'}")
            rows = []
            for raw in reader:
                row = {(k or "").strip(): (v or "").strip() for k, v in raw.items() if k is not None}
                if not any(row.values()):
                    continue  # a blank line
                n = reader.line_num
                for column in MANIFEST_COLUMNS:
                    if not row.get(column):
                        raise DataError(f"{path}, row {n}: empty {column}; every row needs an image, an intermediate "
                                        f"and both labels")
                rows.append((n, row))
    except UnicodeDecodeError:
        raise DataError(f"{path} is not a UTF-8 text CSV file") from None
    except csv.Error as e:
        raise DataError(f"{path} is not a readable CSV file ({e})") from None
    if not rows:
        raise DataError(f"{path} has a header but no rows")
    return rows


def _split_rows(rows: list[tuple[int, dict]], split: str, path: Path) -> list[tuple[int, dict]]:
    """The rows of `split`: by the `split` column when the manifest has one, else every 10th row is test."""
    if split == "all":
        return rows
    if any("split" in r and r["split"] for _, r in rows):
        bad = next(((n, r["split"]) for n, r in rows if r.get("split", "").lower() not in ("train", "test")), None)
        if bad:
            raise DataError(f"{path}, row {bad[0]}: split must be train or test, not {bad[1]!r}")
        return [(n, r) for n, r in rows if r["split"].lower() == split]
    last = HELD_OUT_EVERY - 1
    return [(n, r) for i, (n, r) in enumerate(rows) if (i % HELD_OUT_EVERY == last) == (split == "test")]
