"""The notifier process: ``kemi.alerts`` -> :class:`Pipeline` -> webhooks; commits what is finished.

Fetching never waits for a receiver: records are routed to per-receiver queues at
once and the loop goes on. Offsets are committed up to the oldest record some
receiver has not finished (delivered, dead-lettered or skipped), see
:mod:`kemi_stats.consumer`. Fetching pauses only when ``max_in_flight``
records are unfinished, which bounds memory when a receiver is down for long. A slow
receiver therefore holds the *commit point* back, never another receiver's
deliveries: after a crash the records past the commit point are read again, and the
notification log (dedup stage) plus the Idempotency-Key keep that from reaching a
receiver twice.
"""

from __future__ import annotations

import asyncio
import logging

import aiohttp

from alerting.notifier import metrics as m
from alerting.notifier.deadletter import DeadLetters
from alerting.notifier.dedup import NotificationLog
from alerting.notifier.pipeline import Pipeline
from alerting.notifier.send import WebhookSender
from alerting.settings import AlertingSettings
from alerting.silences import SilenceSet
from alerting.topics import ensure_alerting_topics
from kemi_stats.codec import decode_alert
from kemi_stats.consumer import ConsumerLoop
from kemi_stats.errors import CodecError
from kemi_stats.kafka import make_consumer, make_producer
from kemi_stats.keyring import require_keyring
from kemi_stats.registry.live import LiveView
from kemi_stats.runtime import ServiceRuntime
from kemi_stats.settings import Settings, load_settings

__all__ = ["NAME", "PORT", "NotifierService", "main"]

log = logging.getLogger(__name__)

NAME = "notifier"
#: default HTTP port (/healthz, /metrics); KEMI_HTTP_PORT overrides it
PORT = 9105


class NotifierService:
    """One notifier instance."""

    def __init__(self, settings: Settings, asettings: AlertingSettings | None = None) -> None:
        self.settings = settings
        self.asettings = asettings or AlertingSettings()
        self.silences = SilenceSet()
        self.loop: ConsumerLoop | None = None

    async def run(self, runtime: ServiceRuntime) -> None:
        s, a = self.settings, self.asettings
        keyring = require_keyring(s, "notifier")  # receiver secrets and headers, in clear
        await ensure_alerting_topics(s, a)
        view = await LiveView.open(s, ["receiver", "silence"], keyring=keyring)
        self.silences.update(view.get("silence"))
        view.subscribe_on(
            asyncio.get_running_loop(), lambda _: self.silences.update(view.get("silence"))
        )
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
            a.links(s.tsdb_url),
        )
        runtime.add_check("registry", lambda: (view.connected, f"etcd revision {view.revision}"))
        runtime.add_check(
            "receivers",
            lambda: (True, f"retrying for over 60 s: {pipeline.stuck(60.0) or 'none'}"),
        )
        consumer = make_consumer(
            s, group_id=a.notifier_group, fetch_max_wait_ms=a.fetch_max_wait_ms
        )
        self.loop = loop = ConsumerLoop(
            consumer,
            [a.alerts_topic],
            group=a.notifier_group,
            commit_interval=0.5,
            busy=lambda: loop.tracker.pending >= a.max_in_flight,
        )
        await loop.start()
        log.info("notifying from %s (dead letters: %s)", a.alerts_topic, a.dead_topic)
        try:
            while True:
                records = await loop.fetch(timeout_ms=100, max_records=1000)
                for tp, recs in records.items():
                    for rec in recs:
                        m.RECORDS.inc()
                        try:
                            event = decode_alert(rec.value)
                        except CodecError as exc:
                            m.DECODE_ERRORS.inc()
                            log.warning("%s[%d]@%d: %s", tp.topic, tp.partition, rec.offset, exc)
                            loop.begin(tp, rec.offset, acks=0)
                            continue
                        targets = pipeline.targets(event)
                        pipeline.submit(
                            event, targets, loop.begin(tp, rec.offset, acks=len(targets))
                        )
                m.IN_FLIGHT.set(loop.tracker.pending)
        finally:
            await loop.stop(drain=pipeline.stop)
            await producer.stop()
            await session.close()
            notes.close()
            view.close()


def main() -> int:
    """Entry point of ``python -m alerting.notifier``."""
    settings = load_settings()
    service = NotifierService(settings)
    runtime = ServiceRuntime(NAME, settings, PORT)
    return runtime.run(service.run)
