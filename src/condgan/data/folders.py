"""A folder of class sub-folders (e.g. shoes/{sandal,sneaker,boot}/*.jpg).

Every image Pillow can read is accepted, in any mode (L, RGB, RGBA, P, 16-bit),
and normalised to `channels` and a square `image_size`. Files that are not
readable images are skipped with a warning, or refused when
bad_files="error", so one junk file never costs a long run.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from ..errors import DataError
from .images import MAX_PIXELS, normalise_mode
from .imageset import ImageSet

log = logging.getLogger(__name__)  # decisions made while loading (channels), shown in the run's log
HELD_OUT_EVERY = 10  # every 10th file of a class forms the 'test' split


def list_class_folders(root: Path) -> list[Path]:
    if root.exists() and not root.is_dir():
        raise DataError(f"data {root} is a file, not a folder (pass a folder of class sub-folders, or --data fashion-mnist)")
    if not root.is_dir():
        raise DataError(f"data folder {root} does not exist (pass a folder of class sub-folders, or --data fashion-mnist)")
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise DataError(f"{root} has no class sub-folders; expected {root}/<class-name>/<images>")
    return folders


def load_image(path: Path, channels: int, size: int) -> np.ndarray:
    """One image as uint8 (C, size, size). Raises DataError if unreadable."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                if im.width * im.height > MAX_PIXELS:
                    raise DataError(f"{path}: {im.width}x{im.height} pixels is too large (limit {MAX_PIXELS}); possible decompression bomb")
                im.load()
                im = normalise_mode(ImageOps.exif_transpose(im), channels)  # phone photos: upright, as viewers show them
    except DataError:
        raise
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise DataError(f"{path}: not a readable image ({type(e).__name__}: {e})") from None
    im = _center_square(im).resize((size, size), Image.Resampling.LANCZOS)
    arr = np.asarray(im, dtype=np.uint8)
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


def _center_square(im: Image.Image) -> Image.Image:
    side = min(im.size)
    left, top = (im.width - side) // 2, (im.height - side) // 2
    return im.crop((left, top, left + side, top + side))


def _is_grayscale(path: Path) -> bool | None:
    try:
        with Image.open(path) as im:
            return im.mode in ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L")
    except Exception:
        return None


CACHE_MODES = ("auto", "memory", "disk")
AUTO_DISK_BYTES = 2 * 1024**3  # data.cache=auto: decoded images above this go to the disk cache
DECODE_CHUNK = 256                # images decoded between writes to the disk cache


def load_folder_dataset(root: Path, split: str = "train", image_size: int | None = None,
                        channels: int | None = None, bad_files: str = "skip", cache: str = "memory") -> ImageSet:
    """Load `root/<class>/*`. split: 'train', 'test' (every 10th file) or 'all'.

    cache: 'memory' decodes every image into RAM (fastest for what fits); 'disk' decodes once into a file
    in the cache directory and reads batches from it (memory stays flat however many images; data/cache.py);
    'auto' is 'disk' when the decoded images would take more than AUTO_DISK_BYTES, else 'memory'.
    """
    if bad_files not in ("skip", "error"):
        raise DataError(f"bad_files must be 'skip' or 'error', not {bad_files!r}")
    if cache not in CACHE_MODES:
        raise DataError(f"data.cache must be one of {', '.join(CACHE_MODES)}, not {cache!r}")
    root = Path(root)
    folders = list_class_folders(root)
    files_per_class = _files_per_class(root, folders)
    size = image_size or 64
    if channels is None:
        channels = decide_channels(files_per_class)
    chosen = [(f, label) for label, files in enumerate(files_per_class)
              for i, f in enumerate(files) if split == "all" or (i % HELD_OUT_EVERY == HELD_OUT_EVERY - 1) == (split == "test")]
    shape = (channels, size, size)
    if cache == "auto":
        cache = "disk" if len(chosen) * channels * size * size > AUTO_DISK_BYTES else "memory"
    class_names = [f.name for f in folders]
    if cache == "memory":
        kept, labels, skipped = _decode_to_memory(chosen, shape, bad_files, folders, split)
    else:
        kept, labels, skipped = _decode_to_disk(chosen, shape, bad_files, folders, split, root)
    for msg in skipped[:10]:
        warnings.warn(f"skipped {msg}", stacklevel=2)
    if len(skipped) > 10:
        warnings.warn(f"skipped {len(skipped) - 10} more unreadable files", stacklevel=2)
    if not labels:
        raise DataError(f"no images in the {split!r} split of {root}")
    return ImageSet(kept, torch.tensor(labels, dtype=torch.int64), class_names, name=str(root))


