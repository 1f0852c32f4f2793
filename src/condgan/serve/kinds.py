"""What the server needs to know about each kind of model: which fields the user gives, and the call.

Each task declares it (registry.Task.controls, a `Controls`); the page and the API are built from
these descriptions, never from the task's name: a class field of the pipeline's Spec becomes a dropdown
(API: a class name or index, or a list of them), an image field becomes an upload (API: a base64 image).
"""

from __future__ import annotations

from .. import registry
from ..conditions import ClassField, ImageField
from ..errors import UserError
from ..registry import Controls

Kind = Controls  # the name this module used before tasks declared their controls


def kind_of(pipeline, path) -> Controls:
    """The controls of a loaded pipeline's task, or a clear error for a task that is not served."""
    controls = registry.get(pipeline.task).controls
    if controls is None:
        served = [t.name for t in registry.tasks() if t.controls is not None]
        raise UserError(f"{path}: `condgan serve` does not know how to serve a {pipeline.task!r} model yet "
                        f"(it serves {', '.join(served)})")
    return controls


def describe_field(name: str, f, kind: Controls) -> dict:
    """A field as the page and API clients see it."""
    out = {"name": name, "kind": f.kind, "hint": kind.hints.get(name, "")}
    if isinstance(f, ClassField):
        out.update(class_names=list(f.class_names), multiple=name in (kind.rows, kind.columns))
        if name == kind.columns:
            out["columns"] = True  # several values: one grid column each (the rows field's: one row each)
    elif isinstance(f, ImageField):
        out.update(channels=f.channels, height=f.height, width=f.width)
    return out
