"""`condgan serve` with a similarity model: POST /api/compare, POST /api/search over the folders named at start,
and the result images by id (GET /api/search-image), never by a path from the request."""

import io
import json
import os

import numpy as np
import pytest
from PIL import Image

import condgan
from condgan.cli import main
from condgan.serve.app import load_models
from condgan.serve.folders import index_folders
from serve_helpers import V2, gallery, png_b64, request, running, similarity_models, tiny_runs  # noqa: F401 (fixtures)


@pytest.fixture(scope="module")
def server(similarity_models):
    with running(list(similarity_models)) as s:
        yield s


def pixels(path) -> np.ndarray:
    return np.array(Image.open(path))


def test_the_listing_offers_compare_and_search_with_the_folders_names_only(server, gallery):
    sim, bare = json.loads(request(server, "GET", "/api/models")[2])["models"]
    assert sim["tools"] == ["compare", "search"] and sim["fields"] == [] and "output" not in sim
    assert sim["input"] == {"channels": 1, "height": 28, "width": 28}
    assert sim["folders"] == [{"id": 0, "name": "shoes", "images": 8}] and bare["folders"] == []
    assert str(gallery) not in json.dumps(sim), "no host path in the listing"


def test_compare_gives_the_pipelines_score_and_verdict(server, gallery):
    a, b = gallery / "bars" / "000.png", gallery / "posts" / "002.png"
    status, _, body = request(server, "POST", "/api/compare", {"model": "sim", "a": png_b64(pixels(a)), "b": png_b64(pixels(b))})
    assert status == 200, body
    answer = json.loads(body)
    want = condgan.load(V2 / "export-similarity").compare(Image.open(a), Image.open(b))
    assert answer["similarity"] == pytest.approx(want.similarity, abs=1e-5) and answer["threshold"] == pytest.approx(want.threshold)
    assert answer["same"] == want.same and answer["verdict"] == ("similar" if want.same else "not similar")
    same = json.loads(request(server, "POST", "/api/compare", {"model": "sim", "a": png_b64(pixels(a)), "b": png_b64(pixels(a))})[2])
    assert same["similarity"] == pytest.approx(1.0, abs=1e-5) and same["same"] is True and same["verdict"] == "similar"


def test_search_lists_the_nearest_by_id_and_serves_them(server, gallery, tmp_path, monkeypatch):
    monkeypatch.setenv("CONDGAN_CACHE", str(tmp_path / "cache"))  # for the pipeline's own search below
    query = gallery / "posts" / "001.png"
    status, _, body = request(server, "POST", "/api/search", {"model": "sim", "query": png_b64(pixels(query)), "folder": 0, "k": 3})
    assert status == 200, body
    answer = json.loads(body)
    assert answer["folder"] == {"id": 0, "name": "shoes"} and answer["k"] == 3
    results = answer["results"]
    assert [r["rank"] for r in results] == [1, 2, 3] and results[0]["name"] == "posts/001.png"
    assert results[0]["score"] == pytest.approx(1.0, abs=1e-4), "the query's own file is its nearest"
    want = condgan.load(V2 / "export-similarity").search(Image.open(query), k=3, within=gallery)
    assert [(r["name"], r["score"]) for r in results] == [(os.path.relpath(w["path"], gallery), pytest.approx(w["score"], abs=1e-5))
                                                          for w in want], "the same nearest images as condgan search"
    for r in results:  # each one is served by the ids in its url, as the pixels of that very file
        assert r["url"] == f"/api/search-image?model=sim&folder=0&item={r['item']}"
        status, headers, png = request(server, "GET", r["url"])
        assert status == 200 and headers["Content-Type"] == "image/png"
        assert np.array_equal(np.array(Image.open(io.BytesIO(png))), pixels(gallery / r["name"]))
    by_name = json.loads(request(server, "POST", "/api/search", {"model": "sim", "query": png_b64(pixels(query)),
                                                                 "folder": "shoes", "k": 3})[2])
    assert by_name["results"] == results, "a folder is picked by its id or its listed name"


