"""The aggregator's HTTP app: routes and the request pipeline (the process is :mod:`aggregator.service`).

Every push goes through the same stages, each able to refuse it::

    auth (401) -> content type (415) -> body: size, gzip (413/400)
    -> parse, resource ids by the token's template and prefix (400/403) -> rate limit (429) -> Kafka: bound, availability, acks (429/503)
    -> 204
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import orjson
from aiohttp import web

from aggregator.auth import Grant, TokenIndex
from aggregator.body import JSON_TYPES, LINE_PROTOCOL_TYPES, check_content_type, read_body
from aggregator.delivery import Delivery
from aggregator.grouping import BatchBuilder
from aggregator.influx_compat import Health, InfluxCompat
from aggregator.jsonpush import JsonPushParser
from aggregator.lineprotocol import LineProtocolParser
from aggregator.metrics import (
    BATCHES_ACCEPTED,
    FIELDS_DROPPED,
    REQUEST_SECONDS,
    REQUESTS,
    REQUESTS_REJECTED,
    REQUESTS_THROTTLED,
    SAMPLES_ACCEPTED,
)
from aggregator.openapi import openapi_document
from aggregator.ratelimit import RateLimiter
from aggregator.rejection import Rejection
from aggregator.settings import AggregatorSettings
from aggregator.timestamps import TimeWindow

__all__ = ["PushHandler", "build_app"]

log = logging.getLogger(__name__)

Parse = Callable[[web.Request, bytes, TimeWindow, BatchBuilder, Grant], None]

_THROTTLE_STATUSES = frozenset({429, 503})


class PushHandler:
    """The push endpoints; one instance serves every request of the process."""

    def __init__(
        self,
        config: AggregatorSettings,
        tokens: TokenIndex,
        delivery: Delivery,
        revision: Callable[[], int] = lambda: 0,
    ) -> None:
        self.config = config
        self.tokens = tokens
        self.delivery = delivery
        self.revision = revision
        #: the process's health, for Influx's /health (the service sets its runtime's)
        self.health: Health = lambda: (True, {})
        self.lines = LineProtocolParser(config)
        self.json = JsonPushParser(config)
        self.limiter = RateLimiter()

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/api/v1/push", self.push_json)
        app.router.add_post("/api/v2/write", self.write_v2)
        app.router.add_post("/write", self.write_v1)
        app.router.add_get("/openapi.json", self.openapi)
        InfluxCompat(self._authenticate, lambda: self.health()).add_routes(app)

    async def openapi(self, request: web.Request) -> web.Response:
        return web.Response(body=orjson.dumps(openapi_document()), content_type="application/json")

    async def push_json(self, request: web.Request) -> web.Response:
        return await self._handle(request, "push", JSON_TYPES, self._parse_json)

    async def write_v2(self, request: web.Request) -> web.Response:
        return await self._handle(request, "write_v2", LINE_PROTOCOL_TYPES, self._parse_v2)

    async def write_v1(self, request: web.Request) -> web.Response:
        return await self._handle(request, "write_v1", LINE_PROTOCOL_TYPES, self._parse_v1)

    def _parse_json(
        self,
        request: web.Request,
        body: bytes,
        window: TimeWindow,
        out: BatchBuilder,
        grant: Grant,
    ) -> None:
        self.json.parse(body, window, out, grant)

    def _parse_v2(
        self,
        request: web.Request,
        body: bytes,
        window: TimeWindow,
        out: BatchBuilder,
        grant: Grant,
    ) -> None:
        self.lines.parse(body, request.query.get("precision", "ns") or "ns", window, out, grant)

    def _parse_v1(
        self,
        request: web.Request,
        body: bytes,
        window: TimeWindow,
        out: BatchBuilder,
        grant: Grant,
    ) -> None:
        self.lines.parse(body, request.query.get("precision", "ns") or "ns", window, out, grant)

    def _authenticate(self, request: web.Request) -> Grant:
        header = request.headers.get("Authorization")
        if header is None and request.path in ("/write", "/query") and request.query.get("p"):
            header = "Token " + request.query["p"]
        return self.tokens.authenticate(header)

    async def _handle(
        self, request: web.Request, endpoint: str, types: frozenset[str], parse: Parse
    ) -> web.Response:
        started = time.perf_counter()
        grant: Grant | None = None
        try:
            grant = self._authenticate(request)
            check_content_type(request, types)
            body = await read_body(request, self.config.max_body_bytes)
            window = TimeWindow.around(
                int(time.time() * 1000), self.config.max_age, self.config.max_future
            )
            out = BatchBuilder(self.revision())
            parse(request, body, window, out, grant)
            wait = self.limiter.admit(grant.name, grant.rate_limit, out.samples)
            if wait is not None:
                raise Rejection(
                    429,
                    "rate_limited",
                    f"token {grant.name} is limited to {grant.rate_limit:g} samples/s; "
                    "nothing was written, retry later",
                    retry_after=wait,
                )
            batches = out.batches()
            await self.delivery.deliver(batches)
        except Rejection as rejection:
            token = grant.name if grant is not None else ""
            if rejection.status in _THROTTLE_STATUSES:
                REQUESTS_THROTTLED.labels(rejection.reason, token).inc()
            else:
                REQUESTS_REJECTED.labels(rejection.reason, token).inc()
            if rejection.status >= 500 or rejection.status == 429:
                log.info("%s %s: %s %s", endpoint, token, rejection.status, rejection.message)
            REQUESTS.labels(endpoint, str(rejection.status)).inc()
            REQUEST_SECONDS.labels(endpoint).observe(time.perf_counter() - started)
            return rejection.response()
        SAMPLES_ACCEPTED.labels(grant.name).inc(out.samples)
        BATCHES_ACCEPTED.inc(len(batches))
        headers = {}
        if out.dropped_fields:
            FIELDS_DROPPED.labels(grant.name).inc(out.dropped_fields)
            headers["X-Kemi-Dropped-Fields"] = str(out.dropped_fields)
        REQUESTS.labels(endpoint, "204").inc()
        REQUEST_SECONDS.labels(endpoint).observe(time.perf_counter() - started)
        return web.Response(status=204, headers=headers)


def build_app(handler: PushHandler) -> web.Application:
    """The aiohttp app with the push routes (ServiceRuntime adds /healthz and /metrics)."""
    app = web.Application()
    handler.add_routes(app)
    return app
