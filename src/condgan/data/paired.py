"""Paired image-to-image data: a source image (mask, edge map, sketch) and its target image.

Two kinds of pairs:

* built-in pairs derived from real Fashion-MNIST (`fashion-mnist-masks`,
  `fashion-mnist-edges`): the source is computed from the garment by a fixed,
  deterministic rule, so no extra download is needed and the class labels of
  Fashion-MNIST come along;
* the user's own folders, in either of the two common layouts:
  `root/A/*` + `root/B/*` with matching file names, or pix2pix-style images
  holding A | B side by side (left half A, right half B; an odd width's
  middle column belongs to neither). Both may be split into `root/train` and
  `root/test`; without split folders every 10th pair is held out as 'test'.

A is the source and B the target (direction="AtoB"); "BtoA" swaps them.
All pairs are resized (no cropping) to one common size: the most common
(H, W) of the pairs, or, when `image_size` is given, that size scaled so its
longer side is `image_size` (rounded, aspect ratio kept). Pairs of another
aspect ratio are stretched to it.
"""

from __future__ import annotations

import warnings
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import ExifTags, Image, ImageOps
from scipy import ndimage as ndi

from ..conditions import ClassField, ImageField, Spec
from ..errors import DataError
from . import registry
from .folders import HELD_OUT_EVERY, MAX_PIXELS, _normalise_mode
from .imageset import ImageSet, resolve_class

# name -> how the source is derived from the Fashion-MNIST garment (a `derive_source` kind)
BUILTIN_PAIRS = {"fashion-mnist-edges": "edges", "fashion-mnist-masks": "masks"}
DIRECTIONS = ("AtoB", "BtoA")
SPLITS = ("train", "test", "all")

MASK_LEVEL = 10     # grey level (of 255) above which a pixel belongs to the garment
SPECK_LEVEL = 64    # a tiny blob no brighter than this is noise, not part of the garment
EDGE_SIGMA = 0.8    # Gaussian smoothing (pixels) before the Sobel filter, so texture noise does not fire
EDGE_LEVEL = 0.8    # Sobel magnitude (image in [0, 1]) that counts as an edge: a step of roughly a quarter of full range
DERIVE_CHUNK = 10_000  # images derived at once: bounds the float working memory to ~100 MB

EXPECTED_LAYOUTS = ("expected ROOT/A/<files> and ROOT/B/<files> with matching file names, "
                    "or side-by-side images ROOT/<files> holding A | B (left half A, right half B); "
                    "either may be split into ROOT/train/... and ROOT/test/...")

_CROSS = ndi.generate_binary_structure(2, 1)[None]  # 4-neighbours within one image of an (N, H, W) stack
_SQUARE = np.zeros((3, 3, 3), dtype=bool)           # 8-neighbours within one image
_SQUARE[1] = True


@dataclass
class PairSet:
    sources: torch.Tensor               # uint8 (N, Cs, H, W)
    targets: torch.Tensor               # uint8 (N, Ct, H, W), same H, W as sources
    labels: torch.Tensor | None = None  # int64 (N,), when the pairs have classes
    class_names: list[str] | None = None
    names: list[str] | None = None      # one identifier per pair (file name, or "test-00042" for built-ins)
    name: str = "pairs"

    def __post_init__(self):
        s, t = self.sources, self.targets
        if s.dtype != torch.uint8 or t.dtype != torch.uint8 or s.dim() != 4 or t.dim() != 4:
            raise DataError(f"{self.name}: sources and targets must be uint8 (N, C, H, W)")
        if len(s) != len(t) or s.shape[2:] != t.shape[2:]:
            raise DataError(f"{self.name}: sources {tuple(s.shape)} and targets {tuple(t.shape)} do not pair up")
        if self.labels is not None and len(self.labels) != len(s):
            raise DataError(f"{self.name}: {len(s)} pairs but {len(self.labels)} labels")
        if self.names is None:
            self.names = [f"{i:05d}" for i in range(len(s))]

    def __len__(self) -> int:
        return len(self.sources)

    def spec(self) -> Spec:
        h, w = self.sources.shape[2:]
        spec = Spec(source=ImageField(self.sources.shape[1], h, w), image=ImageField(self.targets.shape[1], h, w))
        if self.labels is not None:
            spec["label"] = ClassField(tuple(self.class_names))
        return spec

    def fields(self) -> dict[str, torch.Tensor]:
        """The named tensors a training batch is cut from (images stay uint8 here)."""
        out = {"source": self.sources, "image": self.targets}
        if self.labels is not None:
            out["label"] = self.labels
        return out

    def subset(self, indices) -> "PairSet":
        """The pairs at `indices` (a list or int64 tensor), in that order; e.g. a quick evaluation slice."""
        idx = torch.as_tensor(indices, dtype=torch.int64)
        labels = None if self.labels is None else self.labels[idx]
        return PairSet(self.sources[idx], self.targets[idx], labels, self.class_names,
                       [self.names[i] for i in idx.tolist()], self.name)

    def swapped(self) -> "PairSet":
        """The same pairs translated the other way (direction BtoA)."""
        return PairSet(self.targets, self.sources, self.labels, self.class_names, self.names, self.name)


