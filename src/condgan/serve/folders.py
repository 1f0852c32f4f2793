"""The folders a similarity model searches from the page (`condgan serve --search-folder DIR`), and their images by id.

Folders are named when the server starts, never by a request: a search picks one by the id (or the name)
that /api/models lists, and a result's image is fetched by its model, folder id and position in that
folder's index (GET /api/search-image?model=M&folder=F&item=I). The file is checked again to lie inside its
folder (a symbolic link or a tampered index cache cannot lead out of it), and it is sent as a PNG thumbnail
made from its pixels, never as the bytes on disk.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs

from ..errors import DataError, UserError
from ..search import list_images
from .request import HTTPError
from .served import ServedModel, name_and_path, unique

THUMBNAIL = 256  # pixels on the longer side of a result image, at most
_ID = re.compile(r"[0-9]{1,9}")


@dataclass
class SearchFolder:
    """A folder named at start: its name in the API, where it is, and one model's index of its images."""

    name: str
    root: Path  # resolved
    index: object  # search.SearchIndex: embeddings, and names relative to the folder


def index_folders(models: list[ServedModel], specs: list[str], say=print) -> None:
    """Index each `DIR` or `NAME=DIR` for every model that searches (cached: search.SearchIndex.of_folder)."""
    if not specs:
        return
    searching = [m for m in models if "search" in m.kind.tools]
    if not searching:
        served = "; ".join(f"{m.name!r} is a {m.kind.title}" for m in models)
        raise UserError(f"--search-folder is for similarity models (--task similarity), which search a folder for images "
                        f"like an upload; {served}")
    named: dict[str, Path] = {}
    for item in specs:
        name, path = name_and_path(item, "folder")
        list_images(path)  # missing, a file, or without images: one line, before any indexing
        named[unique(name, set(named))] = path
    for model in searching:
        for name, path in named.items():
            index = model.kind.index(model.pipeline, path)
            model.folders.append(SearchFolder(name, path.resolve(), index))
            how = "reused the cached" if getattr(index, "reused", False) else "built an"
            say(f"{model.name!r}: {how} index of {len(index)} images in {path} (folder {name!r})")


def chosen(model: ServedModel, value) -> tuple[int, SearchFolder]:
    """The folder a search request picks by id or name (the only one when it names none); never a path."""
    if not model.folders:
        raise HTTPError(400, f"model {model.name!r} has no folders to search: start condgan serve with "
                             f"--search-folder DIR (repeatable)")
    if value is None and len(model.folders) == 1:
        return 0, model.folders[0]
    for i, folder in enumerate(model.folders):
        if (isinstance(value, int) and not isinstance(value, bool) and value == i) or value == folder.name:
            return i, folder
    listed = ", ".join(f"{i} ({f.name})" for i, f in enumerate(model.folders))
    raise HTTPError(400, f"'folder' must be the id or name of a folder this server searches: {listed} "
                         f"(it never takes a path), not {str(value)[:60]!r}")


def image_url(model: ServedModel, folder: int, item: int) -> str:
    return f"/api/search-image?model={model.name}&folder={folder}&item={item}"


def result_image(models: dict[str, ServedModel], query: str) -> bytes:
    """The PNG thumbnail of the image that GET /api/search-image?model=M&folder=F&item=I names."""
    try:
        asked = parse_qs(query, strict_parsing=True, max_num_fields=3)
    except ValueError:
        asked = {}
    if sorted(asked) != ["folder", "item", "model"] or any(len(v) != 1 for v in asked.values()):
        raise HTTPError(400, "name a search result as ?model=NAME&folder=F&item=I (the ids /api/search answers with)")
    model = models.get(asked["model"][0])
    if model is None or not model.folders:
        raise HTTPError(404, f"no model named {asked['model'][0][:64]!r} searches folders on this server")
    folder_id, item = asked["folder"][0], asked["item"][0]
    if not (_ID.fullmatch(folder_id) and int(folder_id) < len(model.folders)):
        raise HTTPError(400, f"'folder' must be a folder id of model {model.name!r}: 0 to {len(model.folders) - 1}")
    folder = model.folders[int(folder_id)]
    if not (_ID.fullmatch(item) and int(item) < len(folder.index)):
        raise HTTPError(400, f"'item' must be a position in folder {folder.name!r}: 0 to {len(folder.index) - 1}")
    path = (folder.root / folder.index.names[int(item)]).resolve()
    if not path.is_relative_to(folder.root) or not path.is_file():
        raise HTTPError(404, f"item {item} of folder {folder.name!r} is not a file inside it (any more)")
    return _thumbnail(path, model.pipeline.spec[model.kind.output].channels, f"item {item} of folder {folder.name!r}")


def _thumbnail(path: Path, channels: int, shown: str) -> bytes:
    from PIL import Image

    from ..data.images import decode

    try:
        image = decode(path, channels)
    except DataError:
        raise HTTPError(404, f"{shown} can no longer be read as an image") from None
    image.thumbnail((THUMBNAIL, THUMBNAIL), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()
