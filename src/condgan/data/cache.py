"""Decoded images on disk, for datasets larger than memory.

Decoding a folder of JPEGs/PNGs is the slow part of reading it, and keeping
every decoded image in RAM makes memory grow with the dataset. So a large
folder is decoded once into one flat uint8 file (N, C, H, W) in the cache
directory ($CONDGAN_CACHE/decoded, default ~/.cache/condgan/decoded), keyed by
its file list, sizes and modification times and by the decoded size: change a
file and the cache is rebuilt, train again on the same folder and it is reused
(by every run and every process of a torchrun job; a lock makes one of them
build it while the others wait).

Training reads its batches from that file with os.pread: the kernel's page
cache keeps the file's hot parts in memory as long as memory is free, and
gives it back when it is not. (A memory map would be as fast, but every page
it touches counts in the process's resident memory until unmapped, so RSS
would grow with the images seen: measured in benchmarks/memory.py.)
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from ..errors import DataError

FORMAT_VERSION = 1
IMAGES_FILE, META_FILE = "images.u8", "meta.json"


def cache_root() -> Path:
    """$CONDGAN_CACHE/decoded, default ~/.cache/condgan/decoded."""
    return Path(os.environ.get("CONDGAN_CACHE") or Path.home() / ".cache" / "condgan").expanduser() / "decoded"


class DiskImages:
    """uint8 images (N, C, H, W) stored row after row in a file; indexing reads only the rows asked for.

    Behaves like the uint8 tensor it stands for where the trainer uses one: len(), .shape, .dtype,
    .dim(), and [index] with an int, a slice, a list or an int64 tensor gives a uint8 tensor.
    """

    dtype = torch.uint8

    def __init__(self, path: str | Path, shape: tuple[int, int, int, int], rows: np.ndarray | None = None):
        self.path, self.file_shape = Path(path), tuple(int(s) for s in shape)
        self.rows = rows  # a view: which rows of the file, in order (None: all)
        self.row_bytes = int(np.prod(self.file_shape[1:]))
        self._fd, self._pid = None, None

    @property
    def shape(self) -> torch.Size:
        n = self.file_shape[0] if self.rows is None else len(self.rows)
        return torch.Size((n, *self.file_shape[1:]))

    def __len__(self) -> int:
        return self.shape[0]

    def dim(self) -> int:
        return 4

    def _file(self) -> int:
        if self._fd is None or self._pid != os.getpid():  # a forked child opens its own descriptor
            self._fd, self._pid = os.open(self.path, os.O_RDONLY), os.getpid()
        return self._fd

    def select(self, indices) -> "DiskImages":
        """A view of some rows (e.g. a subset of classes), read lazily like the whole."""
        idx = np.asarray(torch.as_tensor(indices, dtype=torch.int64))
        return DiskImages(self.path, self.file_shape, idx if self.rows is None else self.rows[idx])

    def __getitem__(self, index) -> torch.Tensor:
        n = len(self)
        if isinstance(index, int):
            return self[[index]][0]
        if isinstance(index, slice):
            idx = np.arange(n)[index]
        else:
            idx = np.asarray(torch.as_tensor(index, dtype=torch.int64)).reshape(-1)
            if idx.size and (idx.min() < -n or idx.max() >= n):
                raise IndexError(f"index out of range for {n} images")
            idx = idx % max(n, 1)
        file_rows = idx if self.rows is None else self.rows[idx]
        out = np.empty((len(file_rows), *self.file_shape[1:]), dtype=np.uint8)
        fd, size = self._file(), self.row_bytes
        for i, row in enumerate(file_rows.tolist()):
            if os.preadv(fd, [memoryview(out[i]).cast("B")], row * size) != size:
                raise DataError(f"{self.path} is shorter than its {self.file_shape[0]} images; delete it to rebuild the cache")
        return torch.from_numpy(out)

    def __repr__(self) -> str:
        return f"DiskImages({self.path}, shape={tuple(self.shape)})"

    def __del__(self):
        if self._fd is not None and self._pid == os.getpid():
            os.close(self._fd)


def cache_key(files: list[Path], root: Path, **settings) -> str:
    """Same files (names, sizes, modification times) and same decoding settings -> same key."""
    h = hashlib.sha256(json.dumps({"version": FORMAT_VERSION, **settings}, sort_keys=True).encode())
    for f in files:
        st = f.stat()
        h.update(f"{f.relative_to(root)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:24]


@contextmanager
def _locked(path: Path):
    """An exclusive lock on `path` (a lock file): one process builds a cache, the others wait for it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def open_or_build(key: str, shape: tuple[int, int, int], count: int, write_rows) -> tuple[DiskImages, dict]:
    """The cache for `key`, built first if missing. write_rows(f) decodes into the open file f, writing
    `shape`-sized uint8 rows (at most `count`), and returns a JSON-able dict of metadata with 'count' (rows
    written). Returns (images, metadata)."""
    folder = cache_root() / key
    with _locked(cache_root() / f"{key}.lock"):
        meta_path = folder / META_FILE
        if not meta_path.is_file():
            tmp = cache_root() / f".{key}.tmp-{os.getpid()}"
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            try:
                with open(tmp / IMAGES_FILE, "wb") as f:
                    meta = write_rows(f)
                (tmp / META_FILE).write_text(json.dumps({"shape": list(shape), **meta}))
                shutil.rmtree(folder, ignore_errors=True)  # a half-written cache from a killed build
                os.replace(tmp, folder)
            except OSError as e:
                shutil.rmtree(tmp, ignore_errors=True)
                raise DataError(f"cannot write the decoded-image cache in {cache_root()}: {e.strerror or e} "
                                f"(free some space, set CONDGAN_CACHE to another folder, or use data.cache=memory)") from None
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
    meta = json.loads(meta_path.read_text())
    images = DiskImages(folder / IMAGES_FILE, (meta["count"], *meta["shape"]))
    expected = meta["count"] * images.row_bytes
    if (folder / IMAGES_FILE).stat().st_size < expected:
        raise DataError(f"the decoded-image cache {folder} is incomplete; delete that folder to rebuild it")
    return images, meta
