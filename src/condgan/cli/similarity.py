"""`condgan compare` and `condgan search`: using a trained embedder (a run of --task similarity)."""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from ..errors import UserError
from ..pipelines import read_user_image
from ..untrusted import printable
from .common import add_device_argument, check_writable, load_on_device, say_device


def load_embedder(args: argparse.Namespace):
    from ..pipelines import Embedder

    model = load_on_device(args, say=False)  # said once the inputs are read: a mistake in them is the only line
    if not isinstance(model, Embedder):
        raise UserError(f"{args.run} is a {model.task} model; compare and search need a run of --task similarity")
    return model


def add_similarity_commands(sub) -> None:
    c = sub.add_parser("compare", help="how similar two images are, by a similarity run (score and verdict)",
                       description="Print the cosine similarity of two images' embeddings (1 = the same to the "
                       "network, 0 = unrelated) and the verdict at the threshold the run learned.")
    c.add_argument("run", help="run directory, checkpoint (.pt) or export of --task similarity")
    c.add_argument("a", help="first image file")
    c.add_argument("b", help="second image file")
    add_device_argument(c)
    c.set_defaults(func=cmd_compare)

    s = sub.add_parser("search", help="find the images most like a query image, in a folder or the run's data",
                       description="List the K images most similar to QUERY (best first, with scores) and draw "
                       "them: query | nearest. A folder is indexed once: embeddings are kept in $CONDGAN_CACHE/search "
                       "(default ~/.cache/condgan/search), one file per folder and embedder; a file added or changed "
                       "(size or modification time) is embedded again, a removed one dropped. The cache is bounded: "
                       "indexes unused for CONDGAN_SEARCH_CACHE_DAYS days (default 30) are removed, then the least "
                       "recently used until the rest fit in CONDGAN_SEARCH_CACHE_MB megabytes (default 1024); the "
                       "index in use always stays.")
    s.add_argument("run", help="run directory, checkpoint (.pt) or export of --task similarity")
    s.add_argument("query", help="the query image file")
    s.add_argument("--in", dest="folder", metavar="FOLDER", help="folder of images to search (sub-folders included); "
                   "default: the run's own training images")
    s.add_argument("--k", type=int, default=8, help="how many to list and draw (default 8)")
    s.add_argument("--out", default="search.png", help="picture of query | nearest (default search.png)")
    add_device_argument(s)
    s.set_defaults(func=cmd_search)


def cmd_compare(args: argparse.Namespace) -> int:
    model = load_embedder(args)
    field = model.spec["image"]
    a, b = read_user_image(args.a, field, "image"), read_user_image(args.b, field, "image")
    say_device(args, model.device)
    c = model.compare(a, b)
    print(f"similarity {c.similarity:.4f}  (threshold {c.threshold:.4f}): {c.verdict}")
    return 0


def _index_line(index, folder: str) -> str:
    if index.reused:
        return f"reused the cached index of {len(index)} images in {folder}"
    if index.embedded == len(index) and not index.removed:
        return f"built and cached an index of {len(index)} images in {folder}"
    return (f"updated the cached index of {len(index)} images in {folder}: {index.embedded} new or changed embedded, "
            f"{index.removed} removed")


def cmd_search(args: argparse.Namespace) -> int:
    from ..search import SearchIndex, list_images
    from ..visual import save_grid

    if not 1 <= args.k <= 1000:
        raise UserError(f"--k must be between 1 and 1,000, not {args.k}")
    out = Path(args.out)
    if out.suffix.lower() not in (".png", ".jpg", ".jpeg"):
        raise UserError(f"--out must end in .png or .jpg, not {printable(out.name, 80)!r}")
    check_writable(out)
    model = load_embedder(args)
    field = model.spec["image"]
    query = read_user_image(args.query, field, "query image")
    if args.folder:
        list_images(Path(args.folder))  # an empty or missing folder is refused before anything else is said
    say_device(args, model.device)
    if args.folder:
        index = SearchIndex.of_folder(model, Path(args.folder), progress=True)
        print(_index_line(index, args.folder))
    else:
        index = SearchIndex.for_within(model, None)
    results = index.nearest(model.embed(query)[0], args.k)
    for rank, r in enumerate(results, 1):
        print(f"{rank:3d}  {r['score']:.4f}  {printable(r.get('path', r.get('index')), 200)}")
    cells = [query]
    if args.folder:
        cells += [read_user_image(r["path"], field, "image") for r in results]
    else:
        from ..config import Config, DataConfig
        from ..tasks.similarity import load_images

        data = load_images(Config(data=DataConfig(**{k: v for k, v in model.data.items() if v is not None})), "train")
        cells += [data.images[r["index"]][None] for r in results]
    save_grid(torch.cat(cells), out, nrow=len(cells), title=f"query | its {len(results)} nearest (similarity "
              f"{results[0]['score']:.2f} .. {results[-1]['score']:.2f})")
    print(f"wrote {out}")
    return 0
