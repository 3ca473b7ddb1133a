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

These and ``GET /metrics`` are served by the service's own app, on its port, unless
the service gives an ``admin_port``: then they are served on that port alone (plain
HTTP, same host) and the service's app answers 404 for them. A service may serve its
app over HTTPS (``ssl_context``); the admin listener stays plain HTTP.

While it runs, the process is registered in etcd under a lease with those pages' URLs
(:mod:`kemi_stats.registry.instances`, ``kemi-stats services``).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import os
import signal
import ssl
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import uvloop
from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    generate_latest,
    multiprocess,
)

from kemi_stats.errors import KemiError
from kemi_stats.registry.instances import InstanceRegistration, describe, instance_id
from kemi_stats.settings import Settings

__all__ = [
    "HealthCheck",
    "ServiceRuntime",
    "arm_stop_deadline",
    "disarm_stop_deadline",
    "setup_logging",
]

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
        ssl_context: ssl.SSLContext | None = None,
        admin_port: int | None = None,
        worker: int | None = None,
    ) -> None:
        """``worker``: this process's index among several of the service on one port
        (SO_REUSEPORT, shown on its health pages; worker 0 keeps the registration)."""
        self.name = name
        self.settings = settings
        self.started = time.time()
        #: the id this process registers under: health pages name it, so `kemi-stats
        #: services` can tell a dead instance's port from a successor answering on it
        self.instance = instance_id()
        self.checks: dict[str, HealthCheck] = {}
        self.app = app if app is not None else web.Application()
        #: the app serving /livez, /readyz, /healthz and /metrics: the service's own app,
        #: or one of its own on ``admin_port``
        self.admin_app = self.app if admin_port is None else web.Application()
        self.admin_app.router.add_get("/livez", self._livez)
        self.admin_app.router.add_get("/readyz", self._readyz)
        self.admin_app.router.add_get("/healthz", self._readyz)
        self.admin_app.router.add_get("/metrics", self._metrics)
        self._runners: list[web.AppRunner] = []
        self.port = settings.http_port if settings.http_port is not None else default_port
        self.admin_port = admin_port
        self._auto_decompress = auto_decompress
        self._ssl_context = ssl_context
        self.worker = worker

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
        body = {
            "service": self.name,
            "instance": self.instance,
            "status": "ok",
            "uptime_seconds": self._uptime(),
        }
        if self.worker is not None:
            body["worker"] = self.worker
        return _json(body)

    async def _readyz(self, request: web.Request) -> web.Response:
        healthy, results = self.health()
        body = {
            "service": self.name,
            "instance": self.instance,
            "status": "ok" if healthy else "unhealthy",
            "uptime_seconds": self._uptime(),
            "checks": results,
        }
        if self.worker is not None:
            body["worker"] = self.worker
        return _json(body, 200 if healthy else 503)

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(_metrics_registry()), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    async def start_http(self) -> None:
        """Serve the app on the service's host and port, and the admin app on its own port if any."""
        await self._serve(self.app, self.port, self._ssl_context, self._auto_decompress)
        if self.admin_port is not None:
            await self._serve(self.admin_app, self.admin_port, None, True)

    async def _serve(
        self,
        app: web.Application,
        port: int,
        ssl_context: ssl.SSLContext | None,
        auto_decompress: bool,
    ) -> None:
        runner = web.AppRunner(app, access_log=None, auto_decompress=auto_decompress)
        await runner.setup()
        self._runners.append(runner)
        host = self.settings.http_host
        site = web.TCPSite(
            runner,
            host,
            port,
            reuse_address=True,
            reuse_port=self.worker is not None or None,
            ssl_context=ssl_context,
        )
        try:
            await site.start()
        except OSError as exc:
            raise KemiError(f"{self.name}: cannot listen on {host}:{port}: {exc.strerror}") from exc
        scheme = "https" if ssl_context is not None else "http"
        admin = " (admin)" if app is not self.app else ""
        log.info("%s: %s%s on %s:%s", self.name, scheme, admin, host, port)

    def bound_port(self, app: web.Application) -> int:
        """The port ``app`` listens on (the real one when the setting was 0)."""
        for runner in self._runners:
            if runner.app is app:
                for address in runner.addresses:
                    if isinstance(address, tuple) and len(address) >= 2:
                        return int(address[1])
        return self.port if app is self.app else int(self.admin_port or 0)

    def registration(self) -> InstanceRegistration:
        """This instance's registration in etcd, naming the listener of /healthz and /metrics."""
        tls = self._ssl_context is not None and self.admin_app is self.app
        doc = describe(self.name, self.settings, self.bound_port(self.admin_app), tls=tls)
        return InstanceRegistration(self.settings, doc)

    async def stop_http(self) -> None:
        for runner in reversed(self._runners):
            await runner.cleanup()
        self._runners.clear()

    def run(self, main: Callable[[ServiceRuntime], Awaitable[None]]) -> int:
        """Run ``main(self)`` with the HTTP server until it returns or a signal arrives."""
        setup_logging(self.name, self.settings.log_level)

        async def _amain() -> None:
            loop = asyncio.get_running_loop()
            task = asyncio.current_task()
            assert task is not None

            def stop() -> None:
                arm_stop_deadline(self.name, self.settings.stop_timeout)
                task.cancel()

            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop)
            await self.start_http()
            registration = None
            try:
                if not self.worker:  # one process, or the first of several
                    registration = self.registration().start()
                await main(self)
            finally:
                # revoked first: `kemi-stats services` drops a stopping instance at once
                if registration is not None:
                    await registration.stop()
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
        finally:
            disarm_stop_deadline()
        return 0


