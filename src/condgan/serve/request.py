"""A request read and checked before any inference: its body, its model, and a generate or strip request's fields.

Every mistake is an HTTPError naming it (a 4xx answer); bodies are bounded before they are read, and
uploads in bytes and pixels before they are decoded.
"""

from __future__ import annotations

import base64
import binascii
import io
import json

from PIL import Image, ImageOps, UnidentifiedImageError

from ..conditions import ClassField, ImageField
from ..data.images import normalise_mode
from ..data.imageset import resolve_class
from ..errors import UserError
from .limits import Limits
from .served import ServedModel

UPLOAD_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF")  # what Pillow may try to decode from a client


class HTTPError(Exception):
    """A request the server refuses: its status and a message for the client."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def read_json(headers, rfile, limits: Limits, uploads: int = 1) -> dict | list:
    """A request's JSON body, its size checked from Content-Length before a byte is read (room for `uploads` images)."""
    ctype = (headers.get("Content-Type") or "").split(";")[0].strip().lower()
    if ctype != "application/json":
        raise HTTPError(415, "send the request as JSON (Content-Type: application/json)")
    if "chunked" in (headers.get("Transfer-Encoding") or "").lower():
        raise HTTPError(411, "send a Content-Length (chunked bodies are not accepted)")
    try:
        length = int(headers.get("Content-Length") or "")
    except ValueError:
        raise HTTPError(411, "send a Content-Length header") from None
    if length < 0:
        raise HTTPError(400, "Content-Length must not be negative")
    if length > limits.body_bytes(uploads):
        raise HTTPError(413, f"the body is {length:,} bytes; the limit is {limits.body_bytes(uploads):,}")
    raw = rfile.read(length)
    if len(raw) < length:
        raise ConnectionError("body cut short")
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, ValueError) as e:
        raise HTTPError(400, f"the body is not valid JSON ({str(e)[:80]})") from None
    except RecursionError:
        raise HTTPError(400, "the body is not a request: its JSON is nested too deeply") from None


def pick_model(body, models: dict[str, ServedModel], tool: str) -> ServedModel:
    """The model a request names (the only one offering `tool` when it names none), if it offers `tool`."""
    if not isinstance(body, dict):
        raise HTTPError(400, "the body must be a JSON object, e.g. {\"model\": \"NAME\", \"label\": \"CLASS\"}")
    offering = [name for name, m in models.items() if tool in m.kind.tools]
    name = body.get("model")
    if name is None and len(offering) == 1:
        name = offering[0]
    if not isinstance(name, str):
        raise HTTPError(400, f"'model' must be one of: {', '.join(offering or models)}")
    model = models.get(name)
    if model is None:
        raise HTTPError(404, f"no model named {name[:64]!r}; this server has: {', '.join(models)}")
    if tool not in model.kind.tools:
        routes = ", ".join(f"/api/{t}" for t in model.kind.tools)
        raise HTTPError(400, f"model {name!r} does not {TOOL_VERBS[tool]}; it answers {routes}")
    return model


TOOL_VERBS = {"generate": "generate images", "interpolate": "interpolate between seeds", "compare": "compare images",
              "search": "search folders"}


def check_keys(body: dict, allowed: list[str], model: ServedModel) -> None:
    """Refuse a key the route does not take (a typo must not fall back to a default without a word)."""
    unknown = [k for k in body if k not in allowed]
    if unknown:
        raise HTTPError(400, f"unknown key {str(unknown[0])[:40]!r} for model {model.name!r}; it takes: {', '.join(allowed)}")


def parse_generate(body: dict, models: dict[str, ServedModel], limits: Limits) -> tuple[ServedModel, dict, int, int, str]:
    """Check a generate request against the model's fields; every mistake is an HTTPError naming it."""
    model = pick_model(body, models, "generate")
    body = _plural(body, model)
    check_keys(body, ["model", "n", "seed", "format", *model.conditions], model)
    n = integer(body.get("n", 8), "n", 1, limits.max_count)
    seed = integer(body.get("seed", 0), "seed", 0, MAX_SEED)
    fmt = _format(body)
    values = _conditions(body, model, limits)
    _check_count(n, values, model, limits, "n")
    return model, values, n, seed, fmt


def parse_interpolate(body: dict, models: dict[str, ServedModel], limits: Limits) -> tuple[ServedModel, dict, tuple, str]:
    """Check a seed-to-seed strip request: the model's fields, seed_a, seed_b and steps (2 to limits.max_steps)."""
    model = pick_model(body, models, "interpolate")
    body = _plural(body, model)
    check_keys(body, ["model", "seed_a", "seed_b", "steps", "format", *model.conditions], model)
    missing = next((key for key in ("seed_a", "seed_b") if key not in body), None)
    if missing:
        raise HTTPError(400, f"missing {missing!r}: an integer between 0 and {MAX_SEED} (the strip's "
                             f"{'first' if missing == 'seed_a' else 'last'} image is that seed's)")
    seeds = tuple(integer(body[key], key, 0, MAX_SEED) for key in ("seed_a", "seed_b"))
    steps = integer(body.get("steps", 8), "steps", 2, limits.max_steps)
    fmt = _format(body)
    values = _conditions(body, model, limits)
    _check_count(steps, values, model, limits, "steps")
    return model, values, (*seeds, steps), fmt