def _files_per_class(root: Path, folders: list[Path]) -> list[list[Path]]:
    """The image files of each class folder, sorted; an empty class folder, or a single class, is refused."""
    files_per_class = []
    for folder in folders:
        files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
        if not files:
            raise DataError(f"class folder {folder} is empty; remove it or add images to it")
        files_per_class.append(files)
    if len(folders) < 2:
        raise DataError(f"{root} has a single class ({folders[0].name}); a conditional model needs at least 2 class folders")
    return files_per_class


def _decode_to_memory(chosen: list[tuple[Path, int]], shape: tuple[int, int, int], bad_files: str,
                      folders: list[Path], split: str) -> tuple[torch.Tensor, list[int], list[str]]:
    """data.cache=memory: every image decoded into one array in RAM."""
    images = np.empty((len(chosen), *shape), dtype=np.uint8)

    def store(i: int, image: np.ndarray) -> None:
        images[i] = image

    labels, skipped = _decode(chosen, shape[0], shape[1], bad_files, store, folders, split)
    return torch.from_numpy(images[:len(labels)]), labels, skipped


def _decode_to_disk(chosen: list[tuple[Path, int]], shape: tuple[int, int, int], bad_files: str,
                    folders: list[Path], split: str, root: Path) -> tuple[torch.Tensor, list[int], list[str]]:
    """data.cache=disk: decoded once, in chunks, into a file of the cache (reused while the files are unchanged)."""
    from .cache import cache_key, open_or_build

    def write_rows(f) -> dict:
        buffer = np.empty((DECODE_CHUNK, *shape), dtype=np.uint8)
        pending = [0]

        def store(i: int, image: np.ndarray) -> None:
            buffer[pending[0]] = image
            pending[0] += 1
            if pending[0] == DECODE_CHUNK:
                f.write(buffer.tobytes())
                pending[0] = 0

        labels, skipped = _decode(chosen, shape[0], shape[1], bad_files, store, folders, split)
        f.write(buffer[:pending[0]].tobytes())
        return {"count": len(labels), "labels": labels, "skipped": skipped}

    key = cache_key([f for f, _ in chosen], root, split=split, size=shape[1], channels=shape[0], bad_files=bad_files)
    kept, meta = open_or_build(key, shape, len(chosen), write_rows)
    return kept, meta["labels"], meta["skipped"]


def _decode(chosen: list[tuple[Path, int]], channels: int, size: int, bad_files: str, store, folders: list[Path],
            split: str) -> tuple[list[int], list[str]]:
    """Decode each (file, label) in order, handing the n-th readable image to store(n, image).
    Returns the labels of the images stored and the messages of the files skipped."""
    from ..progress import progress

    labels, skipped, tried = [], [], [0] * len(folders)
    show = len(chosen) >= PROGRESS_FROM and is_main_process()
    for f, label in progress(chosen, desc=f"decoding {split} images", unit="img", disable=not show):
        tried[label] += 1
        try:
            image = load_image(f, channels, size)
        except DataError as e:
            if bad_files == "error":
                raise DataError(f"{e} (set data.bad_files=skip to skip such files)") from None
            skipped.append(str(e))
            continue
        store(len(labels), image)
        labels.append(label)
    found = set(labels)
    for label, n in enumerate(tried):
        if n and label not in found:
            raise DataError(f"class folder {folders[label]} has no readable images ({n} files tried)")
    return labels, skipped


