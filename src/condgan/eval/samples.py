"""Reading generated samples from an .npz file (as written by `condgan sample --out x.npz`).

The file may come from any program, so everything is checked and every
problem is reported as a UserError that says what is wrong and what is
expected, instead of a shape error deep inside the metrics.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import torch

from ..errors import UserError

EXPECTED = ("expected keys 'images' (uint8, N x H x W or N x H x W x C), 'labels' (integers, N) "
            "and 'class_names' (strings), as written by `condgan sample --out FILE.npz`")


MAX_ARRAY_BYTES = 8_000_000_000


def _check_sizes(path: Path) -> None:
    """Read each array's header (a few bytes) and refuse absurd sizes before numpy allocates them."""
    try:
        with zipfile.ZipFile(path) as z:
            for member in z.infolist():
                if not member.filename.endswith(".npy"):
                    continue
                with z.open(member) as f:
                    version = np.lib.format.read_magic(f)
                    read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                    shape, _, dtype = read(f)
                size = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
                if size > MAX_ARRAY_BYTES:
                    raise UserError(f"{path}: array {member.filename[:-4]!r} declares shape {shape} ({size:,} bytes); too large "
                                    f"(limit {MAX_ARRAY_BYTES:,} bytes)")
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
        raise UserError(f"{path} is not a readable .npz file ({type(e).__name__}: {e}); {EXPECTED}") from None


def load_samples_npz(path: str | Path) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """Return (images uint8 (N, C, H, W), labels int64 (N,), class_names) from a samples .npz."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"samples file {path} does not exist")
    _check_sizes(path)
    try:
        with np.load(path, allow_pickle=False) as npz:  # never unpickle: the file may not be ours
            arrays = {k: npz[k] for k in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise UserError(f"{path} is not a readable .npz file ({type(e).__name__}: {e}); {EXPECTED}") from None
    missing = [k for k in ("images", "labels", "class_names") if k not in arrays]
    if missing:
        raise UserError(f"{path} lacks {', '.join(map(repr, missing))} (it has {', '.join(map(repr, arrays)) or 'nothing'}); {EXPECTED}")
    images, labels, names = arrays["images"], arrays["labels"], arrays["class_names"]

    if images.dtype != np.uint8:
        raise UserError(f"{path}: 'images' must be uint8 (0..255), not {images.dtype}")
    if images.ndim == 3:
        images = images[:, :, :, None]
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise UserError(f"{path}: 'images' has shape {images.shape}; expected N x H x W (grayscale) or N x H x W x C with C = 1 or 3")
    if images.shape[1] != images.shape[2]:
        raise UserError(f"{path}: images are {images.shape[1]}x{images.shape[2]}; condgan evaluates square images")
    if len(images) == 0:
        raise UserError(f"{path} holds no images")

    if names.ndim != 1 or names.dtype.kind not in "U" or len(names) < 2:
        raise UserError(f"{path}: 'class_names' must be a 1-D array of at least 2 strings, got {names.dtype} {names.shape}")
    class_names = [str(n) for n in names]
    if len(set(class_names)) != len(class_names):
        raise UserError(f"{path}: 'class_names' names a class twice: {', '.join(class_names)}")

    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise UserError(f"{path}: 'labels' must be a 1-D integer array, got {labels.dtype} {labels.shape}")
    if len(labels) != len(images):
        raise UserError(f"{path}: {len(images)} images but {len(labels)} labels")
    bad = (labels < 0) | (labels >= len(class_names))
    if bad.any():
        raise UserError(f"{path}: label {int(labels[bad][0])} is out of range for {len(class_names)} classes "
                        f"(0..{len(class_names) - 1}); {int(bad.sum())} labels are")

    return (torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2))),
            torch.from_numpy(labels.astype(np.int64)), class_names)


def save_samples_npz(path: str | Path, images: torch.Tensor, labels: torch.Tensor, class_names: list[str]) -> Path:
    """Write uint8 (N, C, H, W) images in the layout load_samples_npz reads (used by tests and benchmarks)."""
    arr = images.numpy().transpose(0, 2, 3, 1)
    if arr.shape[-1] == 1:
        arr = arr[..., 0]
    np.savez_compressed(path, images=arr, labels=labels.numpy().astype(np.int64), class_names=np.array(class_names))
    return Path(path)
