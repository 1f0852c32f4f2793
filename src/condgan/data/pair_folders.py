"""The user's pair folders on disk: listing, matching A with B, and decoding the pairs (for paired.load_pairs).

Either layout, `root/A/*` + `root/B/*` with matching file names, or side-by-side files holding A | B;
either may be split into `root/train` and `root/test`, else every 10th pair is held out as 'test'.
A bad pair is skipped with a warning, or refused when bad_files='error'.
"""

from __future__ import annotations

import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..errors import DataError
from .folders import HELD_OUT_EVERY
from .images import decode, header_size, to_array

EXPECTED_LAYOUTS = ("expected ROOT/A/<files> and ROOT/B/<files> with matching file names, "
                    "or side-by-side images ROOT/<files> holding A | B (left half A, right half B); "
                    "either may be split into ROOT/train/... and ROOT/test/...")


@dataclass
class _Candidate:
    """One pair as listed on disk, before any pixel is read."""
    name: str
    a: Path | None              # the A file, or the side-by-side file
    b: Path | None = None       # the B file; None for a side-by-side file
    problem: str | None = None  # why this pair cannot be used (missing partner, ambiguous name)
    where: str | None = None    # where it was listed, to name in a problem (a CSV's line)

    @property
    def side_by_side(self) -> bool:
        return self.b is None and self.problem is None


class _Problems:
    """Bad pairs: refused at once (bad_files='error'), or collected and reported as warnings ('skip')."""

    def __init__(self, policy: str):
        self.policy, self.messages = policy, []

    def add(self, message: str, where: str | None = None) -> None:
        message = f"{where}: {message}" if where else message
        if self.policy == "error":
            raise DataError(f"{message} (set data.bad_files=skip to skip such pairs)")
        self.messages.append(message)

    def warn(self) -> None:
        for message in self.messages[:10]:
            warnings.warn(f"skipped {message}", stacklevel=4)
        if len(self.messages) > 10:
            warnings.warn(f"skipped {len(self.messages) - 10} more bad pairs", stacklevel=4)


def read_pair_folder(root: Path, split: str, image_size: int | None,
                     bad_files: str) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """The pairs of `split` under the folder `root`, in memory at one common size, channels decided per side:
    uint8 (N, C, H, W) sources and targets, and a name for each pair."""
    problems = _Problems(bad_files)
    sources, targets, names = decode_pairs(_list_split(root, split), image_size, problems)
    if not names:
        tried = f" ({len(problems.messages)} bad pairs skipped)" if problems.messages else ""
        raise DataError(f"no pairs in the {split!r} split of {root}{tried}; {EXPECTED_LAYOUTS}")
    return sources, targets, names


def decode_pairs(candidates: list[_Candidate], image_size: int | None,
                 problems: _Problems) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """The usable candidates decoded at one common size, channels decided per side (also for pair_csv.py)."""
    sources, targets, names = _read_pairs(candidates, image_size, problems)
    problems.warn()
    return torch.from_numpy(_fewest_channels(sources)), torch.from_numpy(_fewest_channels(targets)), names


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
            problems.add(str(e), c.where)
    if not usable:
        return np.zeros((0, 3, 1, 1), np.uint8), np.zeros((0, 3, 1, 1), np.uint8), []
    size = _common_size(sizes, image_size)
    sources, targets = (np.empty((len(usable), 3, *size), np.uint8) for _ in range(2))
    names = []
    for c in usable:
        try:
            a, b = _decode_pair(c)
        except DataError as e:
            problems.add(str(e), c.where)
            continue
        k = len(names)
        sources[k], targets[k] = to_array(a, size), to_array(b, size)
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
    h, w = header_size(c.a)
    if not c.side_by_side:
        return h, w
    if w < 2:
        raise DataError(f"{c.a}: {w} pixel wide, too narrow to hold A and B side by side")
    return h, w // 2


def _decode_pair(c: _Candidate) -> tuple[Image.Image, Image.Image]:
    """The A and B images of a pair, as RGB; a side-by-side file loses its middle column when its width is odd."""
    if c.side_by_side:
        whole = decode(c.a, 3)
        half = whole.width // 2
        return whole.crop((0, 0, half, whole.height)), whole.crop((whole.width - half, 0, whole.width, whole.height))
    a, b = decode(c.a, 3), decode(c.b, 3)
    if a.size != b.size:
        raise DataError(f"{c.a} ({a.height}x{a.width}) and {c.b} ({b.height}x{b.width}): mismatched sizes (H x W) "
                        f"within a pair")
    return a, b


def _fewest_channels(images: np.ndarray) -> np.ndarray:
    """One side's images as 1 channel if every one of them has grey content (R == G == B), else as 3."""
    grey = bool((images[:, 0] == images[:, 1]).all() and (images[:, 1] == images[:, 2]).all())
    return np.ascontiguousarray(images[:, :1]) if grey else images
