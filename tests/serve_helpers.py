"""Shared by the serving tests: two tiny trained runs (trained once per session) and a server in a thread."""

import base64
import http.client
import io
import json
import threading
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from condgan.config import load_config
from condgan.serve.app import load_models, make_server
from condgan.serve.folders import index_folders
from condgan.training import train
from conftest import tiny_overrides, tiny_translate_overrides, write_folders, write_pairs

V2 = Path(__file__).parent / "fixtures" / "v2"  # one run and one export of each task (fixtures/v2/README.md)


@pytest.fixture(scope="session")
def tiny_runs(tmp_path_factory):
    """{'shoes': a class-conditional run (boot/sandal/sneaker), 'edges': a translator run}, 2 steps each."""
    root = tmp_path_factory.mktemp("serve")
    train(load_config(None, tiny_overrides(write_folders(root / "shoes-data"), steps=2)), root / "shoes", quiet=True)
    train(load_config(None, tiny_translate_overrides(write_pairs(root / "pairs"), steps=2)), root / "edges", quiet=True)
    return {"shoes": root / "shoes", "edges": root / "edges"}


@pytest.fixture(scope="session")
def gallery(tmp_path_factory):
    """A folder to search: 8 distinct 28 px grey images in two sub-folders (bars/000.png ... posts/003.png)."""
    return write_folders(tmp_path_factory.mktemp("search") / "shoes", classes=("bars", "posts"), per_class=4, size=28)


@pytest.fixture(scope="session")
def similarity_models(gallery, tmp_path_factory):
    """('sim', 'bare'): the v2 similarity export twice, 'sim' searching `gallery` (indexed into a temporary
    cache, as --search-folder does at start), 'bare' with no folder."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CONDGAN_CACHE", str(tmp_path_factory.mktemp("cache")))
        sim, bare = load_models([f"sim={V2 / 'export-similarity'}", f"bare={V2 / 'export-similarity'}"], say=lambda *_: None)
        index_folders([sim], [str(gallery)], say=lambda *_: None)
    return sim, bare


@contextmanager
def running(models, **limits):
    """A server on a free loopback port, serving in a thread; yields it (server.url, server.server_address)."""
    from condgan.serve.limits import Limits

    server = make_server(models, "127.0.0.1", 0, Limits(**limits), quiet=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture(scope="session")
def served(tiny_runs):
    """One server for the session with both tiny models (names 'shoes' and 'edges')."""
    with running(load_models([str(tiny_runs["shoes"]), str(tiny_runs["edges"])], say=lambda *_: None)) as server:
        yield server


def request(server, method: str, path: str, body=None, headers: dict | None = None):
    """(status, headers, body bytes) from a server (or a (host, port)); a dict or list body is sent as JSON."""
    host, port = getattr(server, "server_address", server)[:2]
    conn = http.client.HTTPConnection(host, port, timeout=30)
    headers = dict(headers or {})
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
        headers.setdefault("Content-Type", "application/json")
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def png_b64(array: np.ndarray, fmt: str = "PNG") -> str:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format=fmt)
    return base64.b64encode(buf.getvalue()).decode()


def a_mask(size: int = 16) -> np.ndarray:
    mask = np.zeros((size, size), dtype=np.uint8)
    mask[size // 4: size // 2] = 255
    return mask


def a_two_stage():
    """An untrained two-stage pipeline built in memory: labels A bar, post; labels B red, green, blue; 16 px."""
    from condgan.conditions import ClassField, ImageField, Spec
    from condgan.models.resnet import ResNetGenerator
    from condgan.models.unet import UNetGenerator
    from condgan.pipelines import TwoStage

    spec = Spec(image=ImageField(3, 16, 16), mask=ImageField(1, 16, 16), label_a=ClassField(("bar", "post")),
                label_b=ClassField(("red", "green", "blue")))
    g1 = ResNetGenerator(num_classes=2, z_dim=4, channels=1, image_size=16, width=4)
    return TwoStage(g1, UNetGenerator(1, 3, 16, 16, z_dim=2, base_width=4, num_classes=3), spec)
