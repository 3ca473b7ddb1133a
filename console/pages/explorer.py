"""The metric explorer: pick a metric and a resource, see it over 1h, 6h, 24h or 7d.

The page is rendered on the server; ``/static/explorer.js`` reads ``/api/series`` and
draws it with uPlot (served by the console, see ``console/static/vendor/``).
"""

from __future__ import annotations

import asyncio
import time
from urllib.parse import urlencode

import orjson
from aiohttp import web

from console.web import render, state_of
from kemi_stats.names import check_metric_name
from kemi_stats.redact import redact_urls
from kemi_stats.registry.models import Derived, Profile, Target
from kemi_stats.tsdb import RangeQuery, TsdbError

__all__ = ["RANGES", "routes"]

#: range name -> seconds
RANGES = {"1h": 3600.0, "6h": 6 * 3600.0, "24h": 86400.0, "7d": 7 * 86400.0}
#: about this many points per series, whatever the range
_POINTS = 240
#: metrics every polled target has
_BUILTIN = ("snmp_up", "snmp_poll_duration_seconds", "up")
#: resources offered in the picker (the field takes any resource id)
_MAX_RESOURCES = 2000


def _step(seconds: float) -> float:
    return max(15.0, round(seconds / _POINTS / 15.0) * 15.0)


def _known_metrics(profiles: dict[str, Profile], derived: dict[str, Derived]) -> list[str]:
    names = set(_BUILTIN) | set(derived)
    for p in profiles.values():
        names.update(p.metric_names())
    return sorted(names)


async def explorer_page(request: web.Request) -> web.Response:
    state = state_of(request)
    metric = request.query.get("metric", "").strip()
    resource = request.query.get("resource", "").strip()
    span = request.query.get("range", "1h")
    if span not in RANGES:
        span = "1h"
    targets: dict[str, Target] = state.view.get("target")
    resources = sorted({t.resource(n) for n, t in targets.items()})[:_MAX_RESOURCES]
    src = ""
    if metric and resource:
        src = "/api/series?" + urlencode({"metric": metric, "resource": resource, "range": span})
    return render(
        request, "explorer.html", metric=metric, resource=resource, span=span, ranges=list(RANGES),
        metrics=_known_metrics(state.view.get("profile"), state.view.get("derived")),
        resources=resources, src=src,
    )  # fmt: skip


def _error(status: int, message: str) -> web.Response:
    return web.Response(
        body=orjson.dumps({"error": message}), status=status, content_type="application/json"
    )


async def series_api(request: web.Request) -> web.Response:
    """``GET /api/series?metric=M&resource=R&range=1h``: the series as JSON for the chart."""
    state = state_of(request)
    metric = request.query.get("metric", "").strip()
    resource = request.query.get("resource", "").strip() or None
    span = request.query.get("range", "1h")
    if span not in RANGES:
        return _error(400, f"range {span!r}: expected one of {', '.join(RANGES)}")
    try:
        check_metric_name(metric)
    except ValueError as exc:
        return _error(400, f"metric: {exc}")
    if resource is None:
        # a metric of the whole fleet over 7 days is not a chart: one resource at a time
        return _error(400, "resource: required (the resource id whose series to draw)")
    end = time.time()
    start = end - RANGES[span]
    step = _step(RANGES[span])
    try:
        series = await asyncio.to_thread(
            state.tsdb.query_range, RangeQuery(metric, start, end, step, resource=resource)
        )
    except TsdbError as exc:
        return _error(502, redact_urls(str(exc)))
    body = {
        "metric": metric, "resource": resource, "start": start, "end": end, "step": step,
        "series": [{"labels": s.labels, "points": s.points} for s in series[:50]],
    }  # fmt: skip
    return web.Response(body=orjson.dumps(body), content_type="application/json")


def routes() -> list[web.RouteDef]:
    return [
        web.get("/explorer", explorer_page, name="explorer"),
        web.get("/api/series", series_api, name="series_api"),
    ]
