"""The notifier process: ``kemi.alerts`` -> :class:`Pipeline` -> webhooks; commits what is finished.

Fetching never waits for a receiver: records are routed to per-receiver queues at
once and the loop goes on. Offsets are committed up to the oldest record some
receiver has not finished (delivered, dead-lettered or skipped), see
:mod:`alerting.notifier.commits`. Fetching pauses only when ``max_in_flight``
records are unfinished, which bounds memory when a receiver is down for long.
"""

from __future__ import annotations

import asyncio
import logging
import time

import aiohttp
from aiohttp import web
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from prometheus_client import Counter, Gauge

from alerting.notifier.commits import OffsetTracker
from alerting.notifier.deadletter import DeadLetters
from alerting.notifier.dedup import NotificationLog
from alerting.notifier.pipeline import Pipeline
from alerting.notifier.send import WebhookSender
from alerting.settings import AlertingSettings
from alerting.silences import SilenceSet
from alerting.topics import ensure_alerting_topics
from kemi_stats.codec import decode_alert
from kemi_stats.errors import CodecError
from kemi_stats.kafka import make_consumer, make_producer
from kemi_stats.registry.live import Change, LiveView
from kemi_stats.registry.store import Registry
from kemi_stats.service import ServiceRuntime
from kemi_stats.settings import Settings, load_settings

__all__ = ["NotifierService", "main"]

log = logging.getLogger(__name__)

NAME = "notifier"

RECORDS = Counter("kemi_notifier_records_total", "kemi.alerts records consumed")
DECODE_ERRORS = Counter("kemi_notifier_decode_errors_total", "Records that did not decode")
IN_FLIGHT = Gauge("kemi_notifier_in_flight_records", "Records not yet finished by every receiver")


class _Rebalance(ConsumerRebalanceListener):
    def __init__(self, service: NotifierService) -> None:
        self.service = service

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self.service.commit()
        self.service.tracker.forget(tp.partition for tp in revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        log.info("assigned partitions %s", sorted(tp.partition for tp in assigned))


class NotifierService:
    """One notifier instance."""

    def __init__(self, settings: Settings, asettings: AlertingSettings | None = None) -> None:
        self.settings = settings
        self.asettings = asettings or AlertingSettings()
        self.tracker = OffsetTracker()
        self.silences = SilenceSet()
        self.consumer: AIOKafkaConsumer | None = None
        self._committed: dict[int, int] = {}

    async def commit(self) -> None:
        assert self.consumer is not None
        topic = self.asettings.alerts_topic
        offsets = {
            TopicPartition(topic, p): o
            for p, o in self.tracker.committable().items()
            if self._committed.get(p) != o
        }
        if not offsets:
            return
        try:
            await asyncio.wait_for(self.consumer.commit(offsets), 5.0)
        except Exception as exc:
            log.warning("offset commit failed (will retry): %s", exc)
            return
        self._committed.update({tp.partition: o for tp, o in offsets.items()})

    async def run(self, runtime: ServiceRuntime) -> None:
        s, a = self.settings, self.asettings
        await ensure_alerting_topics(s.kafka_bootstrap, a)
        registry = Registry(s.etcd_endpoint, s.etcd_prefix)
        view = LiveView(registry, kinds=["receiver", "silence"])
        await asyncio.to_thread(view.start)
        loop = asyncio.get_running_loop()

        def reload(change: Change | None = None) -> None:
            self.silences.update(view.get("silence"))

        reload()

        def on_change(change: Change) -> None:
            loop.call_soon_threadsafe(reload, change)

        view.subscribe(on_change)
        notes = NotificationLog(s.data_dir / "notifier" / "notifications.sqlite")
        producer = make_producer(s)
        await producer.start()
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        pipeline = Pipeline(
            a,
            lambda: view.get("receiver"),
            self.silences,
            notes,
            WebhookSender(session),
            DeadLetters(producer, a.dead_topic),
        )
        runtime.add_check("registry", lambda: (view.connected, f"etcd revision {view.revision}"))
        runtime.add_check(
            "receivers",
            lambda: (True, f"retrying for over 60 s: {pipeline.stuck(60.0) or 'none'}"),
        )
        self.consumer = consumer = make_consumer(
            s, group_id=a.notifier_group, fetch_max_wait_ms=a.fetch_max_wait_ms
        )
        await consumer.start()
        consumer.subscribe([a.alerts_topic], listener=_Rebalance(self))
        log.info("notifying from %s (dead letters: %s)", a.alerts_topic, a.dead_topic)
        last_commit = time.monotonic()
        try:
            while True:
                if self.tracker.in_flight >= a.max_in_flight:
                    await asyncio.sleep(0.05)
                else:
                    records = await consumer.getmany(timeout_ms=100, max_records=1000)
                    for tp, recs in records.items():
                        for rec in recs:
                            RECORDS.inc()
                            try:
                                event = decode_alert(rec.value)
                            except CodecError as exc:
                                DECODE_ERRORS.inc()
                                log.warning(
                                    "%s[%d]@%d: %s", tp.topic, tp.partition, rec.offset, exc
                                )
                                self.tracker.add(tp.partition, rec.offset, 0)
                                continue
                            targets = pipeline.targets(event)
                            ack = self.tracker.add(tp.partition, rec.offset, len(targets))
                            pipeline.submit(event, targets, ack)
                IN_FLIGHT.set(self.tracker.in_flight)
                if time.monotonic() - last_commit >= 0.5:
                    last_commit = time.monotonic()
                    await self.commit()
        finally:
            await pipeline.stop()
            try:
                await asyncio.shield(self.commit())
            except Exception:
                log.exception("final commit failed")
            await consumer.stop()
            await producer.stop()
            await session.close()
            notes.close()
            view.stop()
            registry.close()


def main() -> int:
    """Entry point of ``python -m alerting.notifier``."""
    settings = load_settings()
    service = NotifierService(settings)
    runtime = ServiceRuntime(NAME, settings, web.Application())
    return runtime.run(service.run)