PROGRESS_FROM = 2000  # a progress bar for folders at least this large (smaller ones decode in seconds)


def is_main_process() -> bool:
    """Under torchrun, only rank 0 shows progress (the environment says which rank this is)."""
    return os.environ.get("RANK", "0") == "0"


CONTENT_PROBE = 4000  # colour-mode files looked at to decide channels; a larger folder is sampled evenly


def decide_channels(files_per_class: list[list[Path]]) -> int:
    """1 if the images are grey in content, whatever modes the files are saved in; else 3. Logged.

    Files in grey modes are grey from their header; files in colour modes (RGB PNG, JPEG, palette, ...)
    are decoded small and looked at, all of them up to CONTENT_PROBE, an even sample beyond."""
    colour_mode = [f for files in files_per_class for f in files if _is_grayscale(f) is False]
    if not colour_mode:
        return 1
    step = max(1, len(colour_mode) // CONTENT_PROBE)
    for f in colour_mode[::step]:
        try:
            image = load_image(f, 3, 32)
        except DataError:
            continue  # unreadable files are reported when the data is decoded
        if not _grey_content(image):
            log.info(f"data: the images have colour (e.g. {f.name}): training with 3 channels (data.channels=1 makes them grey)")
            return 3
    log.info(f"data: every image is grey in content ({len(colour_mode)} files are saved in a colour mode): training with "
             f"1 channel (set data.channels=3 to keep RGB)")
    return 1


def _grey_content(image: np.ndarray, tolerance: int = 12) -> bool:
    """Whether an RGB image (3, H, W) shows only greys: channels equal up to JPEG's chroma noise
    (at most 1 pixel in 1000 differing by more than `tolerance` levels)."""
    spread = image.max(axis=0).astype(np.int16) - image.min(axis=0)
    return float((spread > tolerance).mean()) <= 0.001


IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
UNLABELLED = "(unlabelled)"  # the one class name of a folder of images without class sub-folders


def is_unlabelled_folder(root: Path) -> bool:
    """A folder holding image files directly and no class sub-folders (the similarity and exemplar tasks take it)."""
    root = Path(root)
    if not root.is_dir() or any(p.is_dir() and not p.name.startswith(".") for p in root.iterdir()):
        return False
    return any(p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES for p in root.iterdir())


def load_unlabelled_folder(root: Path, split: str = "train", image_size: int | None = None,
                           channels: int | None = None, bad_files: str = "skip") -> ImageSet:
    """Every image directly in `root`, as one class named UNLABELLED (every 10th file held out as 'test')."""
    root = Path(root)
    files = sorted(p for p in root.iterdir() if p.is_file() and not p.name.startswith("."))
    chosen = [f for i, f in enumerate(files) if split == "all" or (i % HELD_OUT_EVERY == HELD_OUT_EVERY - 1) == (split == "test")]
    if channels is None:
        channels = 1 if all(_is_grayscale(f) is not False for f in files) else 3
    size = image_size or 64
    images, skipped = [], []
    for f in chosen:
        try:
            images.append(load_image(f, channels, size))
        except DataError as e:
            if bad_files == "error":
                raise DataError(f"{e} (set data.bad_files=skip to skip such files)") from None
            skipped.append(str(e))
    for msg in skipped[:10]:
        warnings.warn(f"skipped {msg}", stacklevel=2)
    if not images:
        raise DataError(f"no readable images in the {split!r} split of {root} ({len(chosen)} files tried)")
    return ImageSet(torch.from_numpy(np.stack(images)), torch.zeros(len(images), dtype=torch.int64), [UNLABELLED],
                    name=str(root))