def load_pairs(name: str, split: str = "train", data_dir: str | None = None, direction: str = "AtoB",
               image_size: int | None = None, classes: list[str] | None = None,
               bad_files: str = "skip") -> PairSet:
    """Load a built-in pair set by name, or the user's pair folder by path (`data_dir` is for built-ins only)."""
    if split not in SPLITS:
        raise DataError(f"split must be 'train', 'test' or 'all', not {split!r}")
    if direction not in DIRECTIONS:
        raise DataError(f"direction must be 'AtoB' (A is the source) or 'BtoA' (B is the source), not {direction!r}")
    if bad_files not in ("skip", "error"):
        raise DataError(f"bad_files must be 'skip' or 'error', not {bad_files!r}")
    if image_size is not None and image_size < 1:
        raise DataError(f"image_size must be a positive number of pixels, not {image_size}")
    if name.lower() in BUILTIN_PAIRS:
        pairs = _load_builtin(name.lower(), split, data_dir, image_size, classes)
    else:
        if classes:
            raise DataError("classes only applies to the built-in pairs (fashion-mnist-edges, fashion-mnist-masks); "
                            "pair folders have no classes")
        pairs = _load_folder_pairs(Path(name).expanduser(), split, image_size, bad_files)
    return pairs.swapped() if direction == "BtoA" else pairs


# ---------------------------------------------------------------- built-in pairs

def _load_builtin(name: str, split: str, data_dir: str | None, image_size: int | None,
                  classes: list[str] | None) -> PairSet:
    """Fashion-MNIST garments (its own train/test split and labels) with a source derived from each."""
    garments, names = _fashion_with_names(split, data_dir)
    if classes:
        keep = _rows_of_classes(garments, classes)
        garments, names = garments.subset(list(classes)), [names[i] for i in keep.tolist()]
    sources, targets = derive_source(garments.images, BUILTIN_PAIRS[name]), garments.images
    if image_size and image_size != targets.shape[-1]:
        sources, targets = _resize_builtin(sources, targets, image_size)
    return PairSet(sources, targets, garments.labels, garments.class_names, names, name)


def _fashion_with_names(split: str, data_dir: str | None) -> tuple[ImageSet, list[str]]:
    """Fashion-MNIST for `split`, with names like 'test-00042' that give each image's place in its split."""
    splits = ["train", "test"] if split == "all" else [split]
    parts = [registry.load_dataset("fashion-mnist", s, data_dir) for s in splits]
    names = [f"{s}-{i:05d}" for s, part in zip(splits, parts) for i in range(len(part))]
    data = ImageSet(torch.cat([p.images for p in parts]), torch.cat([p.labels for p in parts]),
                    parts[0].class_names, "fashion-mnist")
    return data, names


def _rows_of_classes(data: ImageSet, classes: list[str]) -> torch.Tensor:
    """Row indices that ImageSet.subset(classes) keeps (it keeps rows in order), so names can follow."""
    wanted = torch.tensor([resolve_class(c, data.class_names) for c in classes], dtype=torch.int64)
    return torch.isin(data.labels, wanted).nonzero().squeeze(1)


