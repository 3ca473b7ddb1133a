"""The pending and firing alerts, read from the alert evaluator's ``/api/v1/alerts``.

One read serves every page request for ``max_age`` seconds, so a busy console costs the
evaluator at most one request per ``max_age``; concurrent requests share the read.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from console import metrics as m

__all__ = ["AlertsSource", "AlertsView"]

log = logging.getLogger(__name__)


@dataclass(slots=True)
class AlertsView:
    """What the evaluator answered: its alerts, when, and the error if it did not."""

    alerts: list[dict[str, Any]] = field(default_factory=list)
    now_ms: int = 0
    read_at: float = 0.0
    error: str | None = None


class AlertsSource:
    """Reads the evaluator's alerts on demand, at most once per ``max_age`` seconds."""

    def __init__(self, url: str, max_age: float, timeout: float) -> None:
        self.url = url.rstrip("/") + "/api/v1/alerts"
        self.max_age = max_age
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self._view = AlertsView()
        self._lock = asyncio.Lock()
        self._http: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()

    async def current(self, fresh: bool = False) -> AlertsView:
        """The alerts now (a cached read younger than ``max_age``, unless ``fresh``)."""
        if not fresh and time.monotonic() - self._view.read_at < self.max_age:
            return self._view
        async with self._lock:
            if not fresh and time.monotonic() - self._view.read_at < self.max_age:
                return self._view
            self._view = await self._read()
            return self._view

    async def _read(self) -> AlertsView:
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=self.timeout)
        try:
            async with self._http.get(self.url) as resp:
                body = await resp.read()
                if resp.status != 200:
                    raise ValueError(f"HTTP {resp.status}")
            doc = orjson.loads(body)
            view = AlertsView(list(doc["alerts"]), int(doc.get("now_ms") or time.time() * 1000))
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError, KeyError) as exc:
            m.SOURCE_ERRORS.labels("alerts").inc()
            reason = str(exc) or type(exc).__name__
            log.warning("alert evaluator %s: %s", self.url, reason)
            view = AlertsView(error=f"alert evaluator {self.url}: {reason}")
        view.read_at = time.monotonic()
        return view
