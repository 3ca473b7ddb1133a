"""The aggregator's HTTP app: routes and the request pipeline (the process is :mod:`aggregator.service`).

Every push goes through the same stages, each able to refuse it::

    auth (401) -> content type (415) -> body: size, gzip (413/400)
    -> parse, resource ids by the token's template and prefix (400/403)
    -> request limits: lines, samples, resources (413) -> rate limit (429)
    -> Kafka: bound, availability, acks (413/429/503) -> 204

Bodies larger than ``inline_parse_bytes`` or compressed are decompressed and parsed
on a thread, so a large body does not hold up the small ones for its whole parse: the
event loop gets the interpreter back at every switch interval (5 ms), and zlib works
without it. Up to ``max_parse_queue_bytes`` of bodies wait for a thread (429 beyond).
Any other failure is a 500 with a JSON body and a request id, which the log names with
the error.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import chain
from typing import TYPE_CHECKING, NamedTuple

import orjson
from aiohttp import web

from aggregator.auth import TokenIndex
from aggregator.body import (
    GZIP_OR_IDENTITY,
    JSON_TYPES,
    LINE_PROTOCOL_TYPES,
    OTLP_TYPES,
    REMOTE_WRITE_TYPES,
    check_content_type,
    decode_body,
    read_body,
)
from aggregator.delivery import Delivery
from aggregator.grant import Grant
from aggregator.grouping import BatchBuilder
from aggregator.influx_compat import Health, InfluxCompat
from aggregator.jsonpush import JsonPushParser
from aggregator.lineprotocol import LineProtocolParser
from aggregator.metrics import (
    BATCHES_ACCEPTED,
    FIELDS_DROPPED,
    POINTS_DROPPED,
    REQUEST_SECONDS,
    REQUESTS,
    REQUESTS_REJECTED,
    REQUESTS_THROTTLED,
    SAMPLES_ACCEPTED,
)
from aggregator.openapi import openapi_document
from aggregator.ratelimit import RateLimiter
from aggregator.rejection import Rejection, over_limit
from aggregator.remote_write import REMOTE_WRITE_ENCODINGS, RemoteWriteParser
from aggregator.settings import AggregatorSettings
from aggregator.timestamps import TimeWindow

if TYPE_CHECKING:
    from aggregator.otlp import OtlpParser

__all__ = ["PushHandler", "build_app"]

log = logging.getLogger(__name__)

Parse = Callable[[web.Request, bytes, TimeWindow, BatchBuilder, Grant], None]
Respond = Callable[[web.Request, BatchBuilder], web.Response]
Refuse = Callable[[web.Request, Rejection], web.Response]

_THROTTLE_STATUSES = frozenset({429, 503})
_IDENTITY = frozenset({"identity", ""})
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Records(NamedTuple):
    """A request's Kafka records (key, value) and their bytes."""

    records: list[tuple[bytes, bytes]]
    size: int


def _no_content(request: web.Request, out: BatchBuilder) -> web.Response:
    headers = {}
    if out.dropped_fields:
        headers["X-Kemi-Dropped-Fields"] = str(out.dropped_fields)
    return web.Response(status=204, headers=headers)


def _json_refusal(request: web.Request, rejection: Rejection) -> web.Response:
    return rejection.response()


def _otlp_response(request: web.Request, out: BatchBuilder) -> web.Response:
    from aggregator.otlp import otlp_response

    return otlp_response(request, out)


def _otlp_refusal(request: web.Request, rejection: Rejection) -> web.Response:
    from aggregator.otlp import otlp_refusal

    return otlp_refusal(request, rejection)


