"""`condgan serve`: the API in-process (a server on a free port in a thread), its limits and its bad-request table."""

import base64
import io
import json
import socket
import os
import signal
import threading
import time
import zipfile
from collections import namedtuple

import numpy as np
import pytest
import torch
from PIL import Image

import condgan
from condgan.cli import main
from condgan.conditions import ClassField, ImageField, Spec
from condgan.models.unet import UNetGenerator
from condgan.pipelines import Translator
from condgan.serve.app import ServedModel, load_models
from condgan.registry import get as get_task
from condgan.serve.kinds import Kind
from serve_helpers import V2, a_mask, a_two_stage, png_b64, request, running, served, tiny_runs  # noqa: F401 (fixtures)


def decode_png(data: bytes) -> np.ndarray:
    return np.array(Image.open(io.BytesIO(data)))


def test_models_list_each_models_fields_and_limits(served):
    status, headers, body = request(served, "GET", "/api/models")
    assert status == 200 and headers["Content-Type"] == "application/json"
    listing = json.loads(body)
    shoes, edges = listing["models"]
    assert (shoes["name"], shoes["kind"], edges["name"], edges["kind"]) == ("shoes", "cgan", "edges", "translate")
    assert shoes["fields"] == [{"name": "label", "kind": "class", "class_names": ["boot", "sandal", "sneaker"],
                                "multiple": True, "hint": "the class to generate"}]
    assert [(f["name"], f["kind"], f["channels"], f["height"]) for f in edges["fields"]] == [("source", "image", 1, 16)]
    assert shoes["output"] == {"channels": 1, "height": 16, "width": 16}
    assert listing["limits"]["max_count"] == 256 and listing["limits"]["max_upload_bytes"] == 4 * 2**20


