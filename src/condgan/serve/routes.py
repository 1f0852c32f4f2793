"""What each API route answers: a checked request in, a Reply out, the model run under its lock.

    POST /api/generate     a model's fields, n, seed                  -> PNG grid, JSON or zip (answers.Result)
    POST /api/interpolate  a model's fields, seed_a, seed_b, steps    -> the seed-to-seed strip, as above
    POST /api/compare      two uploads, a and b                       -> {"similarity", "threshold", "same", ...}
    POST /api/search       an upload (query), a folder id, k          -> the k nearest images of that folder
    GET  /api/search-image ?model=M&folder=F&item=I                   -> one result image (folders.py)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from ..pipelines.latents import positions
from .answers import Result
from .folders import chosen, image_url, result_image
from .limits import Limits
from .request import HTTPError, check_keys, decode_image, expected, integer, parse_generate, parse_interpolate, pick_model
from .served import ServedModel

UPLOADS = {"/api/compare": 2}  # images in one request body (the others: at most 1)


@dataclass
class Reply:
    """A 200 answer: its bytes, content type and extra headers."""

    body: bytes
    ctype: str
    headers: dict = field(default_factory=dict)


def as_json(obj: dict, headers: dict | None = None) -> Reply:
    return Reply(json.dumps(obj).encode(), "application/json", headers or {})


def run(model: ServedModel, limits: Limits, call, *args):
    """`call(pipeline, *args)` under the model's lock (one inference at a time per model); wait at most busy_timeout."""
    if not model.lock.acquire(timeout=limits.busy_timeout):
        raise HTTPError(503, f"model {model.name!r} is busy; try again shortly")
    try:
        return call(model.pipeline, *args)
    finally:
        model.lock.release()


def generate(models: dict[str, ServedModel], limits: Limits, body) -> Reply:
    model, values, n, seed, fmt = parse_generate(body, models, limits)
    images = run(model, limits, model.kind.generate, values, n, seed).float().cpu()
    result = Result(model.name, model.pipeline.task, {"seed": seed, "n": n}, n, images, *_axes(model, values))
    return _images(result, fmt, f"{model.name}-seed{seed}", {"X-Condgan-Seed": str(seed)})


def interpolate(models: dict[str, ServedModel], limits: Limits, body) -> Reply:
    model, values, (seed_a, seed_b, steps), fmt = parse_interpolate(body, models, limits)
    images = run(model, limits, model.kind.interpolate, values, seed_a, seed_b, steps).float().cpu()
    draws = [{"t": round(t, 6)} for t in positions(steps).tolist()]
    result = Result(model.name, model.pipeline.task, {"seed_a": seed_a, "seed_b": seed_b, "steps": steps}, steps, images,
                    *_axes(model, values), strip=True, draws=draws)
    return _images(result, fmt, f"{model.name}-seed{seed_a}-to-{seed_b}", {})


def compare(models: dict[str, ServedModel], limits: Limits, body) -> Reply:
    model = pick_model(body, models, "compare")
    check_keys(body, ["model", "a", "b"], model)
    a, b = _upload(body, "a", model, limits), _upload(body, "b", model, limits)
    c = run(model, limits, model.kind.compare, a, b)
    return as_json({"model": model.name, "similarity": round(c.similarity, 6), "threshold": round(c.threshold, 6),
                    "same": bool(c.same), "verdict": c.verdict})


def search(models: dict[str, ServedModel], limits: Limits, body) -> Reply:
    model = pick_model(body, models, "search")
    check_keys(body, ["model", "query", "folder", "k"], model)
    folder_id, folder = chosen(model, body.get("folder"))
    k = integer(body.get("k", 8), "k", 1, limits.max_count)
    query = _upload(body, "query", model, limits)
    found = run(model, limits, lambda p: folder.index.nearest(model.kind.query(p, query), k))
    results = [{"rank": rank, "score": r["score"], "name": folder.index.names[r["index"]], "item": r["index"],
                "url": image_url(model, folder_id, r["index"])} for rank, r in enumerate(found, 1)]
    return as_json({"model": model.name, "folder": {"id": folder_id, "name": folder.name}, "k": k, "results": results})


def search_image(models: dict[str, ServedModel], limits: Limits, query: str) -> Reply:
    return Reply(result_image(models, query), "image/png")


POSTS = {"/api/generate": generate, "/api/interpolate": interpolate, "/api/compare": compare, "/api/search": search}


def _upload(body: dict, key: str, model: ServedModel, limits: Limits):
    """An uploaded image of a model that reads images (compare, search), decoded within the limits."""
    f = model.pipeline.spec[model.kind.output]
    if key not in body:
        raise HTTPError(400, f"missing {key!r}: {expected(key, f)}")
    return decode_image(body[key], key, f, limits)


def _axes(model: ServedModel, values: dict) -> tuple:
    """rows, columns and conditions of a Result: class fields by their class names."""
    return (_names(model, model.kind.rows, values), _names(model, model.kind.columns, values),
            {k: _names(model, k, values) or v for k, v in values.items()})


def _names(model: ServedModel, name: str | None, values: dict) -> list[str] | None:
    """The class names of a class field's values (None: no such field, or an image field)."""
    if name is None or not isinstance(values.get(name), list):
        return None
    return [model.pipeline.spec[name].class_names[i] for i in values[name]]


def _images(result: Result, fmt: str, stem: str, headers: dict) -> Reply:
    headers = {**headers, "X-Condgan-Count": str(len(result.images))}
    if fmt == "png":
        return Reply(result.grid(), "image/png", {**headers, "Content-Disposition": f'inline; filename="{stem}.png"'})
    if fmt == "zip":
        return Reply(result.zip_bytes(), "application/zip", {**headers, "Content-Disposition": f'attachment; filename="{stem}.zip"'})
    return as_json(result.to_json(), headers)
