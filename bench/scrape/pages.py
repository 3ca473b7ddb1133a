"""The exporters of the scrape benchmark: one process serving many node_exporter-sized pages.

    python bench/scrape/pages.py PORT TARGETS SERIES

``GET /t/<n>/metrics`` answers target n's page (``SERIES`` series in families of 20,
half counters, half gauges, with HELP and TYPE lines as node_exporter writes them); the
values move on at every request, from a few pre-built variants. ``GET /counts`` answers
how many pages were served to each kind of client (Prometheus by its User-Agent, the
rest as ``other``), which is how the benchmark counts scrapes done.
"""

from __future__ import annotations

import itertools
import json
import sys

from aiohttp import web

VARIANTS = 8


def page(target: int, series: int, variant: int) -> bytes:
    lines = []
    for family in range((series + 19) // 20):
        counter = family % 2 == 1
        name = f"node_bench_metric_{family}" + ("_total" if counter else "")
        lines.append(f"# HELP {name} A node_exporter-like family of 20 series.")
        lines.append(f"# TYPE {name} {'counter' if counter else 'gauge'}")
        for i in range(min(20, series - family * 20)):
            value = (target * 1000 + family * 20 + i) * 10.5 + variant * (i + 1)
            lines.append(f'{name}{{cpu="{i}",mode="idle",device="eth{i % 4}"}} {value}')
    return ("\n".join(lines) + "\n").encode()


def main() -> None:
    port, targets, series = (int(a) for a in sys.argv[1:4])
    pages = [[page(t, series, v) for v in range(VARIANTS)] for t in range(targets)]
    turns = [itertools.cycle(p) for p in pages]
    counts = {"prometheus": 0, "other": 0}

    async def metrics(request: web.Request) -> web.Response:
        agent = request.headers.get("User-Agent", "")
        counts["prometheus" if agent.startswith("Prometheus") else "other"] += 1
        body = next(turns[int(request.match_info["n"])])
        return web.Response(body=body, content_type="text/plain", charset="utf-8")

    async def count(request: web.Request) -> web.Response:
        return web.Response(text=json.dumps(counts), content_type="application/json")

    app = web.Application()
    app.router.add_get("/t/{n}/metrics", metrics)
    app.router.add_get("/counts", count)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


if __name__ == "__main__":
    main()