def test_healthz_and_the_page_with_no_outside_resource(served):
    assert request(served, "GET", "/healthz")[::2] == (200, b'{"status": "ok", "models": 2}')
    status, headers, page = request(served, "GET", "/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert b'src="/static/app.js"' in page and b'href="/static/style.css"' in page
    assert "script-src 'self'" in headers["Content-Security-Policy"] and headers["X-Content-Type-Options"] == "nosniff"
    for path in ("/", "/static/app.js", "/static/similar.js", "/static/style.css"):
        status, _, text = request(served, "GET", path)
        assert status == 200 and b"http://" not in text and b"https://" not in text, f"{path} refers to another site"
    for script in ("/static/app.js", "/static/similar.js"):
        text = request(served, "GET", script)[2]
        assert b"innerHTML" not in text and b"textContent" in text, "text from data must go through textContent"
    assert request(served, "HEAD", "/healthz")[::2] == (200, b"")


def test_png_grid_is_deterministic_for_a_seed(served):
    body = {"model": "shoes", "label": "sandal", "n": 4, "seed": 7}
    status, headers, first = request(served, "POST", "/api/generate", body)
    assert status == 200 and headers["Content-Type"] == "image/png" and headers["X-Condgan-Seed"] == "7"
    assert request(served, "POST", "/api/generate", body)[2] == first, "same seed, same grid"
    assert request(served, "POST", "/api/generate", {**body, "seed": 8})[2] != first, "another seed, another grid"
    assert decode_png(first).shape == (2 + 2 * 18, 2 + 2 * 18, 3), "4 images of 16 px: a 2×2 grid with 2 px padding"
    rows = decode_png(request(served, "POST", "/api/generate", {**body, "label": ["boot", "sneaker"], "n": 3})[2])
    assert rows.shape[:2] == (2 + 2 * 18, 2 + 3 * 18), "one row per label, n per row"


def test_json_images_are_the_pipelines_own(served, tiny_runs):
    status, _, body = request(served, "POST", "/api/generate",
                              {"model": "shoes", "labels": ["boot", 2], "n": 3, "seed": 5, "format": "json"})
    assert status == 200
    answer = json.loads(body)
    assert answer["rows"] == ["boot", "sneaker"] and answer["seed"] == 5 and len(answer["images"]) == 6
    assert [im["label"] for im in answer["images"]] == ["boot"] * 3 + ["sneaker"] * 3
    got = np.stack([decode_png(base64.b64decode(im["png"])) for im in answer["images"]])
    want = condgan.load(tiny_runs["shoes"]).sample(["boot", "sneaker"], n=3, seed=5, output_type="uint8")
    assert np.array_equal(got, want[:, 0].numpy())
    grid = decode_png(base64.b64decode(answer["grid"]))
    assert grid.shape == (38, 56, 3) and (grid[:2] == 255).all(), "2 rows of 3, white 2 px padding"
    assert np.array_equal(grid[20:36, 38:54, 0], got[5]), "row 2, column 3 of the grid is the 6th image"


def test_translator_takes_an_upload_and_matches_translate(served, tiny_runs):
    mask = a_mask()
    for upload in (png_b64(mask), "data:image/png;base64," + png_b64(mask), png_b64(np.stack([mask] * 3, -1), "JPEG")):
        status, _, body = request(served, "POST", "/api/generate",
                                  {"model": "edges", "source": upload, "n": 2, "seed": 3, "format": "json"})
        assert status == 200, body
    got = np.stack([decode_png(base64.b64decode(im["png"])) for im in json.loads(request(
        served, "POST", "/api/generate", {"model": "edges", "source": png_b64(mask), "n": 2, "seed": 3, "format": "json"})[2])["images"]])
    want = condgan.load(tiny_runs["edges"]).translate(np.stack([mask, mask]), seed=3, output_type="uint8")
    assert np.array_equal(got, want[:, 0].numpy())
    big = np.kron(mask, np.ones((5, 3), dtype=np.uint8))  # 80×48: resized to the translator's 16×16
    status, _, single = request(served, "POST", "/api/generate", {"model": "edges", "source": png_b64(big), "n": 1})
    assert status == 200 and decode_png(single).shape[:2] == (16, 16)


def test_a_translator_with_a_label_gets_an_upload_and_a_dropdown():
    net = UNetGenerator(1, 1, 16, 16, z_dim=2, base_width=4, num_classes=3)
    spec = Spec(source=ImageField(1, 16, 16), image=ImageField(1, 16, 16), label=ClassField(("red", "green", "blue")))
    model = ServedModel("coloured", "memory", Translator(net, spec), get_task("translate").controls)
    with running([model]) as server:
        fields = json.loads(request(server, "GET", "/api/models")[2])["models"][0]["fields"]
        assert [(f["name"], f["kind"]) for f in fields] == [("source", "image"), ("label", "class")]
        status, _, body = request(server, "POST", "/api/generate",
                                  {"source": png_b64(a_mask()), "label": ["red", "blue"], "n": 2, "format": "json"})
        assert status == 200 and [im["label"] for im in json.loads(body)["images"]] == ["red", "red", "blue", "blue"]
        status, _, body = request(server, "POST", "/api/generate", {"source": png_b64(a_mask())})
        assert status == 400 and "missing 'label'" in json.loads(body)["error"]


def test_zip_holds_each_image_the_grid_and_the_request(served):
    body = {"model": "shoes", "labels": ["boot", "sneaker"], "n": 2, "seed": 5}
    status, headers, data = request(served, "POST", "/api/generate", {**body, "format": "zip"})
    assert status == 200 and headers["Content-Type"] == "application/zip"
    assert headers["Content-Disposition"] == 'attachment; filename="shoes-seed5.zip"'
    assert request(served, "POST", "/api/generate", {**body, "format": "zip"})[2] == data, "same request, same bytes"
    answer = json.loads(request(served, "POST", "/api/generate", {**body, "format": "json"})[2])
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    names = [f"image_{i:03d}.png" for i in range(4)]
    assert list(files) == [*names, "grid.png", "request.json"]
    assert [files[name] for name in names] == [base64.b64decode(im["png"]) for im in answer["images"]]
    assert files["grid.png"] == base64.b64decode(answer["grid"])
    assert json.loads(files["request.json"]) == {
        "model": "shoes", "kind": "cgan", "seed": 5, "n": 2, "label": ["boot", "sneaker"],
        "images": [{"file": name, "label": label} for name, label in zip(names, ["boot", "boot", "sneaker", "sneaker"])]}
    status, _, data = request(served, "POST", "/api/generate", {"model": "edges", "source": png_b64(a_mask()), "n": 1, "format": "zip"})
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert status == 200 and archive.namelist() == ["image_000.png", "source.png", "grid.png", "request.json"]
        assert json.loads(archive.read("request.json"))["source"] == "source.png"
        assert np.array_equal(decode_png(archive.read("source.png")), a_mask()), "the upload as the model read it"
    status, _, data = request(served, "POST", "/api/generate", {**body, "n": 200, "format": "zip"})
    assert status == 400 and "at most 256" in json.loads(data)["error"], "the PNG limits hold for a zip"


def test_a_two_stage_model_shows_one_column_per_label_b():
    pipe = a_two_stage()
    with running([ServedModel("colours", "memory", pipe, get_task("two-stage").controls)]) as server:
        fields = json.loads(request(server, "GET", "/api/models")[2])["models"][0]["fields"]
        assert [(f["name"], f["multiple"], f.get("columns", False)) for f in fields] == [("label_a", True, False),
                                                                                          ("label_b", True, True)]
        body = {"label_a": ["bar", "post"], "label_b": ["red", "green", "blue"], "n": 2, "seed": 4}
        answer = json.loads(request(server, "POST", "/api/generate", {**body, "format": "json"})[2])
        status, _, grid = request(server, "POST", "/api/generate", body)
        status_big, _, big = request(server, "POST", "/api/generate", {**body, "n": 50})
    assert answer["rows"] == ["bar", "post"] and answer["columns"] == ["red", "green", "blue"]
    got = np.stack([decode_png(base64.b64decode(im["png"])) for im in answer["images"]])
    want = pipe.sample(label_a=["bar", "post"], label_b=["red", "green", "blue"], n=2, seed=4, output_type="uint8")
    assert np.array_equal(got, want.permute(0, 2, 3, 1).numpy())
    assert [(im["label"], im["column"]) for im in answer["images"][4:8]] == [("bar", "blue")] * 2 + [("post", "red")] * 2
    grid = decode_png(grid)
    assert status == 200 and grid.shape == (2 + 4 * 18, 2 + 3 * 18, 3), "rows: 2 labels A × n = 2, columns: 3 labels B"
    for a, i, b in ((0, 1, 2), (1, 0, 1), (1, 1, 0)):  # grid row a·n+i, column b: draw i of the pair (a, b)
        r, c = a * 2 + i, b
        assert np.array_equal(grid[2 + r * 18: 18 + r * 18, 2 + c * 18: 18 + c * 18], got[(a * 3 + b) * 2 + i])
    assert status_big == 400 and "(got 50 × 2 × 3 = 300)" in json.loads(big)["error"]


def test_the_latent_path_starts_and_ends_at_the_seeds_own_noise():
    from condgan.pipelines.latents import seed_path

    gen = condgan.load(V2 / "export-cgan")
    z_a, z_b = gen.noise(1, 3)[0], gen.noise(1, 11)[0]
    path = seed_path(z_a, z_b, 7)
    assert torch.equal(path[0], z_a) and torch.equal(path[-1], z_b), "the ends are the seeds' noise, bit for bit"
    wide = torch.randn(2, 64, generator=torch.Generator().manual_seed(0))  # nearly orthogonal in 64 dimensions
    middle, straight = seed_path(wide[0], wide[1], 3)[1].norm(), wide.mean(0).norm()
    assert straight < 0.8 * wide.norm(dim=1).min() and middle > 0.95 * wide.norm(dim=1).min(), \
        "slerp keeps the middle at the ends' radius; the straight line's midpoint falls inside the shell"
    assert torch.equal(seed_path(z_a, z_a, 3), z_a.expand(3, -1)), "one seed twice: no division by zero"


def test_a_seed_to_seed_strip_ends_at_each_seeds_plain_image(served, tiny_runs):
    body = {"model": "shoes", "label": "sandal", "seed_a": 3, "seed_b": 11, "steps": 5}
    status, _, raw = request(served, "POST", "/api/interpolate", {**body, "format": "json"})
    assert status == 200, raw
    answer = json.loads(raw)
    assert (answer["seed_a"], answer["seed_b"], answer["steps"], answer["strip"]) == (3, 11, 5, True)
    assert [im["t"] for im in answer["images"]] == [0.0, 0.25, 0.5, 0.75, 1.0]
    strip = np.stack([decode_png(base64.b64decode(im["png"])) for im in answer["images"]]).astype(int)
    plain = {}
    for seed in (3, 11):  # the plain generation of that class, one image, through the API
        status, _, raw = request(served, "POST", "/api/generate", {"model": "shoes", "label": "sandal", "n": 1,
                                                                   "seed": seed, "format": "json"})
        plain[seed] = decode_png(base64.b64decode(json.loads(raw)["images"][0]["png"])).astype(int)
    # equal pixels, but for float rounding: the strip runs as one batch of 5, plain generation as a batch of 1
    for end, seed in ((strip[0], 3), (strip[-1], 11)):
        assert np.abs(end - plain[seed]).max() <= 1 and (end == plain[seed]).mean() > 0.99
    assert np.abs(plain[3] - plain[11]).mean() > 5, "the two seeds' images differ: the check above means something"
    want = condgan.load(tiny_runs["shoes"]).interpolate("sandal", 3, 11, steps=5, output_type="uint8")
    assert np.array_equal(strip, want[:, 0].numpy()), "the API's strip is the pipeline's"

    grid = decode_png(request(served, "POST", "/api/interpolate", {**body, "label": ["boot", "sneaker"]})[2])
    assert grid.shape[:2] == (2 + 2 * 18, 2 + 5 * 18), "one strip (row) per class, one column per step"
    status, headers, data = request(served, "POST", "/api/interpolate", {**body, "format": "zip"})
    assert status == 200 and headers["Content-Disposition"] == 'attachment; filename="shoes-seed3-to-11.zip"'
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        asked = json.loads(archive.read("request.json"))
        assert len(archive.namelist()) == 5 + 2 and archive.read("image_004.png") == base64.b64decode(answer["images"][4]["png"])
    assert {k: asked[k] for k in ("seed_a", "seed_b", "steps", "label")} == {"seed_a": 3, "seed_b": 11, "steps": 5,
                                                                              "label": ["sandal"]}
    assert asked["images"][2] == {"file": "image_002.png", "label": "sandal", "t": 0.5}


def test_concurrent_requests_get_their_own_images(served, tiny_runs):
    gen = condgan.load(tiny_runs["shoes"])
    seeds = list(range(100, 116))
    results = {}

    def client(seed):
        status, _, body = request(served, "POST", "/api/generate",
                                  {"model": "shoes", "label": "boot", "n": 8, "seed": seed, "format": "json"})
        results[seed] = (status, [decode_png(base64.b64decode(im["png"])) for im in json.loads(body)["images"]])

    threads = [threading.Thread(target=client, args=(s,)) for s in seeds]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for seed in seeds:
        status, images = results[seed]
        assert status == 200 and np.array_equal(np.stack(images), gen.sample("boot", n=8, seed=seed, output_type="uint8")[:, 0].numpy())


def test_a_busy_model_answers_503_after_the_wait(tiny_runs):
    (model,) = load_models([str(tiny_runs["shoes"])], say=lambda *_: None)
    with running([model], busy_timeout=0.2) as server, model.lock:  # someone else is using the model
        status, _, body = request(server, "POST", "/api/generate", {"label": "boot"})
    assert status == 503 and "busy" in json.loads(body)["error"]


Case = namedtuple("Case", "name method path body headers status message")
_MASK = png_b64(a_mask())
_BIG = Image.new("1", (3000, 3000))
_buf = io.BytesIO()
_BIG.save(_buf, format="PNG")
_HUGE_PIXELS = base64.b64encode(_buf.getvalue()).decode()
_TRUNCATED = base64.b64encode(base64.b64decode(png_b64(np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8)))[:300]).decode()
JSON = {"Content-Type": "application/json"}