_deadline_lock = threading.Lock()
_deadline: threading.Timer | None = None


def arm_stop_deadline(name: str, seconds: float) -> None:
    """The process is stopping: it ends within ``seconds`` whatever its stop waits on.

    A stop waits on its peers (the last writes to a TSDB, the last offset commit, leaving
    the consumer group); when they are gone too (a killed ``kemi-stats up`` stops the
    broker with the services) those waits could add up past what a supervisor allows.
    Exiting then loses nothing: uncommitted work is read again by the partitions' next
    owner. Armed once: a repeated signal (a process group signalled, then each process)
    changes nothing.
    """
    global _deadline
    with _deadline_lock:
        if _deadline is None:
            _deadline = threading.Timer(
                seconds, _hard_exit, (name, f"not stopped {seconds:g} s after the signal")
            )
            _deadline.daemon = True
            _deadline.start()


def disarm_stop_deadline() -> None:
    """The stop is done: no exit is forced any more."""
    global _deadline
    with _deadline_lock:
        if _deadline is not None:
            _deadline.cancel()
            _deadline = None


def _hard_exit(name: str, why: str) -> None:
    # straight to the file descriptor: the logging handlers' locks may be held
    line = (
        f"{time.strftime('%Y-%m-%d %H:%M:%S')} WARNING {name} {__name__}: exiting now ({why}); "
        "unfinished work is read again by the next owner\n"
    )
    with contextlib.suppress(OSError):
        os.write(2, line.encode())
    os._exit(1)


def _metrics_registry() -> CollectorRegistry:
    """This process's metrics, or those of every process of the service when they share a
    ``PROMETHEUS_MULTIPROC_DIR`` (several aggregator workers on one port)."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry


def run_main(name: str, module: str) -> int:
    """Import ``module`` and return its ``main()``, as ``python -m`` runs a service.

    Settings are read on import or first in ``main``; a :class:`KemiError` there (an
    invalid ``KEMI_*`` variable, an unreadable keyring) ends the process with one line
    naming it and exit status 1, not a traceback.
    """
    try:
        return int(importlib.import_module(module).main())
    except KemiError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 1