def _resize_builtin(sources: torch.Tensor, targets: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Sources are derived at 28x28 and then scaled by nearest neighbour, so they stay binary 0/255."""
    return F.interpolate(sources, size=(size, size), mode="nearest-exact"), registry._resize(targets, size)


def derive_source(images_uint8: torch.Tensor, kind: str) -> torch.Tensor:
    """A deterministic source image for each grey garment: its silhouette ('masks') or edge map ('edges').

    images_uint8: uint8 (N, 1, H, W) on a dark background; returns uint8 (N, 1, H, W) with values 0 or 255.
    """
    if kind not in ("edges", "masks"):
        raise DataError(f"source kind must be 'edges' or 'masks', not {kind!r}")
    if images_uint8.dtype != torch.uint8 or images_uint8.dim() != 4 or images_uint8.shape[1] != 1:
        raise DataError(f"derive_source needs grey uint8 (N, 1, H, W) images, got {tuple(images_uint8.shape)} "
                        f"{images_uint8.dtype}")
    derive = _edge_map if kind == "edges" else _silhouette
    chunks = [derive(chunk[:, 0].cpu().numpy()) for chunk in images_uint8.split(DERIVE_CHUNK)]
    on = np.concatenate(chunks) if chunks else np.zeros(images_uint8.shape[:1] + images_uint8.shape[2:], bool)
    return torch.from_numpy(on.astype(np.uint8) * 255)[:, None]


def _silhouette(grey: np.ndarray) -> np.ndarray:
    """Garment shape of each (H, W) image in an (N, H, W) stack: above a low grey level, holes filled, no specks."""
    inside = ndi.binary_fill_holes(grey > MASK_LEVEL, structure=_CROSS)
    return _drop_specks(inside, grey)


def _drop_specks(mask: np.ndarray, grey: np.ndarray) -> np.ndarray:
    """Remove tiny dim blobs (stray noise pixels); small but bright blobs are garment parts and stay.

    So every pixel brighter than SPECK_LEVEL is always inside the silhouette.
    """
    labels, count = ndi.label(mask, structure=_SQUARE)
    sizes = np.bincount(labels.ravel(), minlength=count + 1)
    peaks = np.zeros(count + 1, np.uint8)
    np.maximum.at(peaks, labels.ravel(), grey.ravel())
    largest_speck = max(1, mask.shape[1] * mask.shape[2] // 256)  # 3 pixels at 28x28
    is_speck = (sizes <= largest_speck) & (peaks <= SPECK_LEVEL)
    is_speck[0] = False  # the background
    return mask & ~is_speck[labels]


def _edge_map(grey: np.ndarray) -> np.ndarray:
    """Binary edges of each garment: strong Sobel gradients of the lightly smoothed image, plus the silhouette outline.

    The gradients keep the inner lines (zips, collars, straps) that tell similar classes apart;
    the outline guarantees the shape is there even for dark, low-contrast garments.
    """
    smooth = grey.astype(np.float32) / 255.0
    for axis in (1, 2):
        smooth = ndi.gaussian_filter1d(smooth, EDGE_SIGMA, axis=axis, truncate=2.5)
    strength = np.hypot(_sobel(smooth, along=2, across=1), _sobel(smooth, along=1, across=2))
    shape = _silhouette(grey)
    outline = shape & ~ndi.binary_erosion(shape, structure=_CROSS)
    return (strength > EDGE_LEVEL) | outline


def _sobel(images: np.ndarray, along: int, across: int) -> np.ndarray:
    """Sobel derivative along one image axis of an (N, H, W) stack (never mixing neighbouring images)."""
    return ndi.correlate1d(ndi.correlate1d(images, [-1.0, 0.0, 1.0], axis=along), [1.0, 2.0, 1.0], axis=across)


# ---------------------------------------------------------------- the user's pair folders

@dataclass
class _Candidate:
    """One pair as listed on disk, before any pixel is read."""
    name: str
    a: Path | None              # the A file, or the side-by-side file
    b: Path | None = None       # the B file; None for a side-by-side file
    problem: str | None = None  # why this pair cannot be used (missing partner, ambiguous name)

    @property
    def side_by_side(self) -> bool:
        return self.b is None and self.problem is None


class _Problems:
    """Bad pairs: refused at once (bad_files='error'), or collected and reported as warnings ('skip')."""

    def __init__(self, policy: str):
        self.policy, self.messages = policy, []

    def add(self, message: str) -> None:
        if self.policy == "error":
            raise DataError(f"{message} (set data.bad_files=skip to skip such pairs)")
        self.messages.append(message)

    def warn(self) -> None:
        for message in self.messages[:10]:
            warnings.warn(f"skipped {message}", stacklevel=4)
        if len(self.messages) > 10:
            warnings.warn(f"skipped {len(self.messages) - 10} more bad pairs", stacklevel=4)


def _load_folder_pairs(root: Path, split: str, image_size: int | None, bad_files: str) -> PairSet:
    """Read the pairs of `split` under `root` into memory, one common size, channels decided per side."""
    if not root.is_dir():
        raise DataError(f"pair folder {root} does not exist; give a folder of pairs ({EXPECTED_LAYOUTS}), "
                        f"or a built-in: {', '.join(BUILTIN_PAIRS)}")
    candidates = _list_split(root, split)
    problems = _Problems(bad_files)
    sources, targets, names = _read_pairs(candidates, image_size, problems)
    problems.warn()
    if not names:
        tried = f" ({len(problems.messages)} bad pairs skipped)" if problems.messages else ""
        raise DataError(f"no pairs in the {split!r} split of {root}{tried}; {EXPECTED_LAYOUTS}")
    return PairSet(torch.from_numpy(_fewest_channels(sources)), torch.from_numpy(_fewest_channels(targets)),
                   names=names, name=str(root))


def _list_split(root: Path, split: str) -> list[_Candidate]:
    """The pairs of one split: from root/train and root/test when they exist, else every 10th pair is 'test'."""
    if not ((root / "train").is_dir() or (root / "test").is_dir()):
        return _held_out(_list_folder(root), split)
    candidates = []
    for part in (["train", "test"] if split == "all" else [split]):
        if not (root / part).is_dir():
            raise DataError(f"{root} has split folders but no {part!r} folder ({root / part})")
        for c in _list_folder(root / part):
            c.name = f"{part}/{c.name}"
            candidates.append(c)
    return candidates


def _held_out(candidates: list[_Candidate], split: str) -> list[_Candidate]:
    """Every HELD_OUT_EVERY-th pair (sorted by name) is 'test', as for class folders."""
    if split == "all":
        return candidates
    last = HELD_OUT_EVERY - 1
    return [c for i, c in enumerate(candidates) if (i % HELD_OUT_EVERY == last) == (split == "test")]


def _list_folder(folder: Path) -> list[_Candidate]:
    """The pairs in one folder, sorted by name: A/B sub-folders if there are any, else side-by-side files."""
    side_a, side_b = _side_folder(folder, "A"), _side_folder(folder, "B")
    if side_a and side_b:
        return _pair_by_name(side_a, side_b)
    if side_a or side_b:
        have, lack = ("A", "B") if side_a else ("B", "A")
        raise DataError(f"{folder} has an {have} folder but no {lack} folder; {EXPECTED_LAYOUTS}")
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    return [_Candidate(p.stem, p) for p in files]


def _side_folder(folder: Path, side: str) -> Path | None:
    for name in (side, side.lower()):
        if (folder / name).is_dir():
            return folder / name
    return None


def _pair_by_name(side_a: Path, side_b: Path) -> list[_Candidate]:
    """Match A and B files by their path without extension, so A/0001.png pairs with B/0001.jpg."""
    files_a, files_b = _files_by_stem(side_a), _files_by_stem(side_b)
    candidates = []
    for key in sorted(files_a.keys() | files_b.keys()):
        a, b = files_a.get(key, []), files_b.get(key, [])
        problem = None
        if len(a) > 1 or len(b) > 1:
            problem = f"{', '.join(str(p) for p in a + b)}: several files share the name {key!r}; rename all but one"
        elif not b:
            problem = f"{a[0]}: no partner in {side_b} (missing partner)"
        elif not a:
            problem = f"{b[0]}: no partner in {side_a} (missing partner)"
        candidates.append(_Candidate(key, a[0] if a else None, b[0] if b else None, problem))
    return candidates


def _files_by_stem(folder: Path) -> dict[str, list[Path]]:
    """Files under `folder` (recursively, hidden ones ignored) keyed by relative path without extension."""
    out: dict[str, list[Path]] = {}
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder)
        if p.is_file() and not any(part.startswith(".") for part in rel.parts):
            out.setdefault(rel.with_suffix("").as_posix(), []).append(p)
    return out


def _read_pairs(candidates: list[_Candidate], image_size: int | None,
                problems: _Problems) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Decode every usable pair as RGB at the common size: uint8 (N, 3, H, W) sources, targets, and names.

    Pixel data is decoded once, after a cheap header pass that fixes the common size,
    so memory holds only the resized images.
    """
    usable, sizes = [], []
    for c in candidates:
        try:
            if c.problem:
                raise DataError(c.problem)
            sizes.append(_pair_size(c))
            usable.append(c)
        except DataError as e:
            problems.add(str(e))
    if not usable:
        return np.zeros((0, 3, 1, 1), np.uint8), np.zeros((0, 3, 1, 1), np.uint8), []
    size = _common_size(sizes, image_size)
    sources, targets = (np.empty((len(usable), 3, *size), np.uint8) for _ in range(2))
    names = []
    for c in usable:
        try:
            a, b = _decode_pair(c)
        except DataError as e:
            problems.add(str(e))
            continue
        k = len(names)
        sources[k], targets[k] = _to_array(a, size), _to_array(b, size)
        names.append(c.name)
    return sources[:len(names)], targets[:len(names)], names


def _common_size(sizes: list[tuple[int, int]], image_size: int | None = None) -> tuple[int, int]:
    """The (H, W) all pairs are resized to: the most common size, scaled so its longer side is image_size if given."""
    h, w = Counter(sizes).most_common(1)[0][0]
    if not image_size:
        return h, w
    longer = max(h, w)
    return max(1, round(image_size * h / longer)), max(1, round(image_size * w / longer))


def _pair_size(c: _Candidate) -> tuple[int, int]:
    """(H, W) of one side of the pair, from the file header (orientation applied); no pixels decoded."""
    h, w = _header_size(c.a)
    if not c.side_by_side:
        return h, w
    if w < 2:
        raise DataError(f"{c.a}: {w} pixel wide, too narrow to hold A and B side by side")
    return h, w // 2


def _decode_pair(c: _Candidate) -> tuple[Image.Image, Image.Image]:
    """The A and B images of a pair, as RGB; a side-by-side file loses its middle column when its width is odd."""
    if c.side_by_side:
        whole = _decode(c.a, 3)
        half = whole.width // 2
        return whole.crop((0, 0, half, whole.height)), whole.crop((whole.width - half, 0, whole.width, whole.height))
    a, b = _decode(c.a, 3), _decode(c.b, 3)
    if a.size != b.size:
        raise DataError(f"{c.a} ({a.height}x{a.width}) and {c.b} ({b.height}x{b.width}): mismatched sizes (H x W) "
                        f"within a pair")
    return a, b


def _fewest_channels(images: np.ndarray) -> np.ndarray:
    """One side's images as 1 channel if every one of them has grey content (R == G == B), else as 3."""
    grey = bool((images[:, 0] == images[:, 1]).all() and (images[:, 1] == images[:, 2]).all())
    return np.ascontiguousarray(images[:, :1]) if grey else images


# ---------------------------------------------------------------- reading one image

def read_image(path, channels: int, size: tuple[int, int] | None = None) -> np.ndarray:
    """One image file as uint8 (channels, H, W): any Pillow mode, EXIF orientation applied, resized to size=(H, W)."""
    if channels not in (1, 3):
        raise DataError(f"channels must be 1 or 3, not {channels}")
    return _to_array(_decode(Path(path), channels), size)


@contextmanager
def _reading(path: Path):
    """Turn whatever Pillow raises for a bad file into one DataError naming the file."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    except DataError:
        raise
    except (OSError, ValueError, SyntaxError, KeyError, IndexError, TypeError,
            Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise DataError(f"{path}: not a readable image ({type(e).__name__}: {e})") from None


def _open(path: Path) -> Image.Image:
    """Open lazily (header only), refusing decompression bombs as folders.py does."""
    im = Image.open(path)
    if im.width * im.height > MAX_PIXELS:
        im.close()
        raise DataError(f"{path}: {im.width}x{im.height} pixels is too large (limit {MAX_PIXELS}); "
                        f"possible decompression bomb")
    return im


def _header_size(path: Path) -> tuple[int, int]:
    """(H, W) as the image will be shown, i.e. after its EXIF orientation, without decoding pixels."""
    with _reading(path), _open(path) as im:
        w, h = im.size
        turned = im.getexif().get(ExifTags.Base.Orientation, 1) in (5, 6, 7, 8)
    return (w, h) if turned else (h, w)


def _decode(path: Path, channels: int) -> Image.Image:
    """The decoded image upright (EXIF orientation applied), as L (channels=1) or RGB (channels=3)."""
    with _reading(path), _open(path) as im:
        return _normalise_mode(ImageOps.exif_transpose(im), channels)


def _to_array(im: Image.Image, size: tuple[int, int] | None) -> np.ndarray:
    """uint8 (C, H, W), resized with LANCZOS (no cropping) when size=(H, W) differs."""
    if size is not None and (im.height, im.width) != tuple(size):
        im = im.resize((size[1], size[0]), Image.Resampling.LANCZOS)
    arr = np.asarray(im, dtype=np.uint8)
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)
