"""A generate request read and checked against the model's fields, before any inference.

Every mistake is an HTTPError naming it (a 4xx answer); uploads are bounded in bytes and pixels before
they are decoded.
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


def parse_generate(body: dict, models: dict[str, ServedModel], limits: Limits) -> tuple[ServedModel, dict, int, int, str]:
    """Check a generate request against the model's fields; every mistake is an HTTPError naming it."""
    if not isinstance(body, dict):
        raise HTTPError(400, "the body must be a JSON object, e.g. {\"model\": \"NAME\", \"label\": \"CLASS\"}")
    name = body.get("model")
    if name is None and len(models) == 1:
        name = next(iter(models))
    if not isinstance(name, str):
        raise HTTPError(400, f"'model' must be one of: {', '.join(models)}")
    model = models.get(name)
    if model is None:
        raise HTTPError(404, f"no model named {name[:64]!r}; this server has: {', '.join(models)}")
    body = dict(body)
    if "labels" in body and "label" in model.conditions:  # plural alias, for a list of classes
        if "label" in body:
            raise HTTPError(400, "give 'label' or 'labels', not both")
        body["label"] = body.pop("labels")
    allowed = ["model", "n", "seed", "format", *model.conditions]
    unknown = [k for k in body if k not in allowed]
    if unknown:
        raise HTTPError(400, f"unknown key {str(unknown[0])[:40]!r} for model {name!r}; it takes: {', '.join(allowed)}")

    n = _integer(body.get("n", 8), "n", 1, limits.max_count)
    seed = _integer(body.get("seed", 0), "seed", 0, 2**32 - 1)
    fmt = body.get("format", "png")
    if fmt not in ("png", "json", "zip"):
        raise HTTPError(400, f"'format' must be \"png\" (a grid), \"json\" (base64 images) or \"zip\" (PNG files and "
                             f"request.json), not {str(fmt)[:20]!r}")

    values = {}
    for field_name in model.conditions:
        f = model.pipeline.spec[field_name]
        if field_name not in body:
            raise HTTPError(400, f"missing {field_name!r}: {_expected(field_name, f)}")
        if isinstance(f, ClassField):
            several = field_name in (model.kind.rows, model.kind.columns)
            values[field_name] = _classes(body[field_name], field_name, f, several, limits)
        elif isinstance(f, ImageField):
            values[field_name] = decode_image(body[field_name], field_name, f, limits)
    rows, columns = len(values.get(model.kind.rows, [None])), len(values.get(model.kind.columns, [None]))
    if n * rows * columns > limits.max_count:
        got = f"{n} × {rows}" + (f" × {columns}" if columns > 1 else "")
        raise HTTPError(400, f"n × number of labels must be at most {limits.max_count} (got {got} = {n * rows * columns})")
    return model, values, n, seed, fmt


def _integer(value, name: str, low: int, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise HTTPError(400, f"{name!r} must be an integer between {low} and {high}, got {json.dumps(value)[:40]}")
    return value


def _expected(name: str, f) -> str:
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
            raise HTTPError(400, f"{name!r} must be {_expected(name, f)}" + (", or a list of them" if multiple else ""))
        try:
            ids.append(resolve_class(item, list(f.class_names)))
        except UserError as e:
            raise HTTPError(400, f"{name!r}: {e}") from None
    return ids


def decode_image(value, name: str, f: ImageField, limits: Limits) -> Image.Image:
    """A client's base64 image, bounded in bytes and pixels before decoding; EXIF orientation applied;
    grey or RGB as the field is (16-bit scaled, transparency on white, as training data is read)."""
    if not isinstance(value, str):
        raise HTTPError(400, f"{name!r} must be {_expected(name, f)}")
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
