"""Load test for `condgan serve` on loopback: N requests from C concurrent clients, each for K images.

    python benchmarks/serve_load.py --serve runs/demo --out bench-results/serve_load.json      # starts the server
    python benchmarks/serve_load.py --url http://127.0.0.1:8000 --pid 1234                     # one already running

Prints p50/p95/max latency, requests/s, images/s, the errors, and the server's resident memory (RSS, from
/proc/PID/status) after loading, after a warm-up and after the run; writes the same as JSON. Every answer
must be a 200 PNG, else it counts as an error. Class-conditional models get a class per request (rotating
through the classes), translators a synthetic mask upload; the seed is the request's number.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import io
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
from PIL import Image


def rss_mib(pid: int | None) -> float | None:
    if pid is None:
        return None
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return None


def start_server(model: str) -> tuple[subprocess.Popen, str]:
    """`condgan serve MODEL --port 0` in its own process; returns it and its URL (read from its first lines)."""
    src = Path(__file__).resolve().parents[1] / "src"
    env = {**os.environ, "PYTHONPATH": f"{src}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.Popen([sys.executable, "-m", "condgan", "serve", model, "--port", "0", "--quiet"],
                            stdout=subprocess.PIPE, text=True, env=env)
    for line in proc.stdout:
        if line.startswith("serving"):
            return proc, line.split(" at ")[1].split()[0]
    raise SystemExit(f"the server did not start (exit code {proc.wait()})")


def request_body(model: dict, i: int, n: int) -> bytes:
    body = {"model": model["name"], "n": n, "seed": i, "format": "png"}
    for f in model["fields"]:
        if f["kind"] == "class":
            body[f["name"]] = i % len(f["class_names"])
        else:  # an image condition: a bar mask of the field's size, moved by the request number
            mask = np.zeros((f["height"], f["width"]), dtype=np.uint8)
            top = i % max(1, f["height"] // 2)
            mask[top: top + f["height"] // 3, f["width"] // 4: 3 * f["width"] // 4] = 255
            buf = io.BytesIO()
            Image.fromarray(mask).save(buf, format="PNG")
            body[f["name"]] = base64.b64encode(buf.getvalue()).decode()
    return json.dumps(body).encode()


def run(url: str, model: dict, requests: int, clients: int, n: int, first: int = 0) -> tuple[list[float], list[str]]:
    """Latencies (s) of the successful requests and a description of each failure; one keep-alive connection per client."""
    parsed = urlparse(url)
    todo = iter(range(first, first + requests))
    lock = threading.Lock()
    latencies, errors = [], []

    def client():
        conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=300)
        while True:
            with lock:
                i = next(todo, None)
            if i is None:
                break
            body = request_body(model, i, n)
            started = time.perf_counter()
            try:
                conn.request("POST", "/api/generate", body=body, headers={"Content-Type": "application/json"})
                response = conn.getresponse()
                data = response.read()
                elapsed = time.perf_counter() - started
                ok = response.status == 200 and data[:8] == b"\x89PNG\r\n\x1a\n"
                with lock:
                    (latencies.append(elapsed) if ok else errors.append(f"{response.status}: {data[:120]!r}"))
            except (OSError, http.client.HTTPException) as e:
                with lock:
                    errors.append(f"{type(e).__name__}: {e}")
                conn.close()
                conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=300)
        conn.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, errors


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--serve", metavar="RUN_OR_EXPORT", help="start `condgan serve` on this model (and stop it after)")
    where.add_argument("--url", help="a server already running, e.g. http://127.0.0.1:8000")
    parser.add_argument("--pid", type=int, help="with --url: the server's process id, to read its memory")
    parser.add_argument("--model", help="model name in the API (default: the first one)")
    parser.add_argument("--requests", type=int, default=200, help="requests to time (default 200)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients (default 8)")
    parser.add_argument("--n", type=int, default=16, help="images per request (default 16)")
    parser.add_argument("--warmup", type=int, default=16, help="untimed requests first (default 16)")
    parser.add_argument("--out", default="bench-results/serve_load.json", help="JSON results file")
    args = parser.parse_args()

    proc, url, pid = None, args.url, args.pid
    if args.serve:
        proc, url = start_server(args.serve)
        pid = proc.pid
    try:
        parsed = urlparse(url)
        conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=30)
        conn.request("GET", "/api/models")
        models = json.loads(conn.getresponse().read())["models"]
        conn.close()
        model = next((m for m in models if m["name"] == args.model), None) if args.model else models[0]
        if model is None:
            raise SystemExit(f"no model {args.model!r}; the server has {', '.join(m['name'] for m in models)}")
        rss_loaded = rss_mib(pid)
        run(url, model, args.warmup, args.clients, args.n, first=10**6)
        rss_before = rss_mib(pid)
        load_before = os.getloadavg()
        started = time.perf_counter()
        latencies, errors = run(url, model, args.requests, args.clients, args.n)
        wall = time.perf_counter() - started
        rss_after = rss_mib(pid)
    finally:
        if proc:
            proc.terminate()
            proc.wait(30)

    ms = sorted(x * 1000 for x in latencies)
    pct = lambda q: round(ms[min(len(ms) - 1, int(round(q * (len(ms) - 1))))], 1) if ms else None  # noqa: E731
    result = {
        "model": model["name"], "kind": model["kind"], "output": model["output"], "requests": args.requests,
        "clients": args.clients, "images_per_request": args.n, "ok": len(latencies), "errors": len(errors),
        "error_samples": errors[:5], "latency_ms": {"p50": pct(0.5), "p95": pct(0.95), "max": pct(1.0),
                                                   "mean": round(statistics.fmean(ms), 1) if ms else None},
        "wall_s": round(wall, 2), "requests_per_s": round(len(latencies) / wall, 2),
        "images_per_s": round(len(latencies) * args.n / wall, 1),
        "server_rss_mib": {"after_load": rss_loaded, "before": rss_before, "after": rss_after},
        "load_average_at_start": [round(x, 2) for x in load_before], "cpu_count": os.cpu_count(),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{result['ok']}/{args.requests} requests ok ({result['errors']} errors) from {args.clients} clients, "
          f"{args.n} images each, model {model['name']} ({model['kind']})")
    print(f"latency ms: p50 {result['latency_ms']['p50']}, p95 {result['latency_ms']['p95']}, max {result['latency_ms']['max']}")
    print(f"throughput: {result['requests_per_s']} requests/s, {result['images_per_s']} images/s over {result['wall_s']} s")
    r = result["server_rss_mib"]
    print(f"server RSS MiB: after load {r['after_load']}, before (after warm-up) {r['before']}, after {r['after']}")
    print(f"load average at start {result['load_average_at_start']} on {os.cpu_count()} CPUs; wrote {out}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
