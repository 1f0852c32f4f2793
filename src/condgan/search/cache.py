"""Where folder indexes are kept between searches, and the bound on how much is kept.

One file per (folder, embedder) in $CONDGAN_CACHE/search (default ~/.cache/condgan/search). Each use
touches its file, so its modification time says when it was last used. After an index is written or
reused, the folder is pruned: files unused for more than CONDGAN_SEARCH_CACHE_DAYS days (default 30) go,
then the least recently used until the rest fit in CONDGAN_SEARCH_CACHE_MB megabytes (default 1024). The
index in use is never removed, even when it alone is larger than the bound. Temporary files left by a
killed write go after a day.
"""

from __future__ import annotations

import os
import time
import warnings
from pathlib import Path

import torch

from ..errors import UserError
from ..untrusted import shown

DEFAULT_MB = 1024.0
DEFAULT_DAYS = 30.0
STALE_TEMPORARY_S = 24 * 3600


def cache_root() -> Path:
    return Path(os.environ.get("CONDGAN_CACHE") or Path.home() / ".cache" / "condgan").expanduser() / "search"


def limits() -> tuple[float, float]:
    """(largest total in bytes, longest time unused in seconds) from the environment, or the defaults."""
    def number(name: str, default: float) -> float:
        text = os.environ.get(name, "").strip()
        if not text:
            return default
        try:
            value = float(text)
        except ValueError:
            value = -1.0
        if not 0 <= value < float("inf"):
            raise UserError(f"{name} must be a number, 0 or more, not {shown(text)}")
        return value

    return number("CONDGAN_SEARCH_CACHE_MB", DEFAULT_MB) * 1024**2, number("CONDGAN_SEARCH_CACHE_DAYS", DEFAULT_DAYS) * 86400


def read(path: Path) -> dict | None:
    """A kept index (and its use noted), or None when there is none or it is damaged (never trusted)."""
    try:
        kept = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:
        return None
    try:
        os.utime(path)  # used now: the last to go when the cache is pruned
    except OSError:
        pass
    return kept if isinstance(kept, dict) and kept.get("version") == 2 else None


def write(path: Path, entry: dict) -> None:
    """Keep an index, then prune the cache; a read-only cache only costs the next search its time."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        torch.save({"version": 2, **entry}, tmp)
        os.replace(tmp, path)
    except OSError as e:
        warnings.warn(f"could not cache the search index in {path.parent} ({e.strerror})", stacklevel=3)


def prune(root: Path, keep: Path, max_bytes: float, max_age_s: float, now: float | None = None) -> list[Path]:
    """Remove kept indexes unused for longer than max_age_s, then the least recently used until the rest take
    at most max_bytes; `keep` (the one in use) stays. Returns what was removed."""
    now = time.time() if now is None else now
    removed, entries = [], []
    for f in root.iterdir() if root.is_dir() else []:
        if not (f.name.endswith(".pt") or ".pt.tmp-" in f.name):
            continue
        try:
            st = f.stat()
        except OSError:  # removed meanwhile by another search
            continue
        temporary = f.name.startswith(".")
        if f == keep or (temporary and now - st.st_mtime < STALE_TEMPORARY_S):
            continue
        if temporary or now - st.st_mtime > max_age_s:
            removed.append(f)
        else:
            entries.append((st.st_mtime, st.st_size, f))
    total = sum(size for _, size, _ in entries) + (keep.stat().st_size if keep.is_file() else 0)
    for _, size, f in sorted(entries):  # oldest use first
        if total <= max_bytes:
            break
        removed.append(f)
        total -= size
    for f in removed:
        f.unlink(missing_ok=True)
    return removed
