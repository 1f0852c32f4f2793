"""Checkpoints that survive crashes and cannot run code when loaded.

Writes go to a temporary file in the same folder, are flushed and fsynced,
then atomically renamed: a checkpoint file either exists complete or not at
all, whatever kills the process. Loading uses `weights_only=True`, so a
crafted pickle is refused instead of executed.
"""

from __future__ import annotations

import errno
import os
import pickle
import re
import warnings
from pathlib import Path

import torch

from ..errors import CheckpointError

FORMAT = "condgan-checkpoint"
VERSION = 1
_NAME = re.compile(r"^step_(\d{8})\.pt$")


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


def safe_load(path: Path) -> dict:
    """Load a condgan checkpoint without unpickling arbitrary objects."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        detail = next((ln.strip() for ln in str(e).splitlines() if "unsupported" in ln.lower()), "")
        if "global" not in detail.lower():  # not an object reference: the bytes are simply damaged
            raise CheckpointError(f"{path} is corrupt or not a checkpoint ({detail or 'unpickling failed'})") from None
        raise CheckpointError(
            f"refusing to load {path}: it references Python objects that could run code when unpickled "
            f"({detail[:160]}). Only checkpoints with plain tensors and numbers are loaded."
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as e:
        raise CheckpointError(f"{path} is corrupt or not a checkpoint: {str(e).splitlines()[0][:200] if str(e) else type(e).__name__}") from None
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a condgan checkpoint")
    if obj.get("version", 0) > VERSION:
        raise CheckpointError(f"{path} was written by a newer condgan (format {obj['version']}); upgrade condgan")
    return obj


def checkpoint_path(folder: Path, step: int) -> Path:
    return Path(folder) / f"step_{step:08d}.pt"


def list_checkpoints(folder: Path) -> list[Path]:
    """Complete checkpoints in `folder`, oldest first (temporary files are ignored)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if _NAME.match(p.name))


def load_latest(folder: Path) -> tuple[dict, Path]:
    """The newest checkpoint that loads; a damaged newest one falls back to the previous."""
    found = list_checkpoints(folder)
    if not found:
        raise CheckpointError(f"no checkpoints in {folder}")
    errors = []
    for path in reversed(found):
        try:
            return safe_load(path), path
        except CheckpointError as e:
            if "refusing to load" in str(e):
                raise
            errors.append(str(e))
            warnings.warn(f"skipping unreadable checkpoint: {e}", stacklevel=2)
    raise CheckpointError(f"no readable checkpoint in {folder}: {errors[0]}")


def prune(folder: Path, keep: int) -> None:
    for path in list_checkpoints(folder)[:-keep]:
        path.unlink(missing_ok=True)
    for stale in Path(folder).glob(".step_*.tmp-*"):  # left by a killed writer
        try:
            if not _pid_alive(int(stale.name.rsplit("-", 1)[1])):
                stale.unlink(missing_ok=True)
        except ValueError:
            pass


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
