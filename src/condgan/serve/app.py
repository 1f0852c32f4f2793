"""`condgan serve`: one process, the models loaded once, a page and a JSON API over the standard library.

    GET  /                 the page (static HTML/JS/CSS shipped in the package; no CDN)
    GET  /api/models       every model: kind, tools, fields (class names, image sizes), search folders; limits
    POST /api/generate     {"model", <field>: value, "n", "seed", "format": "png"|"json"|"zip"} -> PNG grid, JSON, zip
    POST /api/interpolate  {"model", <field>: value, "seed_a", "seed_b", "steps", "format"} -> a seed-to-seed strip
    POST /api/compare      {"model", "a", "b"} (two uploads) -> similarity, threshold and verdict
    POST /api/search       {"model", "query", "folder", "k"} -> the k nearest images of a --search-folder
    GET  /api/search-image ?model=M&folder=F&item=I -> one search result, as a PNG
    GET  /healthz          {"status": "ok"}

(routes.py answers the API routes; this module is the HTTP around them.)

Why the standard library's ThreadingHTTPServer and not FastAPI/uvicorn or
Gradio: a handful of routes with JSON bodies do not need a framework, it adds no
runtime dependency (condgan installs offline from a wheel cache), and every
limit the issue asks for is a few explicit lines here rather than settings of
three layers. Inference is CPU/GPU bound and serialised per model by a lock
anyway, so an async server would not serve more requests.

Safety: every answer to a bad request is a 4xx JSON {"error": "..."}; anything
unexpected is logged with its traceback and answered with a generic 500 (no
traceback leaves the process). Bodies, uploads (bytes and pixels), image
counts, connections and waits are bounded; sockets time out. There is no
authentication: it binds to loopback unless told otherwise, and answers only requests whose Host names
it (DNS rebinding; docs/serving.md).
"""

from __future__ import annotations

import json
import re
import socket
import sys
import threading
import traceback
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources

from ..errors import UserError
from . import routes
from .limits import Limits
from .request import HTTPError, read_json
from .served import ServedModel, load_models

__all__ = ["Server", "make_server", "load_models", "ServedModel"]  # the last two live in served.py


# ----- HTTP -------------------------------------------------------------------------------------------
def _static(name: str) -> bytes:
    return (resources.files("condgan.serve") / "static" / name).read_bytes()


STATIC = {"/": ("index.html", "text/html; charset=utf-8"), "/static/app.js": ("app.js", "text/javascript; charset=utf-8"),
          "/static/similar.js": ("similar.js", "text/javascript; charset=utf-8"),
          "/static/style.css": ("style.css", "text/css; charset=utf-8")}
ROUTES = {**{path: "GET" for path in STATIC}, "/api/models": "GET", "/healthz": "GET", "/api/search-image": "GET",
          **{path: "POST" for path in routes.POSTS}}
