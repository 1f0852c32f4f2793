"""Writes that complete or leave nothing: a temporary file in the same folder, flushed and fsynced, then
renamed over the target (and the folder fsynced), whatever kills the process; a full disk or a read-only
folder is one clear error, and the previous file is untouched."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import torch

from ..errors import CheckpointError


def atomic_save(obj, path: Path) -> None:
    """torch.save `obj` to `path` atomically; on failure the old file is untouched."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except (OSError, RuntimeError) as e:
        tmp.unlink(missing_ok=True)
        if _is_disk_full(e):
            raise CheckpointError(f"disk full while writing {path}; nothing was overwritten — free space and resume") from None
        if isinstance(e, PermissionError):
            raise CheckpointError(f"cannot write {path}: permission denied (choose a writable --out)") from None
        raise CheckpointError(f"could not write {path}: {e}") from None


def _is_disk_full(e: BaseException) -> bool:
    return (isinstance(e, OSError) and e.errno == errno.ENOSPC) or "No space left" in str(e) or "file write failed" in str(e)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
