"""``kemi.alerts`` -> the ``ALERTS`` series, as Prometheus writes it.

``ALERTS{alertname, alertstate, resource, severity, ...} 1`` exists while an alert is
pending or firing (``alertstate``), and stops when it resolves: a point at each
transition, then one every ``alerts_interval`` while the alert lasts (Prometheus writes
one per evaluation), so dashboards and queries see the state at any time. It comes from
the alert transitions, not from ``kemi.metrics``, so rules never see it.

The state (which alerts are pending or firing) is rebuilt from the topic itself: on
assignment each partition is read from its beginning, and records produced before the
assignment only rebuild the state; later ones are also written. So a restart neither
loses firing alerts (the evaluator's ``repeat`` transitions keep them on the topic
within its retention) nor writes old transitions twice. No offsets are committed; the
consumer group only shares the partitions between forwarder instances.
"""

from __future__ import annotations

import asyncio
import logging
import time

from aiokafka import TopicPartition

from forwarder.lineprotocol import BatchEncoder, EncodeStats
from forwarder.settings import ForwarderSettings
from forwarder.writer import Origin, TsdbWriter
from kemi_stats.codec import decode_alert
from kemi_stats.consumer import RebalanceListener
from kemi_stats.consumer.lag import LagClock
from kemi_stats.consumer.loop import oldest_timestamp
from kemi_stats.errors import CodecError
from kemi_stats.kafka import make_consumer
from kemi_stats.model import AlertEvent, Sample, SampleBatch, Source
from kemi_stats.settings import Settings

__all__ = ["ALERTS_METRIC", "AlertSeries", "alerts_point"]

ALERTS_METRIC = "ALERTS"
_ACTIVE = {"pending": "pending", "firing": "firing", "repeat": "firing"}

log = logging.getLogger(__name__)


def alerts_point(event: AlertEvent, state: str, time_ms: int) -> SampleBatch:
    """The ALERTS point of an alert in ``state`` (pending or firing) at ``time_ms``."""
    labels = {k: v for k, v in event.labels.items() if k != "resource"}
    labels.update(alertname=event.rule, alertstate=state)
    if event.severity:
        labels["severity"] = event.severity
    sample = Sample(ALERTS_METRIC, 1.0, labels)
    return SampleBatch(event.resource_id, time_ms, Source.PUSH, [sample])


class AlertSeries:
    """Follows the alert transitions of the partitions it holds and writes ALERTS."""

    def __init__(
        self, settings: Settings, fwd: ForwarderSettings, encoder: BatchEncoder, writer: TsdbWriter
    ) -> None:
        self.settings = settings
        self.fwd = fwd
        self.encoder = encoder
        self.writer = writer
        #: (partition, fingerprint) -> the latest pending/firing transition and its state
        self.active: dict[tuple[int, str], tuple[AlertEvent, str]] = {}
        self._assigned_ms: dict[int, int] = {}
        self._consumer = make_consumer(
            settings, group_id=fwd.alerts_group_id, client_id="kemi-forwarder-alerts"
        )
        self.lag = LagClock(fwd.alerts_group_id, fwd.alerts_topic)

    async def _on_revoked(self, revoked: set[TopicPartition]) -> None:
        gone = {tp.partition for tp in revoked}
        self.active = {k: v for k, v in self.active.items() if k[0] not in gone}

    async def _on_assigned(self, assigned: set[TopicPartition]) -> None:
        now_ms = int(time.time() * 1000)
        for tp in assigned:
            self._assigned_ms[tp.partition] = now_ms
        if assigned:
            self._consumer.seek_to_beginning(*assigned)

    def apply(self, partition: int, event: AlertEvent, write_ms: int | None) -> SampleBatch | None:
        """Follow one transition; the point to write for it (None while replaying)."""
        key = (partition, event.fingerprint)
        state = _ACTIVE.get(event.status)
        if state is None:  # resolved, or a pending alert that went back to ok
            self.active.pop(key, None)
            return None
        self.active[key] = (event, state)
        if write_ms is None:
            return None
        return alerts_point(event, state, write_ms)

    async def _write(self, batches: list[SampleBatch], why: str) -> None:
        if not batches:
            return
        lines: list[str] = []
        stats = EncodeStats()
        for b in batches:
            self.encoder.encode(b, lines, stats)
        await self.writer.write(lines, stats.points, Origin({}, f"{self.fwd.alerts_topic} ({why})"))

    async def run(self) -> None:
        """Consume and write until cancelled."""
        consumer = self._consumer
        await consumer.start()
        consumer.subscribe(
            [self.fwd.alerts_topic], listener=RebalanceListener(self._on_revoked, self._on_assigned)
        )
        every = self.fwd.alerts_interval
        next_refresh = time.monotonic() + every
        try:
            while True:
                records = await consumer.getmany(timeout_ms=500, max_records=1000)
                self.lag.fetched(oldest_timestamp(records))
                points: list[SampleBatch] = []
                for tp, recs in records.items():
                    since = self._assigned_ms.get(tp.partition, 0)
                    for rec in recs:
                        try:
                            event = decode_alert(rec.value)
                        except CodecError as exc:
                            log.warning("%s[%d]@%d: %s", tp.topic, tp.partition, rec.offset, exc)
                            continue
                        fresh = rec.timestamp >= since
                        point = self.apply(
                            tp.partition, event, event.event_time_ms if fresh else None
                        )
                        if point is not None:
                            points.append(point)
                await self._write(points, "transitions")
                if every and time.monotonic() >= next_refresh:
                    next_refresh = time.monotonic() + every
                    now_ms = int(time.time() * 1000)
                    await self._write(
                        [alerts_point(ev, state, now_ms) for ev, state in self.active.values()],
                        "active alerts",
                    )
        finally:
            await asyncio.shield(consumer.stop())