API = "GET /api/models, GET /healthz, POST /api/generate, /api/interpolate, /api/compare, /api/search"
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # Only this server's own script, style and images; no inline script, so text from data can never run.
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
                               "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
}
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class Handler(BaseHTTPRequestHandler):
    server_version = "condgan-serve"
    protocol_version = "HTTP/1.1"  # keep-alive: a client reuses its connection

    def version_string(self) -> str:
        return self.server_version  # no Python version in the Server header

    def setup(self):
        self.timeout = self.server.limits.timeout  # a socket timeout: slow and idle clients are dropped
        super().setup()

    # ---- methods -------------------------------------------------------------------------------
    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def do_HEAD(self):
        self._dispatch("HEAD")

    def do_PUT(self):
        self._dispatch("PUT")

    def do_DELETE(self):
        self._dispatch("DELETE")

    def do_PATCH(self):
        self._dispatch("PATCH")

    def _dispatch(self, method: str) -> None:
        path, _, query = self.path.partition("?")
        try:
            self._check_host()
            allowed = ROUTES.get(path)
            if allowed is None:
                raise HTTPError(404, f"no such page {path[:80]!r}; the API is {API}")
            if method != allowed and not (method, allowed) == ("HEAD", "GET"):
                raise HTTPError(405, f"{path} takes {allowed}, not {method}")
            server = self.server
            if path in STATIC:
                file, ctype = STATIC[path]
                return self._send(200, server.static[file], ctype)
            if path == "/healthz":
                return self._json(200, {"status": "ok", "models": len(server.models)})
            if path == "/api/models":
                return self._json(200, {"models": [m.describe() for m in server.models.values()],
                                        "limits": server.limits.to_dict()})
            if path == "/api/search-image":
                reply = routes.search_image(server.models, server.limits, query)
            else:
                body = read_json(self.headers, self.rfile, server.limits, routes.UPLOADS.get(path, 1))
                reply = routes.POSTS[path](server.models, server.limits, body)
            self._send(200, reply.body, reply.ctype, reply.headers)
        except HTTPError as e:
            self._json(e.status, {"error": e.args[0]}, close=True)
        except UserError as e:  # a pipeline's own check of the request (the same words as the CLI's)
            self._json(400, {"error": str(e)}, close=True)
        except (ConnectionError, TimeoutError):
            self.close_connection = True  # the client went away or stalled; nobody to answer
        except Exception:  # a bug: log it whole, tell the client nothing about the internals
            sys.stderr.write(f"condgan serve: internal error on {method} {path[:200]!r}:\n{traceback.format_exc()}")
            self._json(500, {"error": "internal server error (the server log has the details)"}, close=True)

    def _check_host(self) -> None:
        """Answer only requests addressed to this server by a name it knows: a hostile page whose domain is
        re-pointed at this address (DNS rebinding) sends its own name in Host, and is refused."""
        host = self.headers.get("Host")
        if host is None:  # HTTP/1.0 clients; every browser sends Host
            return
        name = host_name(host)
        if name not in self.server.allowed_hosts and not (self.server.any_address and _is_address(name)):
            raise HTTPError(403, f"Host {host[:80]!r} is not a name of this server (a guard against DNS rebinding); "
                                 f"to allow it, start condgan serve with --allow-host {name[:80] or 'NAME'}")

    # ---- answers -------------------------------------------------------------------------------
    def _send(self, status: int, body: bytes, ctype: str, headers: dict | None = None, close: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for k, v in {**SECURITY_HEADERS, **(headers or {})}.items():
            self.send_header(k, v)
        if status == 405:
            self.send_header("Allow", ROUTES.get(self.path.split("?", 1)[0], "GET"))
        if close:  # after a refusal the body may be unread: never reuse this connection
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, obj: dict, headers: dict | None = None, close: bool = False) -> None:
        self._send(status, json.dumps(obj).encode(), "application/json", headers, close)

    def send_error(self, code, message=None, explain=None):
        """The base class's errors (malformed request line, unknown method, headers too long) as JSON too."""
        try:
            phrase = HTTPStatus(code).phrase
        except ValueError:
            phrase = "error"
        self._json(code, {"error": f"{phrase}: {message or phrase}"}, close=True)

    def log_message(self, format, *args):
        """Access and error lines on stderr, control characters escaped (a request line is client text)."""
        if not self.server.quiet:
            line = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", format % args)
            sys.stderr.write(f"{self.address_string()} - [{self.log_date_time_string()}] {line}\n")


class Server(ThreadingHTTPServer):
    """A thread per connection, at most limits.max_connections of them; the models and limits for the handlers."""

    daemon_threads = True
    BUSY_BODY = json.dumps({"error": "too many open connections; try again shortly"}).encode()
    BUSY = (f"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nConnection: close\r\n"
            f"Content-Length: {len(BUSY_BODY)}\r\n\r\n").encode() + BUSY_BODY

    def __init__(self, address, models: list[ServedModel], limits: Limits, quiet: bool = False, allow_hosts=()):
        self.models = {m.name: m for m in models}
        self.limits, self.quiet = limits, quiet
        # Host headers answered: the address given, loopback names and --allow-host; bound to every interface
        # (0.0.0.0, ::), also any IP address (an address cannot be re-pointed as a domain name can)
        self.allowed_hosts = {host_name(h) for h in (address[0], *LOOPBACK_HOSTS, *allow_hosts)}
        self.any_address = address[0] in ("", "0.0.0.0", "::")
        self.static = {file: _static(file) for file, _ in STATIC.values()}
        self._slots = threading.BoundedSemaphore(limits.max_connections)
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, Handler)

    def process_request(self, request, client_address):
        if not self._slots.acquire(blocking=False):
            try:
                request.sendall(self.BUSY)
            except OSError:
                pass
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{'[' + host + ']' if ':' in host else host}:{port}/"


def make_server(models: list[ServedModel], host: str = "127.0.0.1", port: int = 8000, limits: Limits | None = None,
                quiet: bool = False, allow_hosts=()) -> Server:
    """A bound server (port 0: any free port; see .url); call serve_forever() to run it. It answers requests
    whose Host is `host`, localhost, 127.0.0.1, [::1] or one of `allow_hosts` (any port); others get a 403."""
    server = Server((host, port), models, limits or Limits(), quiet, allow_hosts)
    server.allowed_hosts.add(host_name(server.server_address[0]))  # the address bound (a name given resolved)
    return server


LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")


def host_name(host: str) -> str:
    """The name in a Host header or an address, without its port or IPv6 brackets, lowercase, no final dot."""
    host = host.strip().lower()
    if host.startswith("["):  # [::1]:8000
        host = host[1:].split("]", 1)[0]
    elif host.count(":") == 1:  # name:8000 (more colons: a bare IPv6 address)
        host = host.split(":", 1)[0]
    return host.rstrip(".")


def _is_address(name: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True
