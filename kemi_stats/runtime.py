"""The runtime every kemi service runs in: logging, health pages, ``/metrics``, a clean stop.

A service's ``main()`` builds a :class:`ServiceRuntime` with its name and default
port and hands it its main coroutine; SIGTERM and SIGINT cancel that coroutine and
the HTTP server stops. (Which services exist, and how to start them, is
:mod:`kemi_stats.catalogue`.)

Two questions, two pages, so an orchestrator restarts a process only when a restart helps:

``GET /livez``   liveness: the process works. 200 whenever the event loop answers; a
                 dependency being down never makes it fail (restarting would not
                 bring the dependency back).
``GET /readyz``  readiness: the process and its dependencies work. 200 when every
                 check registered with :meth:`ServiceRuntime.add_check` passes, else 503;
                 the body names each check with its detail.
``GET /healthz`` the same as ``/readyz`` (``kemi-stats up`` and ``status`` wait on it).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import uvloop
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from kemi_stats.errors import KemiError
from kemi_stats.settings import Settings

__all__ = ["HealthCheck", "ServiceRuntime", "setup_logging"]

log = logging.getLogger(__name__)

#: returns (healthy, detail)
HealthCheck = Callable[[], tuple[bool, str]]


def _json(body: dict[str, Any], status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


def setup_logging(service: str, level: str = "INFO") -> None:
    """One line per event: time, level, service, logger, message."""
    logging.basicConfig(
        level=level.upper(),
        stream=sys.stderr,
        format=f"%(asctime)s %(levelname)s {service} %(name)s: %(message)s",
    )
    for noisy in ("aiokafka", "kafka", "pysnmp", "asyncio", "apscheduler.executors.default"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


class ServiceRuntime:
    """Health checks, self-metrics endpoint and signal handling for one service process."""

    def __init__(
        self,
        name: str,
        settings: Settings,
        default_port: int,
        app: web.Application | None = None,
        *,
        auto_decompress: bool = True,
    ) -> None:
        self.name = name
        self.settings = settings
        self.started = time.time()
        self.checks: dict[str, HealthCheck] = {}
        self.app = app if app is not None else web.Application()
        self.app.router.add_get("/livez", self._livez)
        self.app.router.add_get("/readyz", self._readyz)
        self.app.router.add_get("/healthz", self._readyz)
        self.app.router.add_get("/metrics", self._metrics)
        self._runner: web.AppRunner | None = None
        self.port = settings.http_port if settings.http_port is not None else default_port
        self._auto_decompress = auto_decompress

    def add_check(self, name: str, check: HealthCheck) -> None:
        """Register a named readiness check shown by ``/readyz`` and ``/healthz``."""
        self.checks[name] = check

    def health(self) -> tuple[bool, dict[str, dict[str, Any]]]:
        """Whether every check passes, and each check's result (``ok``, ``detail``)."""
        results: dict[str, dict[str, Any]] = {}
        healthy = True
        for name, check in self.checks.items():
            try:
                ok, detail = check()
            except Exception as exc:
                ok, detail = False, f"check failed: {exc}"
            results[name] = {"ok": ok, "detail": detail}
            healthy = healthy and ok
        return healthy, results

    def _uptime(self) -> float:
        return round(time.time() - self.started, 1)

    async def _livez(self, request: web.Request) -> web.Response:
        body = {"service": self.name, "status": "ok", "uptime_seconds": self._uptime()}
        return _json(body)

    async def _readyz(self, request: web.Request) -> web.Response:
        healthy, results = self.health()
        body = {
            "service": self.name,
            "status": "ok" if healthy else "unhealthy",
            "uptime_seconds": self._uptime(),
            "checks": results,
        }
        return _json(body, 200 if healthy else 503)

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    async def start_http(self) -> None:
        """Serve the app (with /livez, /readyz, /healthz and /metrics) on the service's host and port."""
        self._runner = web.AppRunner(
            self.app, access_log=None, auto_decompress=self._auto_decompress
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.settings.http_host, self.port, reuse_address=True)
        try:
            await site.start()
        except OSError as exc:
            raise KemiError(
                f"{self.name}: cannot listen on {self.settings.http_host}:{self.port}: {exc.strerror}"
            ) from exc
        log.info("%s: http on %s:%s", self.name, self.settings.http_host, self.port)

    async def stop_http(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def run(self, main: Callable[[ServiceRuntime], Awaitable[None]]) -> int:
        """Run ``main(self)`` with the HTTP server until it returns or a signal arrives."""
        setup_logging(self.name, self.settings.log_level)

        async def _amain() -> None:
            loop = asyncio.get_running_loop()
            task = asyncio.current_task()
            assert task is not None
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, task.cancel)
            await self.start_http()
            try:
                await main(self)
            finally:
                await self.stop_http()

        try:
            # uvloop: the same asyncio, its loop and transports in C (an aggregator request
            # costs less CPU: bench/RESULTS.md, remote_write)
            uvloop.run(_amain())
        except (asyncio.CancelledError, KeyboardInterrupt):
            log.info("%s: stopped", self.name)
        except KemiError as exc:
            print(f"{self.name}: {exc}", file=sys.stderr)
            return 1
        return 0