MAX_SEED = 2**32 - 1


def _plural(body: dict, model: ServedModel) -> dict:
    body = dict(body)
    if "labels" in body and "label" in model.conditions:  # plural alias, for a list of classes
        if "label" in body:
            raise HTTPError(400, "give 'label' or 'labels', not both")
        body["label"] = body.pop("labels")
    return body


def _format(body: dict) -> str:
    fmt = body.get("format", "png")
    if fmt not in ("png", "json", "zip"):
        raise HTTPError(400, f"'format' must be \"png\" (a grid), \"json\" (base64 images) or \"zip\" (PNG files and "
                             f"request.json), not {str(fmt)[:20]!r}")
    return fmt


def _conditions(body: dict, model: ServedModel, limits: Limits) -> dict:
    values = {}
    for field_name in model.conditions:
        f = model.pipeline.spec[field_name]
        if field_name not in body:
            raise HTTPError(400, f"missing {field_name!r}: {expected(field_name, f)}")
        if isinstance(f, ClassField):
            several = field_name in (model.kind.rows, model.kind.columns)
            values[field_name] = _classes(body[field_name], field_name, f, several, limits)
        elif isinstance(f, ImageField):
            values[field_name] = decode_image(body[field_name], field_name, f, limits)
    return values


def _check_count(n: int, values: dict, model: ServedModel, limits: Limits, name: str) -> None:
    rows, columns = len(values.get(model.kind.rows, [None])), len(values.get(model.kind.columns, [None]))
    if n * rows * columns > limits.max_count:
        got = f"{n} × {rows}" + (f" × {columns}" if columns > 1 else "")
        raise HTTPError(400, f"{name} × number of labels must be at most {limits.max_count} (got {got} = {n * rows * columns})")


def integer(value, name: str, low: int, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise HTTPError(400, f"{name!r} must be an integer between {low} and {high}, got {json.dumps(value)[:40]}")
    return value


def expected(name: str, f) -> str:
    if isinstance(f, ClassField):
        names = ", ".join(f.class_names[:20]) + (", ..." if f.num_classes > 20 else "")
        return f"a class name or index (one of: {names})"
    return f"an image ({', '.join(UPLOAD_FORMATS)}) as a base64 string or data: URL"


def _classes(value, name: str, f: ClassField, multiple: bool, limits: Limits) -> list[int]:
    items = value if isinstance(value, list) and multiple else [value]
    if not items or len(items) > limits.max_count:
        raise HTTPError(400, f"{name!r} must list 1 to {limits.max_count} classes")
    ids = []
    for item in items:
        if not isinstance(item, (str, int)) or isinstance(item, bool) or (isinstance(item, str) and len(item) > 200):
            raise HTTPError(400, f"{name!r} must be {expected(name, f)}" + (", or a list of them" if multiple else ""))
        try:
            ids.append(resolve_class(item, list(f.class_names)))
        except UserError as e:
            raise HTTPError(400, f"{name!r}: {e}") from None
    return ids


def decode_image(value, name: str, f: ImageField, limits: Limits) -> Image.Image:
    """A client's base64 image, bounded in bytes and pixels before decoding; EXIF orientation applied;
    grey or RGB as the field is (16-bit scaled, transparency on white, as training data is read)."""
    if not isinstance(value, str):
        raise HTTPError(400, f"{name!r} must be {expected(name, f)}")
    if value.startswith("data:"):
        value = value.partition(",")[2]
    if len(value) > limits.max_upload_bytes * 4 // 3 + 4:
        raise HTTPError(413, f"{name!r} is larger than the upload limit of {limits.max_upload_bytes:,} bytes")
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise HTTPError(400, f"{name!r} is not valid base64") from None
    if len(raw) > limits.max_upload_bytes:
        raise HTTPError(413, f"{name!r} is larger than the upload limit of {limits.max_upload_bytes:,} bytes")
    too_many = HTTPError(413, f"{name!r} has more than {limits.max_upload_pixels:,} pixels (the limit)")
    try:
        image = Image.open(io.BytesIO(raw), formats=UPLOAD_FORMATS)  # reads the header only
        if image.width * image.height > limits.max_upload_pixels:
            raise too_many
        return normalise_mode(ImageOps.exif_transpose(image), 1 if f.channels == 1 else 3)
    except HTTPError:
        raise
    except Image.DecompressionBombError:
        raise too_many from None
    except UnidentifiedImageError:
        raise HTTPError(400, f"{name!r} is not an image this server reads ({', '.join(UPLOAD_FORMATS)})") from None
    except Exception:  # Pillow raises many kinds of error for damaged files: all of them are the client's file
        raise HTTPError(400, f"{name!r} is a damaged or truncated image") from None
