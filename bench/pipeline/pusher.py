"""A paced push client for the pipeline benchmark: a fleet of resources at a set rate.

    python bench/pipeline/pusher.py --url URL --rate 20000 --stats FILE [options]

The token comes in ``KEMI_BENCH_TOKEN``. Every resource pushes ``--samples`` samples
every ``--interval`` seconds, so the fleet is ``rate * interval / samples`` resources;
a body carries ``--per-body`` resources, in line protocol (``/api/v2/write``: one line
of 2 counters, one of the other gauges per resource) or, for ``--json-share`` of the
bodies, JSON (``/api/v1/push``, all gauges). Requests go out in the fleet's order, one
every ``1 / requests-per-second``, so each resource pushes once every ``--interval``. Bodies carry no time: the aggregator stamps them as it receives
them, as it does a Telegraf or agent push without a timestamp, so prebuilt bodies stay
current. ``--connections`` threads each keep one HTTP/1.1 connection and pace their
share of the requests; a request that does not answer 204 is counted as an error.

Every second the totals go to ``--stats`` as JSON: samples accepted (204), requests,
errors, and the request latency p50/p99 of the last second, in ms.
"""

from __future__ import annotations

import argparse
import http.client
import os
import statistics
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import orjson

COUNTERS = 2
SITES = 4


def _resource(i: int) -> str:
    return f"bench-{i:06d}"


def line_body(first: int, n: int, samples: int, variant: int) -> bytes:
    gauges = samples - COUNTERS
    out = []
    for i in range(first, first + n):
        host, site = _resource(i), f"s{i % SITES}"
        counters = ",".join(f"c{j}={(i + j) * 1000}i" for j in range(COUNTERS))  # steady: rate 0
        values = ",".join(f"m{j}={(i * 7 + j + variant) % 1000}.5" for j in range(gauges))
        out.append(f"bench_c,host={host},site={site} {counters}\n")
        out.append(f"bench,host={host},site={site} {values}\n")
    return "".join(out).encode()


def json_body(first: int, n: int, samples: int, variant: int) -> bytes:
    docs = [
        {"resource_id": _resource(i), "labels": {"site": f"s{i % SITES}"},
         "metrics": {f"bench_m{j}": (i * 7 + j + variant) % 1000 + 0.5 for j in range(samples)}}
        for i in range(first, first + n)
    ]  # fmt: skip
    return orjson.dumps(docs)


class Totals:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.samples = 0
        self.requests = 0
        self.errors = 0
        self.last_error = ""
        self.latencies: list[float] = []


def run_connection(args: argparse.Namespace, bodies: list[tuple[str, bytes, int]], k: int,
                   requests_per_s: float, totals: Totals, stop: threading.Event) -> None:  # fmt: skip
    """Connection ``k`` of ``--connections`` sends requests k, k + C, k + 2C, ... of the
    fleet's order, each at its time: together the connections send the bodies in order,
    one every ``1 / requests_per_s`` seconds, so each resource pushes once an interval."""
    url = urlsplit(args.url)
    conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port or 80, timeout=30)
    token = os.environ.get("KEMI_BENCH_TOKEN", "")
    headers = {"Authorization": f"Bearer {token}"}
    stride = args.connections
    step = stride / requests_per_s
    due = time.monotonic() + k / requests_per_s
    i = k
    while not stop.is_set():
        now = time.monotonic()
        if due > now:
            time.sleep(due - now)
        elif now - due > 1.0:
            due = now  # more than a second behind: do not burst to catch up
        due += step
        path, body, samples = bodies[i % len(bodies)]
        i += stride
        kind = "application/json" if path.endswith("push") else "text/plain"
        began = time.monotonic()
        error = ""
        try:
            conn.request("POST", path, body, {**headers, "Content-Type": kind})
            resp = conn.getresponse()
            resp.read()
            status = resp.status
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            status, error = 0, repr(exc)
        took = time.monotonic() - began
        with totals.lock:
            totals.requests += 1
            totals.latencies.append(took)
            if status == 204:
                totals.samples += samples
            else:
                totals.errors += 1
                totals.last_error = f"HTTP {status}" if status else error


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--url", required=True)
    p.add_argument("--rate", type=float, required=True, help="samples per second")
    p.add_argument("--stats", type=Path, required=True)
    p.add_argument("--samples", type=int, default=20, help="samples per resource and push")
    p.add_argument("--per-body", type=int, default=50, help="resources per request")
    p.add_argument(
        "--interval", type=float, default=10.0, help="seconds between a resource's pushes"
    )
    p.add_argument("--json-share", type=float, default=0.5)
    p.add_argument("--first", type=int, default=0, help="number of this fleet's first resource")
    p.add_argument("--connections", type=int, default=4)
    args = p.parse_args()

    fleet = max(args.per_body, round(args.rate * args.interval / args.samples))
    fleet -= fleet % args.per_body
    #: in sending order: the whole fleet once (one interval), then again with other values
    bodies: list[tuple[str, bytes, int]] = []
    variants = 4  # values change from one push of a resource to the next
    n_bodies = fleet // args.per_body
    every_json = round(1 / args.json_share) if args.json_share > 0 else 0
    for v in range(variants):
        for b in range(n_bodies):
            first = args.first + b * args.per_body
            if every_json and b % every_json == 0:
                bodies.append(("/api/v1/push", json_body(first, args.per_body, args.samples, v),
                               args.per_body * args.samples))  # fmt: skip
            else:
                bodies.append(("/api/v2/write", line_body(first, args.per_body, args.samples, v),
                               args.per_body * args.samples))  # fmt: skip
    requests_per_s = args.rate / (args.per_body * args.samples)
    totals = Totals()
    stop = threading.Event()
    threads = [
        threading.Thread(
            target=run_connection,
            args=(args, bodies, k, requests_per_s, totals, stop),
            daemon=True,
        )
        for k in range(args.connections)
    ]
    for t in threads:
        t.start()
    tmp = args.stats.with_suffix(".tmp")
    try:
        while True:
            time.sleep(1.0)
            with totals.lock:
                lat, totals.latencies = totals.latencies, []
                doc = {"samples": totals.samples, "requests": totals.requests,
                       "errors": totals.errors, "last_error": totals.last_error,
                       "fleet": fleet, "at": time.time()}  # fmt: skip
            if len(lat) >= 2:
                q = statistics.quantiles(lat, n=100)
                doc.update(p50_ms=q[49] * 1000, p99_ms=q[98] * 1000)
            tmp.write_bytes(orjson.dumps(doc))
            tmp.replace(args.stats)
    except KeyboardInterrupt:
        stop.set()


if __name__ == "__main__":
    main()
