"""Each service instance's health, throughput and lag, read from its ``/healthz`` and ``/metrics``.

Throughput is the rate of one counter per service between two reads; lag is the
service's lag gauge where it has one. The topics come from the broker, the config
revision from the registry view.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
from prometheus_client.parser import text_string_to_metric_families

from console import metrics as m

__all__ = ["LAG", "THROUGHPUT", "PlatformStatus", "ServiceStatus"]

log = logging.getLogger(__name__)

#: service -> (counter sample whose rate is its throughput, unit shown)
THROUGHPUT: dict[str, tuple[str, str]] = {
    "poller-scheduler": ("kemi_poller_scheduler_jobs_published_total", "jobs/s"),
    "poller": ("kemi_poller_polls_total", "polls/s"),
    "aggregator": ("kemi_aggregator_samples_accepted_total", "samples/s"),
    "calculator": ("kemi_calculator_samples_in_total", "samples/s"),
    "alert-evaluator": ("kemi_alert_evaluator_samples_total", "samples/s"),
    "notifier": ("kemi_notifier_notifications_total", "notifications/s"),
    "forwarder": ("kemi_forwarder_points_written_total", "points/s"),
}
#: service -> (lag gauge sample, unit shown)
LAG: dict[str, tuple[str, str]] = {
    "alert-evaluator": ("kemi_alert_evaluator_event_lag_seconds", "s"),
    "forwarder": ("kemi_forwarder_lag_records", "records"),
}


@dataclass(slots=True)
class ServiceStatus:
    """What one service instance answered on its last read."""

    name: str
    url: str
    healthy: bool | None = None
    detail: str = ""
    checks: dict[str, Any] = field(default_factory=dict)
    uptime_s: float | None = None
    throughput: float | None = None
    throughput_unit: str = ""
    lag: float | None = None
    lag_unit: str = ""
    _counter: tuple[float, float] | None = None


def _sum_samples(text: str, names: set[str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in names:
                out[sample.name] = out.get(sample.name, 0.0) + float(sample.value)
    return out


class PlatformStatus:
    """Reads every service's health and metrics every ``interval`` seconds."""

    def __init__(self, services: dict[str, str], interval: float, timeout: float) -> None:
        self.interval = interval
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self.services = {name: ServiceStatus(name, url) for name, url in services.items()}
        self.read_at: float | None = None
        self._http: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()

    async def _read_one(self, http: aiohttp.ClientSession, st: ServiceStatus) -> None:
        try:
            async with http.get(st.url + "/healthz") as resp:
                doc = orjson.loads(await resp.read())
            if not isinstance(doc, dict):
                raise ValueError("/healthz is not a JSON object")
            st.healthy = resp.status == 200
            st.checks = {
                k: v for k, v in dict(doc.get("checks") or {}).items() if isinstance(v, dict)
            }
            st.uptime_s = doc.get("uptime_seconds")
            bad = [f"{k}: {v.get('detail', '')}" for k, v in st.checks.items() if not v.get("ok")]
            st.detail = "; ".join(bad) if bad else "ok"
            async with http.get(st.url + "/metrics") as resp:
                text = (await resp.read()).decode(errors="replace")
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
            m.SOURCE_ERRORS.labels("service").inc()
            st.healthy, st.detail = False, f"unreachable: {str(exc) or type(exc).__name__}"
            st.throughput = st.lag = None
            return
        counter = THROUGHPUT.get(st.name)
        lag = LAG.get(st.name)
        names = {pair[0] for pair in (counter, lag) if pair is not None}
        try:
            values = _sum_samples(text, names)
        except ValueError as exc:
            st.detail = f"unreadable /metrics: {exc}"
            return
        now = time.monotonic()
        if counter and counter[0] in values:
            total = values[counter[0]]
            if st._counter is not None and now > st._counter[0] and total >= st._counter[1]:
                st.throughput = (total - st._counter[1]) / (now - st._counter[0])
            else:  # the first read, or the counter restarted with its process
                st.throughput = None
            st._counter = (now, total)
            st.throughput_unit = counter[1]
        if lag and lag[0] in values:
            st.lag, st.lag_unit = values[lag[0]], lag[1]

    async def refresh(self) -> None:
        if self._http is None:  # one client (and its connection pool) for every read
            self._http = aiohttp.ClientSession(timeout=self.timeout)
        http = self._http
        await asyncio.gather(*(self._read_one(http, st) for st in self.services.values()))
        self.read_at = time.time()
        m.REFRESHES.labels("services").inc()

    async def run(self) -> None:
        while True:
            try:
                await self.refresh()
            except Exception:  # never stop reading: the page would go stale silently
                m.SOURCE_ERRORS.labels("service").inc()
                log.exception("reading the services")
            await asyncio.sleep(self.interval)