@pytest.mark.parametrize("body, status, message", [
    ({"folder": "GALLERY"}, 400, "'folder' must be the id or name of a folder this server searches: 0 (shoes) (it never takes a path)"),
    ({"folder": "../shoes"}, 400, "it never takes a path"),
    ({"folder": 3}, 400, "'folder' must be the id or name of a folder"),
    ({"path": "/etc/passwd"}, 400, "unknown key 'path' for model 'sim'; it takes: model, query, folder, k"),
    ({"k": 0}, 400, "'k' must be an integer between 1 and 256, got 0"),
    ({"query": None}, 400, "missing 'query'"),
    ({"model": "bare"}, 400, "model 'bare' has no folders to search: start condgan serve with --search-folder DIR"),
])
def test_search_refuses_paths_and_bad_requests(server, gallery, body, status, message):
    body = {"model": "sim", "query": png_b64(pixels(gallery / "bars" / "000.png")), **body}
    if "GALLERY" in body.values():
        body["folder"] = str(gallery)  # the folder's own path: still not a name the server gave
    if body["query"] is None:
        del body["query"]
    got, _, answer = request(server, "POST", "/api/search", body)
    assert got == status and message in json.loads(answer)["error"]


@pytest.mark.parametrize("query, status, message", [
    ("model=sim&folder=0&item=../../../etc/passwd", 400, "'item' must be a position in folder 'shoes': 0 to 7"),
    ("model=sim&folder=0&item=8", 400, "'item' must be a position in folder 'shoes': 0 to 7"),
    ("model=sim&folder=/etc&item=0", 400, "'folder' must be a folder id of model 'sim': 0 to 0"),
    ("model=sim&path=/etc/passwd", 400, "name a search result as ?model=NAME&folder=F&item=I"),
    ("model=sim&folder=0&item=1&item=2", 400, "name a search result as"),
    ("model=bare&folder=0&item=0", 404, "no model named 'bare' searches folders on this server"),
])
def test_result_images_are_named_by_ids_only(server, query, status, message):
    got, _, answer = request(server, "GET", f"/api/search-image?{query}")
    assert got == status and message in json.loads(answer)["error"]


def test_a_link_out_of_the_folder_is_not_served(tmp_path, monkeypatch):
    monkeypatch.setenv("CONDGAN_CACHE", str(tmp_path / "cache"))
    outside = tmp_path / "private.png"
    Image.fromarray(np.full((28, 28), 200, np.uint8)).save(outside)
    folder = tmp_path / "pictures"
    folder.mkdir()
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(folder / "a.png")
    (folder / "b.png").symlink_to(outside)
    (sim,) = load_models([f"sim={V2 / 'export-similarity'}"], say=lambda *_: None)
    index_folders([sim], [f"pics={folder}"], say=lambda *_: None)
    with running([sim]) as server:
        assert request(server, "GET", "/api/search-image?model=sim&folder=0&item=0")[0] == 200
        status, _, body = request(server, "GET", "/api/search-image?model=sim&folder=0&item=1")
    assert status == 404 and json.loads(body)["error"] == "item 1 of folder 'pics' is not a file inside it (any more)"


def test_compare_takes_two_uploads_and_refuses_bad_ones(server):
    grey = png_b64(np.zeros((40, 30), np.uint8))
    assert request(server, "POST", "/api/compare", {"a": grey, "b": grey})[0] == 400, "two similarity models: name one"
    cases = [({"model": "sim", "a": grey}, 400, "missing 'b': an image"),
             ({"model": "sim", "a": grey, "b": "not base64!"}, 400, "'b' is not valid base64"),
             ({"model": "sim", "a": grey, "b": grey, "n": 2}, 400, "unknown key 'n' for model 'sim'; it takes: model, a, b"),
             ({"model": "sim", "label": "boot"}, 400, "unknown key 'label'")]
    for body, status, message in cases:
        got, _, answer = request(server, "POST", "/api/compare", body)
        assert got == status and message in json.loads(answer)["error"], answer
    for route in ("/api/generate", "/api/interpolate"):
        got, _, answer = request(server, "POST", route, {"model": "sim"})
        assert got == 400 and "it answers /api/compare, /api/search" in json.loads(answer)["error"]
    big = "A" * (4 * 2**20 // 3 * 4)  # 4 MiB each: two fit in a compare body, whose limit is twice a generate's
    got, _, answer = request(server, "POST", "/api/compare", {"model": "sim", "a": big, "b": big})
    assert got == 400 and "'a' is not an image this server reads" in json.loads(answer)["error"]


def test_search_folder_flag_needs_a_similarity_model(tiny_runs, gallery, capsys):
    assert main(["serve", str(tiny_runs["shoes"]), "--search-folder", str(gallery)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["condgan: error: --search-folder is for similarity models (--task similarity), which search a folder "
                   "for images like an upload; 'shoes' is a class-conditional generator"]
    assert main(["serve", str(V2 / "export-similarity"), "--search-folder", str(gallery / "nowhere")]) == 2
    assert capsys.readouterr().err.strip().endswith("nowhere does not exist")
