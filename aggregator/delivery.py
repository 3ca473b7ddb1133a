"""Handing a request's SampleBatches to Kafka and answering only once Kafka has them.

Guarantees, per request:

- **204** only after the broker acknowledged every record (``acks=all``).
- **429** (``Retry-After``) when the encoded bytes handed to Kafka and not yet
  acknowledged, over all requests, would pass ``max_inflight_bytes``. Nothing
  was sent.
- **503** (``Retry-After``) while Kafka is unavailable (the probe failed, or a
  send has waited longer than ``stall_after``). Nothing was sent.
- **503 outcome unknown**: the records were handed to Kafka but not all were
  acknowledged within ``delivery_timeout`` (or the producer failed some). Some
  may still be written; a client retry can then duplicate them. This is the one
  case a request is not all-or-nothing, and the body says so. The idempotent
  producer (used when the broker supports it) keeps the producer's own retries
  from duplicating records within a request.

The producer is librdkafka's (:mod:`kemi_stats.rdkafka_producer`): a third of
aiokafka's CPU per record on this path, which is most of the aggregator's work.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time

from aggregator.kafkahealth import KafkaProbe
from aggregator.metrics import DELIVERY_SECONDS, INFLIGHT_BYTES, KAFKA_AVAILABLE
from aggregator.rejection import Rejection
from aggregator.settings import AggregatorSettings
from kemi_stats.errors import TopicReplicationError
from kemi_stats.kafka_security import rdkafka_options
from kemi_stats.rdkafka_producer import AckedProducer, DeliveryFailed
from kemi_stats.settings import Settings
from kemi_stats.topics import METRICS_RAW, Replication, ensure_topics_async, renamed_specs

__all__ = ["Delivery"]

log = logging.getLogger(__name__)


class Delivery:
    """The producer, the in-flight byte bound and Kafka's availability, for all requests."""

    def __init__(self, settings: Settings, config: AggregatorSettings) -> None:
        self.settings = settings
        self.config = config
        self.topic = config.topic
        self.probe = KafkaProbe(
            settings,
            config.probe_interval,
            config.probe_timeout,
            idempotence=config.idempotence == "auto",
        )
        self.producer: AckedProducer | None = None
        self.idempotent = False
        self.inflight_bytes = 0
        self._pending: dict[int, float] = {}  # request seq -> when its records were handed over
        self._seq = itertools.count()
        self._tasks: list[asyncio.Task[None]] = []
        #: set when Kafka can never be used as configured (topics under-replicated)
        self._fatal: asyncio.Future[None] | None = None

    # --- lifecycle --------------------------------------------------------------------

    async def start(self) -> None:
        """Start probing and connecting in the background: the HTTP side serves 503 meanwhile."""
        self._fatal = asyncio.get_running_loop().create_future()
        self._tasks = [
            asyncio.create_task(self.probe.run(), name="kafka-probe"),
            asyncio.create_task(self._connect(), name="kafka-connect"),
        ]

    async def serve(self) -> None:
        """Until stopped; raises the KemiError that makes Kafka unusable as configured."""
        assert self._fatal is not None, "start() first"
        await self._fatal

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self.producer is not None:
            producer, self.producer = self.producer, None
            unsent = await producer.close(10.0)
            if unsent:
                log.warning(
                    "kafka %s: %d records unacknowledged at stop", producer.bootstrap, unsent
                )

    async def _connect(self) -> None:
        """Ensure topics and start the producer, retrying until Kafka answers."""
        while True:
            await self.probe.wait_ok()
            try:
                await self._ensure_topics()
                self.idempotent = self._want_idempotence()
                producer = AckedProducer(
                    self.settings.kafka_bootstrap,
                    client_id="kemi-aggregator",
                    idempotent=self.idempotent,
                    linger_ms=self.config.linger_ms,
                    delivery_timeout=self.config.delivery_timeout,
                    queue_bytes=self.config.max_inflight_bytes,
                    # a record of max_record_bytes with its key and batch framing always fits
                    max_request_bytes=max(8 << 20, self.config.max_record_bytes + (64 << 10)),
                    security=rdkafka_options(self.settings),
                )
                try:
                    await asyncio.to_thread(producer.partitions, self.topic)
                except BaseException:
                    await producer.close(0)
                    raise
            except TopicReplicationError as exc:
                # no retry helps: the topic needs replicas, or the setting a lower minimum
                if self._fatal is not None and not self._fatal.done():
                    self._fatal.set_exception(exc)
                return
            except Exception as exc:
                log.warning(
                    "kafka %s: producer not started: %s; retrying",
                    self.settings.kafka_bootstrap,
                    exc,
                )
                await asyncio.sleep(self.config.probe_interval)
                continue
            self.producer = producer
            log.info(
                "kafka %s: producing to %s (idempotent: %s)",
                self.settings.kafka_bootstrap,
                self.topic,
                self.idempotent,
            )
            return

    async def _ensure_topics(self) -> None:
        await ensure_topics_async(
            self.settings,
            renamed_specs({METRICS_RAW: self.topic}),
            Replication.from_settings(self.settings),
            admin=self.probe.admin,
        )

    def _want_idempotence(self) -> bool:
        mode = self.config.idempotence
        if mode == "auto":
            if not self.probe.idempotence:
                log.warning(
                    "kafka %s does not support idempotent producers: a producer retry after a lost "
                    "ack can write a record twice",
                    self.settings.kafka_bootstrap,
                )
            return bool(self.probe.idempotence)
        return mode == "on"

    # --- state ------------------------------------------------------------------------

    def oldest_pending_age(self) -> float:
        if not self._pending:
            return 0.0
        return time.monotonic() - min(self._pending.values())

    @property
    def available(self) -> bool:
        ok = (
            self.producer is not None
            and self.probe.ok
            and self.oldest_pending_age() < self.config.stall_after
        )
        KAFKA_AVAILABLE.set(1 if ok else 0)
        return ok

    def status(self) -> tuple[bool, str]:
        """For /healthz: the aggregator itself is healthy; Kafka's state is the detail."""
        if self.producer is None:
            return True, f"{self.probe.detail}; producer not started (pushes answered 503)"
        if not self.available:
            age = self.oldest_pending_age()
            stalled = f"; oldest unacked send {age:.1f} s" if age else ""
            return True, f"{self.probe.detail}{stalled} (pushes answered 503)"
        return True, f"{self.probe.detail}; in flight {self.inflight_bytes} bytes"

    # --- delivery ---------------------------------------------------------------------

    def _unavailable(self, message: str) -> Rejection:
        return Rejection(
            503, "kafka_unavailable", message, retry_after=self.config.retry_after_unavailable
        )

    async def deliver(self, records: list[tuple[bytes, bytes]], size: int) -> None:
        """Return once Kafka acknowledged every record (key, value), ``size`` bytes in all;
        a 429/503 Rejection otherwise."""
        if not records:
            return
        producer = self.producer
        if producer is None or not self.available:
            raise self._unavailable(
                f"Kafka is unavailable ({self.probe.detail}); nothing was written, retry later"
            )
        if self.inflight_bytes + size > self.config.max_inflight_bytes:
            raise Rejection(
                429,
                "busy",
                f"{self.inflight_bytes} bytes await Kafka's acks (limit "
                f"{self.config.max_inflight_bytes}); nothing was written, retry later",
                retry_after=self.config.retry_after_busy,
            )
        if producer.fatal:
            # librdkafka gave up on this producer (say, an idempotence sequence it cannot
            # repair): a new one takes over, requests meanwhile get 503
            self.producer = None
            self._tasks.append(asyncio.create_task(self._replace(producer), name="kafka-reconnect"))
            raise self._unavailable(
                f"Kafka producer failed ({producer.last_error}); nothing was written, retry later"
            )
        self._reserve(size)
        seq = next(self._seq)
        started = time.monotonic()
        self._pending[seq] = started
        acks = producer.send_all(self.topic, records)
        acks.add_done_callback(lambda f: self._settled(f, seq, size))
        try:
            async with asyncio.timeout(self.config.delivery_timeout):
                await asyncio.shield(acks)
        except TimeoutError:
            raise self._unavailable(
                f"Kafka did not acknowledge all {len(records)} records within "
                f"{self.config.delivery_timeout:g} s; outcome unknown: "
                "some may still be written"
            ) from None
        except DeliveryFailed as exc:
            if "MSG_SIZE_TOO_LARGE" in exc.reason or "too large" in exc.reason.lower():
                # the topic's max.message.bytes is below KEMI_AGGREGATOR_MAX_RECORD_BYTES:
                # the same request would fail again, so it is not a 503 to retry
                raise Rejection(
                    413,
                    "record_too_large",
                    f"Kafka refused {exc.failed} of {len(records)} records as too large "
                    f"({exc.reason}); lower KEMI_AGGREGATOR_MAX_RECORD_BYTES below the topic's "
                    "max.message.bytes. Outcome unknown: some records may have been written",
                ) from None
            raise self._unavailable(
                f"Kafka failed {exc.failed} of {len(records)} records of this request "
                f"({exc.reason}); outcome unknown: some may have been written"
            ) from None
        DELIVERY_SECONDS.observe(time.monotonic() - started)

    async def _replace(self, failed: AckedProducer) -> None:
        await failed.close(0)
        await self._connect()

    def _reserve(self, n: int) -> None:
        self.inflight_bytes += n
        INFLIGHT_BYTES.set(self.inflight_bytes)

    def _settled(self, acks: asyncio.Future[None], seq: int, n: int) -> None:
        """Every record of request ``seq`` is acked or failed: its bytes stop counting."""
        self.inflight_bytes -= n
        INFLIGHT_BYTES.set(self.inflight_bytes)
        self._pending.pop(seq, None)
        if not acks.cancelled():
            acks.exception()  # retrieved here: a request that gave up no longer awaits it
