"""`condgan serve`: a web page and a JSON API for trained models."""

from __future__ import annotations

import argparse
import math
import sys

from ..errors import UserError
from ..untrusted import device, printable
from .common import add_device_argument, say_device


def add_serve_command(sub) -> None:
    from ..serve.limits import Limits

    d = Limits()
    v = sub.add_parser("serve", help="a web page and a JSON API for trained models (loopback only by default)",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Load the models once and serve a page (choose a model, its class or input image,\n"
                       "count and seed; see and download the grid; a class-conditional model's seed-to-seed strip;\n"
                       "a similarity model's Compare and Search tabs) and a JSON API: GET /api/models, POST\n"
                       "/api/generate, /api/interpolate, /api/compare, /api/search, GET /healthz. Limits: at most\n"
                       "256 images per request, uploads of at most 4 MiB and 2048x2048 pixels, one inference at a\n"
                       "time per model.\n"
                       "There is no authentication: keep the default --host 127.0.0.1, or put a reverse proxy\n"
                       "with TLS, authentication and rate limits in front (docs/serving.md).",
                       epilog="examples:\n  condgan serve runs/fmnist\n  condgan serve shoes=runs/shoes edges=exported/edges --port 8080\n"
                       "  condgan serve runs/similar --search-folder shoes=/data/shoes\n"
                       "  curl -s localhost:8000/api/models\n"
                       "  curl -s localhost:8000/api/generate -H 'Content-Type: application/json' "
                       "-d '{\"model\": \"fmnist\", \"label\": \"sandal\", \"n\": 16, \"seed\": 3}' -o sandals.png")
    v.add_argument("models", nargs="+", metavar="RUN_OR_EXPORT", help="run directory, checkpoint (.pt) or exported "
                   "folder; NAME=PATH names it in the API (default: the folder's name)")
    v.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only; "
                   "0.0.0.0 listens on every interface, which needs a proxy in front)")
    v.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000; 0 picks a free one)")
    v.add_argument("--search-folder", action="append", default=[], metavar="[NAME=]DIR", help="a folder of images that "
                   "a similarity model's Search tab searches (sub-folders included; repeatable; indexed at start, the "
                   "index cached as condgan search caches it). The page and API pick it by NAME (default: the folder's "
                   "name) or id, never by a path")
    add_device_argument(v, "the models run")
    v.add_argument("--timeout", type=float, default=d.timeout, help=f"seconds a connection may stay silent before "
                   f"it is dropped (default {d.timeout:g})")
    v.add_argument("--max-connections", type=int, default=d.max_connections, help=f"open connections served at once; "
                   f"more get a 503 at once (default {d.max_connections})")
    v.add_argument("--allow-host", action="append", default=[], metavar="NAME", help="also answer requests addressed "
                   "to this name (the Host header, any port; repeatable), e.g. the name a proxy forwards. By default "
                   "only the --host address, localhost, 127.0.0.1 and [::1] are answered; other names get a 403 "
                   "(a guard against DNS rebinding, docs/serving.md)")
    v.add_argument("--quiet", action="store_true", help="no access log and no device line (errors are still logged)")
    v.set_defaults(func=cmd_serve)


def cmd_serve(args) -> int:
    import dataclasses
    import signal

    from ..serve.app import load_models, make_server
    from ..serve.folders import index_folders
    from ..serve.limits import Limits

    if not 0 <= args.port <= 65535:
        raise UserError(f"--port must be between 0 and 65535, not {args.port}")
    if not (args.timeout > 0 and math.isfinite(args.timeout)) or args.max_connections < 1:
        raise UserError("--timeout and --max-connections must be positive")
    limits = dataclasses.replace(Limits(), timeout=args.timeout, max_connections=args.max_connections)
    for name in args.allow_host:
        if not name.strip() or any(c in name for c in "/ @") or printable(name) != name:
            raise UserError(f"--allow-host takes a host name or address as a browser sends it (e.g. models.example.com), "
                            f"not {printable(name, 80)!r}")
    chosen = device(args.device, "--device")
    models = load_models(args.models, device=chosen)
    index_folders(models, args.search_folder)
    say_device(args, chosen)
    try:
        server = make_server(models, args.host, args.port, limits, quiet=args.quiet, allow_hosts=args.allow_host)
    except OSError as e:
        raise UserError(f"cannot listen on {args.host}:{args.port} ({e.strerror or e}); "
                        "choose another --port, or a --host address of this machine") from None
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"condgan: warning: listening on {args.host}: anyone who can reach it can use it (no authentication); "
              "see docs/serving.md", file=sys.stderr)
    print(f"serving {len(models)} model(s) at {server.url}  (Ctrl-C stops)", flush=True)
    previous = signal.signal(signal.SIGTERM, _stop_serving)  # `kill`, systemd and containers stop it like Ctrl-C
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("stopped", flush=True)
    finally:
        signal.signal(signal.SIGTERM, previous)
        server.server_close()
    return 0


def _stop_serving(signum, frame):
    raise KeyboardInterrupt
