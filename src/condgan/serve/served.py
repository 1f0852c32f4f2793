"""The models a `condgan serve` process holds: each loaded once, with its name in the API and its lock."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UserError
from .kinds import Kind, describe_field, kind_of


@dataclass
class ServedModel:
    """A loaded pipeline, its name in the API, how to drive it, and the lock that serialises its inference."""

    name: str
    source: str
    pipeline: object
    kind: Kind
    lock: threading.Lock = field(default_factory=threading.Lock)
    folders: list = field(default_factory=list)  # folders.SearchFolder: what its Search tab searches (--search-folder)

    @property
    def conditions(self) -> list[str]:
        return self.kind.conditions(self.pipeline)

    def describe(self) -> dict:
        """The model as /api/models lists it: never its path, nor its folders' (no host details)."""
        spec, image = self.pipeline.spec, self.pipeline.spec[self.kind.output]
        size = {"channels": image.channels, "height": image.height, "width": image.width}
        out = {"name": self.name, "kind": self.pipeline.task, "title": self.kind.title, "tools": self.kind.tools,
               "fields": [describe_field(name, spec[name], self.kind) for name in self.conditions],
               "output" if self.kind.generate else "input": size}
        if "search" in self.kind.tools:
            out["folders"] = [{"id": i, "name": f.name, "images": len(f.index)} for i, f in enumerate(self.folders)]
        return out


NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def load_models(specs: list[str], device="auto", say=print) -> list[ServedModel]:
    """Load each `PATH` or `NAME=PATH` once. A model's name is NAME, else the folder's (or file's) name."""
    from ..api import load

    models: list[ServedModel] = []
    for item in specs:
        name, path = name_and_path(item)
        pipeline = load(path, device=device)
        kind = kind_of(pipeline, path)
        name = unique(name, {m.name for m in models})
        models.append(ServedModel(name, str(path), pipeline, kind))
        say(f"loaded {name!r}: {kind.title} from {path}")
    return models


def name_and_path(item: str, what: str = "model") -> tuple[str, Path]:
    """NAME and PATH of `NAME=PATH` (unless a path by that spelling exists), else the file's or folder's name."""
    name, sep, rest = item.partition("=")
    if sep and not Path(item).exists():
        if not NAME_RE.fullmatch(name):
            raise UserError(f"{what} name {name[:70]!r} in {item[:120]!r}: use letters, digits, '.', '_' or '-' "
                            "(at most 64, starting with a letter or digit)")
        return name, Path(rest)
    path = Path(item)
    base = path.resolve().stem if path.is_file() else path.resolve().name
    return (re.sub(r"[^A-Za-z0-9._-]", "-", base).strip("-._")[:64] or what), path


def unique(name: str, taken: set[str]) -> str:
    """`name`, or the first of name-2, name-3, ... not taken."""
    return name if name not in taken else next(f"{name}-{i}" for i in range(2, len(taken) + 3) if f"{name}-{i}" not in taken)