@dataclass(frozen=True)
class Endpoint:
    """One push path: what it accepts, how it parses, how it answers."""

    name: str
    types: frozenset[str]
    parse: Parse
    encodings: frozenset[str] = GZIP_OR_IDENTITY
    respond: Respond = _no_content
    refuse: Refuse = _json_refusal


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
        self.remote_write = RemoteWriteParser(config)
        #: made at the first OTLP request: a fleet that does not speak OTLP never loads
        #: its protobuf modules (0.5 MiB)
        self._otlp: OtlpParser | None = None
        self.limiter = RateLimiter()
        #: decompresses and parses large bodies off the event loop
        self.pool = ThreadPoolExecutor(config.parse_threads, thread_name_prefix="kemi-parse")
        #: bytes of bodies handed to the parse threads and not parsed yet
        self.parse_queue_bytes = 0
        self.endpoints = {
            "/api/v1/push": Endpoint("push", JSON_TYPES, self._parse_json),
            "/api/v2/write": Endpoint("write_v2", LINE_PROTOCOL_TYPES, self._parse_lines),
            "/write": Endpoint("write_v1", LINE_PROTOCOL_TYPES, self._parse_lines),
            "/api/v1/write": Endpoint(
                "remote_write",
                REMOTE_WRITE_TYPES,
                self._parse_remote_write,
                encodings=REMOTE_WRITE_ENCODINGS,
            ),
            "/v1/metrics": Endpoint(
                "otlp", OTLP_TYPES, self._parse_otlp, respond=_otlp_response, refuse=_otlp_refusal
            ),
        }

    def add_routes(self, app: web.Application) -> None:
        for path in self.endpoints:
            app.router.add_post(path, self.push)
        app.router.add_get("/openapi.json", self.openapi)
        InfluxCompat(self._authenticate, lambda: self.health()).add_routes(app)

    async def openapi(self, request: web.Request) -> web.Response:
        return web.Response(body=orjson.dumps(openapi_document()), content_type="application/json")

    async def push(self, request: web.Request) -> web.Response:
        return await self._handle(request, self.endpoints[request.path])

    def _parse_json(
        self, request: web.Request, body: bytes, window: TimeWindow, out: BatchBuilder, grant: Grant
    ) -> None:
        self.json.parse(body, window, out, grant)

    def _parse_lines(
        self, request: web.Request, body: bytes, window: TimeWindow, out: BatchBuilder, grant: Grant
    ) -> None:
        self.lines.parse(body, request.query.get("precision", "ns") or "ns", window, out, grant)

    def _parse_remote_write(
        self, request: web.Request, body: bytes, window: TimeWindow, out: BatchBuilder, grant: Grant
    ) -> None:
        self.remote_write.parse(body, window, out, grant)

    def _parse_otlp(
        self, request: web.Request, body: bytes, window: TimeWindow, out: BatchBuilder, grant: Grant
    ) -> None:
        self.otlp.parse(body, request.content_type, window, out, grant)

    @property
    def otlp(self) -> OtlpParser:
        """The OTLP parser, imported and made at its first use."""
        if self._otlp is None:
            from aggregator.otlp import OtlpParser

            self._otlp = OtlpParser(self.config)
        return self._otlp

    def _parse(
        self,
        request: web.Request,
        endpoint: Endpoint,
        raw: bytes,
        encoding: str,
        window: TimeWindow,
        grant: Grant,
        revision: int,
    ) -> tuple[BatchBuilder, Records]:
        """Decompress, parse and check a body against the request limits; encode its records."""
        config = self.config
        body = decode_body(raw, encoding, config.max_body_bytes, config.max_gzip_members)
        out = BatchBuilder(revision)
        endpoint.parse(request, body, window, out, grant)
        if out.samples > config.max_samples:
            raise over_limit("samples", out.samples, config.max_samples, "MAX_SAMPLES")
        if out.resources > config.max_resources:
            raise over_limit("resources", out.resources, config.max_resources, "MAX_RESOURCES")
        records = out.records(config.max_record_bytes)
        size = sum(map(len, chain.from_iterable(records)))
        if size > config.max_inflight_bytes:
            # more than may ever await Kafka's acks at once: a 429 would be retried forever
            raise over_limit("encoded bytes", size, config.max_inflight_bytes, "MAX_INFLIGHT_BYTES")
        return out, Records(records, size)

    async def _parse_on_thread(
        self, work: Callable[[], tuple[BatchBuilder, Records]], size: int
    ) -> tuple[BatchBuilder, Records]:
        """Run ``work`` on a parse thread; 429 while ``max_parse_queue_bytes`` of bodies wait."""
        limit = self.config.max_parse_queue_bytes
        if self.parse_queue_bytes and self.parse_queue_bytes + size > limit:
            raise Rejection(
                429,
                "busy",
                f"{self.parse_queue_bytes} bytes of bodies await parsing (limit {limit}, "
                "KEMI_AGGREGATOR_MAX_PARSE_QUEUE_BYTES); nothing was written, retry later",
                retry_after=self.config.retry_after_busy,
            )
        self.parse_queue_bytes += size
        try:
            return await asyncio.get_running_loop().run_in_executor(self.pool, work)
        finally:
            self.parse_queue_bytes -= size

    def close(self) -> None:
        """Stop the parse threads; bodies still queued are not parsed."""
        self.pool.shutdown(wait=False, cancel_futures=True)

    def _authenticate(self, request: web.Request) -> Grant:
        header = request.headers.get("Authorization")
        if header is None and request.path in ("/write", "/query") and request.query.get("p"):
            header = "Token " + request.query["p"]
        return self.tokens.authenticate(header)

    async def _handle(self, request: web.Request, endpoint: Endpoint) -> web.Response:
        started = time.perf_counter()
        grant: Grant | None = None
        name = endpoint.name
        try:
            grant = self._authenticate(request)
            check_content_type(request, endpoint.types)
            raw, encoding = await read_body(request, self.config.max_body_bytes, endpoint.encodings)
            window = TimeWindow.around(
                int(time.time() * 1000), self.config.max_age, self.config.max_future
            )
            work = functools.partial(
                self._parse, request, endpoint, raw, encoding, window, grant, self.revision()
            )
            if encoding in _IDENTITY and len(raw) <= self.config.inline_parse_bytes:
                out, records = work()
            else:
                out, records = await self._parse_on_thread(work, len(raw))
            wait = self.limiter.admit(grant.name, grant.rate_limit, out.samples)
            if wait is not None:
                raise Rejection(
                    429,
                    "rate_limited",
                    f"token {grant.name} is limited to {grant.rate_limit:g} samples/s; "
                    "nothing was written, retry later",
                    retry_after=wait,
                )
            await self.delivery.deliver(records.records, records.size)
        except Exception as exc:
            rejection = exc if isinstance(exc, Rejection) else internal_error(request, exc)
            token = grant.name if grant is not None else ""
            if rejection.status in _THROTTLE_STATUSES:
                REQUESTS_THROTTLED.labels(rejection.reason, token).inc()
            else:
                REQUESTS_REJECTED.labels(rejection.reason, token).inc()
            if rejection.status == 429 or rejection.status == 503:
                log.info("%s %s: %s %s", name, token, rejection.status, rejection.message)
            REQUESTS.labels(name, str(rejection.status)).inc()
            REQUEST_SECONDS.labels(name).observe(time.perf_counter() - started)
            return endpoint.refuse(request, rejection)
        SAMPLES_ACCEPTED.labels(grant.name).inc(out.samples)
        BATCHES_ACCEPTED.inc(len(records.records))
        if out.dropped_fields:
            FIELDS_DROPPED.labels(grant.name).inc(out.dropped_fields)
        if out.dropped:
            for reason, count in out.dropped.items():
                POINTS_DROPPED.labels(name, reason, grant.name).inc(count)
            log.warning(
                "%s %s: %d points dropped, the rest written: %s",
                name,
                grant.name,
                out.dropped_total,
                "; ".join(out.drop_notes),
            )
        response = endpoint.respond(request, out)
        REQUESTS.labels(name, str(response.status)).inc()
        REQUEST_SECONDS.labels(name).observe(time.perf_counter() - started)
        return response


@web.middleware
async def last_resort(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A 500 with a JSON body and a request id (logged with the error) for any route's bug."""
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except Exception as exc:
        return internal_error(request, exc).response()


def internal_error(request: web.Request, exc: Exception) -> Rejection:
    """Log ``exc`` under a request id and say it in a 500: nothing of the request was written."""
    request_id = request.headers.get("X-Request-Id", "")[:64] or uuid.uuid4().hex[:16]
    log.error(
        "%s %s: request %s failed: %r", request.method, request.path, request_id, exc, exc_info=exc
    )
    return Rejection(
        500,
        "internal",
        f"the aggregator failed on this request (request id {request_id}); nothing was "
        "written. Please report it with the request id",
        value=request_id,
    )


def build_app(handler: PushHandler) -> web.Application:
    """The aiohttp app with the push routes (ServiceRuntime adds /healthz and /metrics)."""
    app = web.Application(middlewares=[last_resort])
    handler.add_routes(app)
    return app
