"""The InfluxDB endpoints clients call besides writes: ``/ping``, ``/health``, ``/query``.

- ``GET``/``HEAD /ping``: 204 with ``X-Influxdb-Version`` (InfluxDB 1.x and 2.x clients'
  ``ping()``); no token needed, as in InfluxDB.
- ``GET /health``: the InfluxDB 2.x JSON shape (``influxdb-client``'s ``health()``), 200 and
  ``"status": "pass"`` when the aggregator is healthy, else 503 and ``"fail"``.
- ``GET``/``POST /query`` (InfluxQL, ``q`` in the URL or a form body), with a token:
  ``CREATE DATABASE`` (Telegraf's ``outputs.influxdb`` sends it at start) succeeds and
  does nothing, since every write goes to the same topic whatever its ``db``;
  ``SHOW DATABASES`` answers an empty list. Any other statement is a 400 saying the
  aggregator only ingests: read with ``kemi-stats query`` or the TSDB.

Errors on ``/query`` have InfluxDB's shape, ``{"error": "..."}``, which its clients show.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import web

from aggregator.rejection import Rejection
from kemi_stats import __version__

__all__ = ["INFLUX_VERSION", "InfluxCompat"]

#: what ``X-Influxdb-Version`` says: the kemi-stats version, marked as ours
INFLUX_VERSION = f"kemi-stats-{__version__}"

_CREATE_DATABASE = re.compile(
    r"\s*CREATE\s+DATABASE\s+(\"(?:[^\"\\]|\\.)+\"|\w+)(\s+WITH\s.*)?\s*", re.I | re.S
)
_SHOW_DATABASES = re.compile(r"\s*SHOW\s+DATABASES\s*", re.I)
_HEADERS = {"X-Influxdb-Version": INFLUX_VERSION, "X-Influxdb-Build": "kemi-stats"}

Health = Callable[[], tuple[bool, dict[str, dict[str, Any]]]]
Authenticate = Callable[[web.Request], object]


class InfluxCompat:
    """The compatibility routes; ``authenticate`` raises a :class:`Rejection` (401/503)."""

    def __init__(self, authenticate: Authenticate, health: Health) -> None:
        self.authenticate = authenticate
        self.health = health

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/ping", self.ping)  # aiohttp answers HEAD through the GET route
        app.router.add_get("/health", self.health_v2)
        app.router.add_get("/query", self.query)
        app.router.add_post("/query", self.query)

    async def ping(self, request: web.Request) -> web.Response:
        return web.Response(status=204, headers=_HEADERS)

    async def health_v2(self, request: web.Request) -> web.Response:
        healthy, checks = self.health()
        body = {
            "name": "kemi-stats-aggregator",
            "message": "ready for writes" if healthy else "not ready for writes",
            "status": "pass" if healthy else "fail",
            "checks": [
                {
                    "name": name,
                    "status": "pass" if result["ok"] else "fail",
                    "message": str(result["detail"]),
                }
                for name, result in checks.items()
            ],
            "version": INFLUX_VERSION,
            "commit": "",
        }
        return web.Response(
            body=orjson.dumps(body),
            status=200 if healthy else 503,
            content_type="application/json",
            headers=_HEADERS,
        )

    async def query(self, request: web.Request) -> web.Response:
        try:
            self.authenticate(request)
        except Rejection as rejection:
            return _error(rejection.status, rejection.message, rejection.retry_after)
        text = request.query.get("q")
        if text is None and request.method == "POST":
            form = await request.post()
            value = form.get("q")
            text = value if isinstance(value, str) else None
        if not text or not text.strip():
            return _error(400, 'missing required parameter "q"')
        results: list[dict[str, Any]] = []
        for number, statement in enumerate(s for s in text.split(";") if s.strip()):
            if _CREATE_DATABASE.fullmatch(statement):
                results.append({"statement_id": number})
            elif _SHOW_DATABASES.fullmatch(statement):
                results.append(
                    {
                        "statement_id": number,
                        "series": [{"name": "databases", "columns": ["name"]}],
                    }
                )
            else:
                return _error(
                    400,
                    f"statement {number + 1}: {statement.strip()[:80]!r} is not supported: "
                    "kemi-stats' aggregator only ingests (CREATE DATABASE and SHOW DATABASES "
                    "are accepted and do nothing); read with 'kemi-stats query' or the TSDB",
                )
        return web.Response(
            body=orjson.dumps({"results": results}),
            content_type="application/json",
            headers=_HEADERS,
        )


def _error(status: int, message: str, retry_after: int | None = None) -> web.Response:
    headers = dict(_HEADERS)
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    return web.Response(
        status=status,
        body=orjson.dumps({"error": message}),
        content_type="application/json",
        headers=headers,
    )
