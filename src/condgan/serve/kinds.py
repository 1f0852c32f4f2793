"""What the server needs to know about each kind of model: which fields the user gives, and the call.

The page and the API are built from these descriptions, never from the model
kind: a class field of the pipeline's Spec becomes a dropdown (API: a class
name or index, or a list of them), an image field becomes an upload (API: a
base64 image). So a new pipeline plugs in with one `Kind` entry naming its
condition fields and saying how to call it, e.g. (sketches, not code that
exists today):

    KINDS["inpaint"] = Kind(
        conditions=lambda p: ["masked"],
        generate=lambda p, v, n, seed: p.fill(v["masked"], n=n, seed=seed))

`generate` receives the values already checked against the Spec: a class field
as a list of class indices (several only for the `rows` field: one grid row
per value), an image field as a decoded PIL image.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch

from ..conditions import ClassField, ImageField
from ..pipelines import Pipeline


@dataclass(frozen=True)
class Kind:
    """How to serve one pipeline class (keyed by its `task`)."""

    title: str  # shown on the page, e.g. "class-conditional generator"
    conditions: Callable[[Pipeline], list[str]]  # Spec field names the user supplies, in the page's order
    generate: Callable[[Pipeline, dict, int, int], torch.Tensor]  # (pipeline, values, n, seed) -> float images
    rows: str | None = None  # the class field that may take several values (one grid row each, n images per row)
    output: str = "image"  # the Spec field the model produces
    hints: dict[str, str] = field(default_factory=dict)  # a line of help per field, for the page


def _sample(p, values: dict, n: int, seed: int) -> torch.Tensor:
    return p.sample(values["label"], n=n, seed=seed)


def _like(p, values: dict, n: int, seed: int) -> torch.Tensor:
    return p.sample(like=values["exemplar"], n=n, seed=seed)


def _two_stage(p, values: dict, n: int, seed: int) -> torch.Tensor:
    """n images per label A row, all under the one label B chosen."""
    return p.sample(label_a=values["label_a"], label_b=values["label_b"][0], n=n, seed=seed)


def _translate(p, values: dict, n: int, seed: int) -> torch.Tensor:
    """n outputs (one noise draw each) of the uploaded source; per row label when the translator takes one."""
    rows = values.get("label", [None])
    source = p.as_sources(values["source"])  # (1, C, H, W), resized to the translator's size
    sources = source.expand(n * len(rows), -1, -1, -1)
    labels = [label for label in rows for _ in range(n)] if p.uses_label else None
    return p.translate(sources, seed=seed, labels=labels)


KINDS: dict[str, Kind] = {
    "cgan": Kind(title="class-conditional generator", conditions=lambda p: ["label"], rows="label", generate=_sample,
                 hints={"label": "the class to generate"}),
    "translate": Kind(title="image-to-image translator",
                      conditions=lambda p: ["source"] + (["label"] if p.uses_label else []), rows="label",
                      generate=_translate,
                      hints={"source": "the input image (a mask, edge map or sketch like the training sources); "
                                       "it is resized to the model's size",
                             "label": "the class the output should be"}),
    "two-stage": Kind(title="two labels, two stages (label A -> intermediate -> image with label B)",
                      conditions=lambda p: ["label_a", "label_b"], rows="label_a", generate=_two_stage,
                      hints={"label_a": "what to make (G1 draws its intermediate)",
                             "label_b": "how it looks (G2 renders the intermediate with it)"}),
    "exemplar": Kind(title="more like this one (exemplar-conditioned generator)", conditions=lambda p: ["exemplar"],
                     generate=_like, hints={"exemplar": "an image; the outputs resemble it and its nearest neighbours "
                                                        "in the data (it is resized to the model's size)"}),
}


def describe_field(name: str, f, kind: Kind) -> dict:
    """A field as the page and API clients see it."""
    out = {"name": name, "kind": f.kind, "hint": kind.hints.get(name, "")}
    if isinstance(f, ClassField):
        out.update(class_names=list(f.class_names), multiple=name == kind.rows)
    elif isinstance(f, ImageField):
        out.update(channels=f.channels, height=f.height, width=f.width)
    return out
