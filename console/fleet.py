"""The fleet's last poll results, read from the TSDB in the background.

For every resource: the newest ``snmp_up`` (``up`` for scrape targets) and, when it
is 0, the ``reason`` label of the newest ``snmp_poll_error`` (``scrape_error``), as
stored (each series' newest sample at its own time: a target polled once already has a
result; one value per series comes back, however long the window). A few queries per
refresh cover the whole fleet, so the targets page renders from memory however many
targets there are.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from console import metrics as m
from kemi_stats.tsdb import QueryClient, RangeQuery, Series, TsdbError

__all__ = ["FleetStatus", "PollResult"]

log = logging.getLogger(__name__)

#: (up metric, error metric) per kind of target
_PAIRS = (("snmp_up", "snmp_poll_error"), ("up", "scrape_error"))
#: how far back a result still counts (a few poll intervals)
_LOOKBACK = 600.0


@dataclass(frozen=True, slots=True)
class PollResult:
    """The newest poll result of one resource."""

    up: bool
    at: float
    reason: str = ""


def _newest(series: list[Series]) -> dict[str, tuple[float, float, dict[str, str]]]:
    """resource -> (time, value, labels) of its newest point over all its series."""
    out: dict[str, tuple[float, float, dict[str, str]]] = {}
    for s in series:
        resource = s.labels.get("resource")
        if resource is None or not s.points:
            continue
        t, v = s.points[-1]
        if resource not in out or t > out[resource][0]:
            out[resource] = (t, v, s.labels)
    return out


class FleetStatus:
    """resource -> :class:`PollResult`, refreshed every ``interval`` seconds."""

    def __init__(self, client: QueryClient, interval: float) -> None:
        self.client = client
        self.interval = interval
        self.results: dict[str, PollResult] = {}
        self.read_at: float | None = None
        self.error: str | None = None

    def get(self, resource: str) -> PollResult | None:
        return self.results.get(resource)

    def read(self, now: float | None = None) -> dict[str, PollResult]:
        """Query the TSDB once (blocking; run it in a thread)."""
        end = time.time() if now is None else now
        out: dict[str, PollResult] = {}
        for up_metric, error_metric in _PAIRS:
            ups = _newest(
                self.client.query_range(RangeQuery(up_metric, end - _LOOKBACK, end, latest=True))
            )
            errors = _newest(
                self.client.query_range(RangeQuery(error_metric, end - _LOOKBACK, end, latest=True))
            )
            for resource, (t, v, _) in ups.items():
                reason = ""
                if v < 1 and resource in errors:
                    reason = errors[resource][2].get("reason", "")
                out[resource] = PollResult(v >= 1, t, reason)
        return out

    async def refresh(self) -> None:
        """Read once and keep the result (or the error, keeping the last good results)."""
        try:
            self.results = await asyncio.to_thread(self.read)
            self.read_at = time.time()
            self.error = None
            m.REFRESHES.labels("fleet").inc()
        except TsdbError as exc:
            m.SOURCE_ERRORS.labels("tsdb").inc()
            self.error = str(exc)
            log.warning("poll status from the TSDB: %s", exc)
        except Exception as exc:  # an answer we did not expect: say so, keep refreshing
            m.SOURCE_ERRORS.labels("tsdb").inc()
            self.error = f"unexpected answer: {exc!r}"
            log.exception("poll status from the TSDB")

    async def run(self) -> None:
        """Refresh forever."""
        while True:
            await self.refresh()
            await asyncio.sleep(self.interval)
