"""``/healthz``, ``/livez``, ``/readyz`` and Prometheus ``/metrics`` on the Faust worker's web server.

``/readyz`` is ``/healthz`` (the registry watch, definitions, table recovery);
``/livez`` answers 200 while the worker's event loop serves pages, so a liveness probe
does not restart a worker that waits for Kafka or etcd.
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from calculator.agents import definitions
from calculator.app import app
from kemi_stats.registry.instances import instance_id

__all__ = ["healthz", "livez", "metrics_page", "readyz"]

_STARTED = time.time()
INSTANCE = instance_id()


def _checks() -> dict[str, tuple[bool, str]]:
    view = definitions.view
    defs = definitions.definitions
    recovered = app.tables.recovery.completed.is_set()  # type: ignore[attr-defined]
    return {
        "registry": (
            view is not None and view.connected,
            f"revision {view.revision}" if view is not None else "not started",
        ),
        "definitions": (
            True,
            f"{len(defs)} in force, {len(defs.invalid)} invalid"
            + (f": {', '.join(sorted(defs.invalid))}" if defs.invalid else ""),
        ),
        "tables": (recovered, "recovered" if recovered else "recovering"),
    }


def _health(page: Any) -> Any:
    checks = _checks()
    healthy = all(ok for ok, _ in checks.values())
    body = {
        "service": "calculator",
        # the id it registers under: `kemi-stats services` tells it from a successor on its port
        "instance": INSTANCE,
        "status": "ok" if healthy else "unhealthy",
        "uptime_seconds": round(time.time() - _STARTED, 1),
        "checks": {name: {"ok": ok, "detail": detail} for name, (ok, detail) in checks.items()},
    }
    return page.json(body, status=200 if healthy else 503)


@app.page("/healthz")
async def healthz(self: Any, request: Any) -> Any:
    """The service's health: registry watch, definitions, table recovery."""
    return _health(self)


@app.page("/readyz")
async def readyz(self: Any, request: Any) -> Any:
    """Readiness: the same checks and answer as ``/healthz``."""
    return _health(self)


@app.page("/livez")
async def livez(self: Any, request: Any) -> Any:
    """Liveness: the worker's event loop answers."""
    return self.json({"service": "calculator", "instance": INSTANCE, "status": "alive"})


@app.page("/metrics")
async def metrics_page(self: Any, request: Any) -> Any:
    """Prometheus self-metrics (``kemi_calculator_*`` and the process collectors)."""
    # aiohttp refuses a charset in ``content_type=``; the exposition format needs it
    return self.bytes(generate_latest(REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST})