BAD_REQUESTS = [
    Case("body is not JSON", "POST", "/api/generate", b"{model: shoes", JSON, 400, "the body is not valid JSON"),
    Case("JSON nested 100,000 deep", "POST", "/api/generate", b"[" * 100_000, JSON, 400, "its JSON is nested too deeply"),
    Case("body is a JSON list", "POST", "/api/generate", [1, 2], None, 400, "the body must be a JSON object"),
    Case("unknown model", "POST", "/api/generate", {"model": "nope", "label": "boot"}, None, 404, "no model named 'nope'; this server has: shoes, edges"),
    Case("no model named (two served)", "POST", "/api/generate", {"label": "boot"}, None, 400, "'model' must be one of: shoes, edges"),
    Case("unknown class", "POST", "/api/generate", {"model": "shoes", "label": "unicorn"}, None, 400, "unknown class 'unicorn'; known classes: boot, sandal, sneaker"),
    Case("class index out of range", "POST", "/api/generate", {"model": "shoes", "label": 7}, None, 400, "label 7 is out of range"),
    Case("class of the wrong type", "POST", "/api/generate", {"model": "shoes", "label": {"a": 1}}, None, 400, "'label' must be a class name or index"),
    Case("missing class", "POST", "/api/generate", {"model": "shoes"}, None, 400, "missing 'label'"),
    Case("empty list of classes", "POST", "/api/generate", {"model": "shoes", "label": []}, None, 400, "'label' must list 1 to 256 classes"),
    Case("label and labels", "POST", "/api/generate", {"model": "shoes", "label": "boot", "labels": ["boot"]}, None, 400, "give 'label' or 'labels', not both"),
    Case("n = 0", "POST", "/api/generate", {"model": "shoes", "label": "boot", "n": 0}, None, 400, "'n' must be an integer between 1 and 256, got 0"),
    Case("n = 1000", "POST", "/api/generate", {"model": "shoes", "label": "boot", "n": 1000}, None, 400, "'n' must be an integer between 1 and 256, got 1000"),
    Case("n is a string", "POST", "/api/generate", {"model": "shoes", "label": "boot", "n": "4"}, None, 400, "'n' must be an integer"),
    Case("n × labels > 256", "POST", "/api/generate", {"model": "shoes", "label": ["boot", "sandal", "sneaker"], "n": 100}, None, 400, "at most 256 (got 100 × 3 = 300)"),
    Case("negative seed", "POST", "/api/generate", {"model": "shoes", "label": "boot", "seed": -1}, None, 400, "'seed' must be an integer between 0 and 4294967295"),
    Case("unknown format", "POST", "/api/generate", {"model": "shoes", "label": "boot", "format": "gif"}, None, 400, "'format' must be \"png\""),
    Case("unknown key (a typo)", "POST", "/api/generate", {"model": "edges", "image": _MASK}, None, 400, "unknown key 'image' for model 'edges'; it takes: model, n, seed, format, source"),
    Case("missing upload", "POST", "/api/generate", {"model": "edges"}, None, 400, "missing 'source': an image"),
    Case("upload is not a string", "POST", "/api/generate", {"model": "edges", "source": 12}, None, 400, "'source' must be an image"),
    Case("upload is not base64", "POST", "/api/generate", {"model": "edges", "source": "%%%not base64%%%"}, None, 400, "'source' is not valid base64"),
    Case("upload is not an image", "POST", "/api/generate", {"model": "edges", "source": base64.b64encode(b"hello, I am text").decode()}, None, 400, "'source' is not an image this server reads"),
    Case("upload is a truncated PNG", "POST", "/api/generate", {"model": "edges", "source": _TRUNCATED}, None, 400, "'source' is a damaged or truncated image"),
    Case("upload of 4 MiB + 3 kB", "POST", "/api/generate", {"model": "edges", "source": "A" * ((4 * 2**20 + 3000) // 3 * 4)}, None, 413, "'source' is larger than the upload limit of 4,194,304 bytes"),
    Case("too many pixels (3000×3000 PNG, 5 kB)", "POST", "/api/generate", {"model": "edges", "source": _HUGE_PIXELS}, None, 413, "'source' has more than 4,194,304 pixels"),
    Case("body over the limit (Content-Length 1 GB)", "POST", "/api/generate", None, {**JSON, "Content-Length": "1000000000"}, 413, "the body is 1,000,000,000 bytes; the limit is"),
    Case("not JSON (form post)", "POST", "/api/generate", b"model=shoes", {"Content-Type": "application/x-www-form-urlencoded"}, 415, "send the request as JSON"),
    Case("no Content-Length (chunked)", "POST", "/api/generate", None, {**JSON, "Transfer-Encoding": "chunked"}, 411, "send a Content-Length"),
    Case("strip of 1 step", "POST", "/api/interpolate", {"model": "shoes", "label": "boot", "seed_a": 0, "seed_b": 1, "steps": 1}, None, 400, "'steps' must be an integer between 2 and 64, got 1"),
    Case("strip of 65 steps", "POST", "/api/interpolate", {"model": "shoes", "label": "boot", "seed_a": 0, "seed_b": 1, "steps": 65}, None, 400, "'steps' must be an integer between 2 and 64, got 65"),
    Case("strip without seed_b", "POST", "/api/interpolate", {"model": "shoes", "label": "boot", "seed_a": 0}, None, 400, "missing 'seed_b': an integer between 0 and 4294967295"),
    Case("strip with n (a generate key)", "POST", "/api/interpolate", {"model": "shoes", "label": "boot", "seed_a": 0, "seed_b": 1, "n": 4}, None, 400, "unknown key 'n' for model 'shoes'; it takes: model, seed_a, seed_b, steps, format, label"),
    Case("strip of a translator", "POST", "/api/interpolate", {"model": "edges", "source": _MASK, "seed_a": 0, "seed_b": 1}, None, 400, "model 'edges' does not interpolate between seeds; it answers /api/generate"),
    Case("GET on the generate route", "GET", "/api/generate", None, None, 405, "/api/generate takes POST, not GET"),
    Case("POST on the models route", "POST", "/api/models", {}, None, 405, "/api/models takes GET, not POST"),
    Case("DELETE", "DELETE", "/healthz", None, None, 405, "/healthz takes GET, not DELETE"),
    Case("unknown path", "GET", "/admin", None, None, 404, "no such page '/admin'"),
    Case("path traversal", "GET", "/static/../../etc/passwd", None, None, 404, "no such page"),
    Case("unknown method", "BREW", "/", None, None, 501, "Not Implemented: Unsupported method ('BREW')"),
    Case("malformed request line", "RAW", "/", b"GET /a b HTTP/1.1\r\n\r\n", None, 400, "Bad Request: Bad request syntax ('GET /a b HTTP/1.1')"),
]


def send(server, case: Case):
    if case.method != "RAW":
        return request(server, case.method, case.path, case.body, case.headers)
    with socket.create_connection(server.server_address[:2], timeout=10) as s:
        s.sendall(case.body)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), {}, body


@pytest.mark.parametrize("case", BAD_REQUESTS, ids=[c.name for c in BAD_REQUESTS])
def test_bad_requests_get_a_4xx_json_message(served, case):
    status, headers, body = send(served, case)
    assert status == case.status, body
    answer = json.loads(body)
    assert case.message in answer["error"] and b"Traceback" not in body
    assert request(served, "GET", "/healthz")[0] == 200, "the server must survive it"


def test_a_bug_is_a_generic_500_and_a_logged_traceback(tiny_runs, capfd):
    (model,) = load_models([str(tiny_runs["shoes"])], say=lambda *_: None)
    def broken(*args):
        raise RuntimeError("secret internals")

    model.kind = Kind(title="broken", conditions=lambda p: ["label"], generate=broken)
    with running([model]) as server:
        status, _, body = request(server, "POST", "/api/generate", {"label": "boot"})
    assert status == 500 and json.loads(body) == {"error": "internal server error (the server log has the details)"}
    err = capfd.readouterr().err
    assert "Traceback" in err and "secret internals" in err


def test_silent_clients_are_dropped_and_connections_are_bounded(tiny_runs):
    models = load_models([str(tiny_runs["shoes"])], say=lambda *_: None)
    with running(models, timeout=0.5, max_connections=1) as server:
        idle = socket.create_connection(server.server_address[:2], timeout=10)  # says nothing, holds the only slot
        time.sleep(0.1)
        status, _, body = request(server, "GET", "/healthz")
        assert status == 503 and "too many open connections" in json.loads(body)["error"]
        started = time.monotonic()
        assert idle.recv(1) == b"", "the silent connection must be closed by the server"
        assert time.monotonic() - started < 5
        idle.close()
        time.sleep(0.1)
        assert request(server, "GET", "/healthz")[0] == 200, "the slot is free again"


def test_model_names_and_load_errors(tiny_runs, tmp_path, capsys):
    models = load_models([str(tiny_runs["shoes"]), f"boots={tiny_runs['shoes']}", str(tiny_runs["shoes"])], say=lambda *_: None)
    assert [m.name for m in models] == ["shoes", "boots", "shoes-2"]
    assert main(["serve", str(tmp_path / "nowhere")]) == 2
    assert "nowhere does not exist" in capsys.readouterr().err
    assert main(["serve", f"bad name={tiny_runs['shoes']}"]) == 2
    assert "model name 'bad name'" in capsys.readouterr().err
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        assert main(["serve", str(tiny_runs["shoes"]), "--port", str(taken.getsockname()[1])]) == 2
    assert "cannot listen on 127.0.0.1:" in capsys.readouterr().err


def test_the_serve_command_serves_until_sigterm(tiny_runs, capsys):
    """The command itself, in this process: it answers, and SIGTERM stops it cleanly (exit 0, handler restored)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    answered = []

    def client():
        # SIGTERM only once it has answered: the handler is installed before serving starts, so a signal sent
        # earlier (model loading is slow on a busy machine) would meet the old handler and never stop the server
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            try:
                answered.append(request(("127.0.0.1", port), "GET", "/healthz")[0])
                break
            except OSError:
                time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGTERM)

    before = signal.getsignal(signal.SIGTERM)
    thread = threading.Thread(target=client)
    thread.start()
    assert main(["serve", str(tiny_runs["edges"]), "--port", str(port), "--quiet"]) == 0
    thread.join(10)
    assert answered == [200] and signal.getsignal(signal.SIGTERM) is before
    out = capsys.readouterr().out
    assert f"serving 1 model(s) at http://127.0.0.1:{port}/" in out and "stopped" in out

