"""Field specs: what each named field of a batch is.

A batch is a dict of named tensors (`image`, `label`, `source`, `embedding`, ...). A
dataset declares a `Spec` saying, for each field, whether it is a class field
(int64 labels, with the class names), an image field (uint8 on disk, float
in [-1, 1] in a batch; channels and size) or a vector field (float, dim). Class names travel in the spec, so
`--label sandal` works wherever a model goes.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import CheckpointError
from .untrusted import printable


@dataclass(frozen=True)
class ClassField:
    class_names: tuple[str, ...]

    kind = "class"

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "class_names": list(self.class_names)}


@dataclass(frozen=True)
class ImageField:
    channels: int
    height: int
    width: int

    kind = "image"

    @property
    def size(self) -> tuple[int, int]:
        return self.height, self.width

    def to_dict(self) -> dict:
        return {"kind": self.kind, "channels": self.channels, "height": self.height, "width": self.width}


@dataclass(frozen=True)
class VectorField:
    """A fixed-length float vector per item: an exemplar's embedding that conditions a generator."""

    dim: int

    kind = "vector"

    def to_dict(self) -> dict:
        return {"kind": self.kind, "dim": self.dim}


Field = ClassField | ImageField | VectorField


class Spec(dict):
    """An ordered mapping field name -> ClassField | ImageField."""

    def class_fields(self) -> list[str]:
        return [k for k, f in self.items() if isinstance(f, ClassField)]

    def image_fields(self) -> list[str]:
        return [k for k, f in self.items() if isinstance(f, ImageField)]

    def to_dict(self) -> dict:
        return {name: f.to_dict() for name, f in self.items()}

    @classmethod
    def from_dict(cls, raw) -> "Spec":
        """Parse a spec read from a checkpoint or manifest; a malformed one is a CheckpointError."""
        if not isinstance(raw, dict) or not raw:
            raise CheckpointError("the field spec must be a non-empty mapping of field names")
        spec = cls()
        for name, f in raw.items():
            try:
                if f["kind"] == "class":
                    names = f["class_names"]
                    if not isinstance(names, list) or not all(isinstance(n, str) and 0 < len(n) <= 200 for n in names) \
                            or not 1 <= len(names) <= 100_000:
                        raise ValueError("class names must be a list of strings of 1 to 200 characters")
                    if len(set(names)) != len(names):
                        raise ValueError("class names must be distinct")
                    spec[name] = ClassField(tuple(names))
                elif f["kind"] == "image":
                    dims = [f["channels"], f["height"], f["width"]]
                    if not all(isinstance(d, int) and not isinstance(d, bool) for d in dims) or not 1 <= dims[0] <= 4 \
                            or not all(1 <= d <= 4096 for d in dims[1:]):
                        raise ValueError("channels must be 1 to 4 and height/width 1 to 4096 pixels")
                    spec[name] = ImageField(*dims)
                elif f["kind"] == "vector":
                    if not isinstance(f["dim"], int) or isinstance(f["dim"], bool) or not 1 <= f["dim"] <= 65536:
                        raise ValueError("a vector's dim must be an integer from 1 to 65536")
                    spec[name] = VectorField(f["dim"])
                else:
                    raise ValueError(f"unknown kind {f['kind']!r}")
            except KeyError as e:
                raise CheckpointError(_missing(name, e.args[0])) from None
            except (TypeError, ValueError) as e:
                raise CheckpointError(f"field {printable(name, 40)!r} of the spec is malformed ({e})") from None
        return spec


# What each key of a field needs, for "field 'label' of the spec lacks ..." (a hand-edited manifest, say)
_KEYS = {"kind": "'kind': class, image or vector",
         "class_names": "its class names: 'class_names' must list them, distinct strings in label order",
         "channels": "'channels': 1 to 4", "height": "'height': 1 to 4096 pixels", "width": "'width': 1 to 4096 pixels",
         "dim": "'dim': the vector's length"}


def _missing(name, key) -> str:
    what = _KEYS.get(key, printable(repr(key), 40))
    return (f"field {printable(name, 40)!r} of the spec lacks {what} (was the file edited?); "
            f"export the run again with `condgan export`")


def class_spec(class_names, channels: int, size: int) -> Spec:
    """The spec of a class-conditional dataset: an `image` and its `label`."""
    return Spec(image=ImageField(channels, size, size), label=ClassField(tuple(class_names)))
