"""What a generate or strip request is answered with: a PNG grid, JSON of base64 images, or a zip of PNG files.

The images come from a task's `generate` ordered by row value, then column value, then the n draws
(the order of TwoStage.sample: label A-major). The grid shows one row per row value (n per row), or, with
several column values, n rows per row value and one column per column value (as TwoStage.save_grid).
A seed-to-seed strip is one row of its steps per row value.
"""

from __future__ import annotations

import base64
import io
import json
import math
import zipfile
from dataclasses import dataclass

import torch
from PIL import Image
from torchvision.utils import make_grid

from ..data.imageset import to_uint8


def png_bytes(image_uint8: torch.Tensor) -> bytes:
    """One (C, H, W) uint8 image as PNG."""
    arr = image_uint8.permute(1, 2, 0).numpy()
    buf = io.BytesIO()
    Image.fromarray(arr[..., 0] if arr.shape[2] == 1 else arr).save(buf, format="PNG")
    return buf.getvalue()


def grid_bytes(images: torch.Tensor, n: int, rows: int, columns: int = 1, strip: bool = False) -> bytes:
    """A grid PNG of images ordered (row, column, draw): one row per row value, or a near-square block
    for a single one (unless a strip: one row, always); with several column values, n rows per row value and
    one column per column value."""
    if columns > 1:
        images = images.view(rows, columns, n, *images.shape[1:]).transpose(1, 2).reshape(images.shape)
        nrow = columns
    else:
        nrow = n if rows > 1 or strip else math.ceil(math.sqrt(n))
    return png_bytes(to_uint8(make_grid(images.clamp(-1, 1), nrow=nrow, padding=2, pad_value=1.0)))  # white padding


@dataclass
class Result:
    """The images of one request and what they show."""

    model: str
    kind: str
    asked: dict  # what the request chose besides its conditions: {"seed", "n"}, or a strip's {"seed_a", "seed_b", "steps"}
    n: int  # images per condition: the draws, or a strip's steps
    images: torch.Tensor  # float in [-1, 1], ordered (row value, column value, draw)
    rows: list[str] | None  # the row field's class names, one per row value (None: no row field)
    columns: list[str] | None  # the column field's class names (None: no column field)
    conditions: dict  # field -> class names, or an uploaded PIL image
    strip: bool = False  # a seed-to-seed strip: one row of n per row value, however few rows
    draws: list[dict] | None = None  # what tells a condition's n images apart (a strip's {"t"}), one per draw

    def grid(self) -> bytes:
        return grid_bytes(self.images, self.n, len(self.rows or [None]), len(self.columns or [None]), self.strip)

    def labels(self) -> list[dict]:
        """What each image shows: its row's class ("label"), with a column field its column's ("column"), and
        in a strip where it sits between the two seeds ("t")."""
        out = []
        for row in self.rows or [None]:
            for column in self.columns or [None]:
                out += [{"label": row} | ({"column": column} if self.columns else {}) | (self.draws[i] if self.draws else {})
                        for i in range(self.n)]
        return out

    def pngs(self) -> list[bytes]:
        return [png_bytes(im) for im in to_uint8(self.images)]

    def to_json(self) -> dict:
        c, h, w = self.images.shape[1:]
        answer = {"model": self.model, "kind": self.kind, **self.asked, "rows": self.rows}
        if self.columns is not None:
            answer["columns"] = self.columns
        if self.strip:
            answer["strip"] = True
        return {**answer, "channels": c, "height": h, "width": w,
                "images": [{**label, "png": base64.b64encode(png).decode()} for label, png in zip(self.labels(), self.pngs())],
                "grid": base64.b64encode(self.grid()).decode()}

    def zip_bytes(self) -> bytes:
        """image_000.png ... in the JSON answer's order, grid.png, each upload as FIELD.png, and request.json
        (what was asked and what each file shows). Fixed timestamps: the same request gives the same bytes."""
        files = {f"image_{i:03d}.png": png for i, png in enumerate(self.pngs())}
        conditions = {}
        for name, value in self.conditions.items():
            if isinstance(value, Image.Image):
                buf = io.BytesIO()
                value.save(buf, format="PNG")
                files[f"{name}.png"] = buf.getvalue()
                conditions[name] = f"{name}.png"
            else:
                conditions[name] = value
        request = {"model": self.model, "kind": self.kind, **self.asked, **conditions,
                   "images": [{"file": file, **label} for file, label in zip(files, self.labels())]}
        files["grid.png"] = self.grid()
        files["request.json"] = (json.dumps(request, indent=1) + "\n").encode()
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as archive:
            for name, data in files.items():
                info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_STORED if name.endswith(".png") else zipfile.ZIP_DEFLATED
                archive.writestr(info, data)
        return buf.getvalue()
