"""`condgan search`'s folder indexes: a changed file (size or modification time) is embedded again and only
it; the cache is bounded by age and by size, and the index in use stays."""

import os
import time

import numpy as np
import pytest
import torch
from PIL import Image

from condgan.conditions import ImageField, Spec
from condgan.errors import UserError
from condgan.models.embedder import Embedder as EmbedderNet
from condgan.pipelines import Embedder
from condgan.search import SearchIndex, cache


@pytest.fixture
def embedder(tmp_path, monkeypatch):
    monkeypatch.setenv("CONDGAN_CACHE", str(tmp_path / "cache"))
    torch.manual_seed(0)
    return Embedder(EmbedderNet(1, 8, 4).eval(), Spec(image=ImageField(1, 12, 12)))


def _save(path, seed: int, flat: bool = False) -> None:
    rng = np.random.default_rng(seed)
    pixels = np.full((12, 12), 40 * seed % 250, np.uint8) if flat else rng.integers(0, 255, (12, 12), dtype=np.uint8)
    Image.fromarray(pixels).save(path)


def test_a_changed_file_is_embedded_again_and_only_it(embedder, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(6):
        _save(folder / f"{i}.png", i)
    first = SearchIndex.of_folder(embedder, folder)
    assert first.embedded == 6 and not first.reused
    assert SearchIndex.of_folder(embedder, folder).reused  # nothing changed: nothing embedded
    _save(folder / "2.png", 99)  # new content (and a new modification time)
    index = SearchIndex.of_folder(embedder, folder)
    assert index.embedded == 1 and len(index) == 6
    two = index.names.index("2.png")
    assert torch.allclose(index.embeddings[two], embedder.embed(np.array(Image.open(folder / "2.png")))[0], atol=1e-6)
    assert torch.equal(index.embeddings[:two], first.embeddings[:two])  # the others reused as they were
    before = os.stat(folder / "3.png")
    _save(folder / "3.png", 3, flat=True)  # a different size, the modification time put back: size alone says so
    os.utime(folder / "3.png", ns=(before.st_atime_ns, before.st_mtime_ns))
    assert os.stat(folder / "3.png").st_size != before.st_size
    assert SearchIndex.of_folder(embedder, folder).embedded == 1
    os.utime(folder / "4.png", ns=(before.st_atime_ns, before.st_mtime_ns + 10**9))  # touched only: mtime says so
    assert SearchIndex.of_folder(embedder, folder).embedded == 1
    (folder / "5.png").unlink()
    index = SearchIndex.of_folder(embedder, folder)
    assert (index.embedded, index.removed, len(index)) == (0, 1, 5) and "5.png" not in index.names


def test_the_cache_is_bounded_by_age_and_size(embedder, tmp_path, monkeypatch):
    root = cache.cache_root()
    root.mkdir(parents=True)
    now = time.time()
    for name, days_unused, size in (("old.pt", 40, 10), ("a.pt", 3, 600_000), ("b.pt", 2, 600_000), ("c.pt", 1, 600_000),
                                    (".c.pt.tmp-1", 2, 10), (".d.pt.tmp-2", 0.1, 10), ("notes.txt", 90, 10)):
        (root / name).write_bytes(b"x" * size)
        os.utime(root / name, (now - days_unused * 86400,) * 2)
    monkeypatch.setenv("CONDGAN_SEARCH_CACHE_MB", "1.5")  # room for the index in use and two of the others
    folder = tmp_path / "photos"
    folder.mkdir()
    _save(folder / "0.png", 0)
    SearchIndex.of_folder(embedder, folder)
    left = sorted(f.name for f in root.iterdir())
    in_use = [n for n in left if n.endswith(".pt") and n not in ("b.pt", "c.pt")]
    # unused for 40 days: gone; then the least recently used (a) until 1.5 MB; a killed write's leftover after a
    # day; the index in use stays, and what is not an index is not the cache's to remove
    assert left == sorted([".d.pt.tmp-2", "b.pt", "c.pt", "notes.txt", *in_use]) and len(in_use) == 1
    assert cache.prune(root, root / in_use[0], 0, 1e9) and [f.name for f in root.glob("*.pt")] == in_use  # 0 MB: only it


def test_cache_limits_are_checked(monkeypatch):
    monkeypatch.setenv("CONDGAN_SEARCH_CACHE_DAYS", "a week")
    with pytest.raises(UserError, match="CONDGAN_SEARCH_CACHE_DAYS must be a number, 0 or more, not 'a week'"):
        cache.limits()
    monkeypatch.setenv("CONDGAN_SEARCH_CACHE_DAYS", "7")
    monkeypatch.setenv("CONDGAN_SEARCH_CACHE_MB", "-1")
    with pytest.raises(UserError, match="CONDGAN_SEARCH_CACHE_MB"):
        cache.limits()
    monkeypatch.setenv("CONDGAN_SEARCH_CACHE_MB", "")
    assert cache.limits() == (cache.DEFAULT_MB * 1024**2, 7 * 86400)
