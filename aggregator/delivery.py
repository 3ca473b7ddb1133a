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
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from aggregator.kafkahealth import KafkaProbe
from aggregator.metrics import DELIVERY_SECONDS, INFLIGHT_BYTES, KAFKA_AVAILABLE
from aggregator.rejection import Rejection
from aggregator.settings import AggregatorSettings
from kemi_stats.kafka import make_producer
from kemi_stats.settings import Settings
from kemi_stats.topics import METRICS_RAW, ensure_topics, renamed_specs

__all__ = ["Delivery"]

log = logging.getLogger(__name__)

ProducerFactory = Callable[[bool], AIOKafkaProducer]


class Delivery:
    """The producer, the in-flight byte bound and Kafka's availability, for all requests."""

    def __init__(self, settings: Settings, config: AggregatorSettings) -> None:
        self.settings = settings
        self.config = config
        self.topic = config.topic
        self.probe = KafkaProbe(
            settings.kafka_bootstrap, config.probe_interval, config.probe_timeout
        )
        self.producer: AIOKafkaProducer | None = None
        self.idempotent = False
        self.inflight_bytes = 0
        self._pending: dict[int, float] = {}  # request seq -> when its records were handed over
        self._seq = itertools.count()
        self._tasks: list[asyncio.Task[None]] = []

    # --- lifecycle --------------------------------------------------------------------

    async def start(self) -> None:
        """Start probing and connecting in the background: the HTTP side serves 503 meanwhile."""
        self._tasks = [
            asyncio.create_task(self.probe.run(), name="kafka-probe"),
            asyncio.create_task(self._connect(), name="kafka-connect"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self.producer is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(10):
                    await self.producer.stop()
            self.producer = None

    async def _connect(self) -> None:
        """Ensure topics and start the producer, retrying until Kafka answers."""
        while True:
            await self.probe.wait_ok()
            try:
                await asyncio.to_thread(self._ensure_topics)
                self.idempotent = self._want_idempotence()
                producer = make_producer(
                    self.settings,
                    client_id="kemi-aggregator",
                    enable_idempotence=self.idempotent,
                    linger_ms=self.config.linger_ms,
                )
                try:
                    await producer.start()
                except BaseException:
                    with contextlib.suppress(Exception):
                        await producer.stop()
                    raise
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

    def _ensure_topics(self) -> None:
        ensure_topics(self.settings.kafka_bootstrap, renamed_specs({METRICS_RAW: self.topic}))

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

    async def deliver(self, records: list[tuple[bytes, bytes]]) -> None:
        """Return once Kafka acknowledged every record (key, value); 429/503 Rejection otherwise."""
        if not records:
            return
        size = sum(len(k) + len(v) for k, v in records)
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
        self._reserve(size)
        seq = next(self._seq)
        started = time.monotonic()
        self._pending[seq] = started
        futures: list[asyncio.Future[Any]] = []
        unsent = size
        try:
            async with asyncio.timeout(self.config.delivery_timeout):
                for key, value in records:
                    fut = await producer.send(self.topic, value, key=key)
                    n = len(key) + len(value)
                    unsent -= n
                    fut.add_done_callback(lambda f, n=n: self._settled(f, n))
                    futures.append(fut)
                await asyncio.gather(*futures)
        except TimeoutError:
            acked = sum(f.done() and not f.cancelled() and f.exception() is None for f in futures)
            raise self._unavailable(
                f"Kafka acknowledged {acked} of {len(records)} records within "
                f"{self.config.delivery_timeout:g} s; outcome unknown: "
                "the rest may still be written"
            ) from None
        except KafkaError as exc:
            raise self._unavailable(
                f"Kafka failed records of this request ({type(exc).__name__}: {exc}); "
                "outcome unknown: some may have been written"
            ) from None
        finally:
            self._release(unsent)
            self._forget_when_done(seq, futures)
        DELIVERY_SECONDS.observe(time.monotonic() - started)

    def _reserve(self, n: int) -> None:
        self.inflight_bytes += n
        INFLIGHT_BYTES.set(self.inflight_bytes)

    def _settled(self, fut: asyncio.Future[Any], n: int) -> None:
        self._release(n)
        if not fut.cancelled():
            fut.exception()  # retrieved here: a request that gave up no longer awaits it

    def _release(self, n: int) -> None:
        self.inflight_bytes -= n
        INFLIGHT_BYTES.set(self.inflight_bytes)

    def _forget_when_done(self, seq: int, futures: list[asyncio.Future[Any]]) -> None:
        """Stop counting a request as pending once every one of its records is settled."""
        waiting = [f for f in futures if not f.done()]
        if not waiting:
            self._pending.pop(seq, None)
            return
        remaining = [len(waiting)]

        def settled(_f: asyncio.Future[Any]) -> None:
            remaining[0] -= 1
            if remaining[0] == 0:
                self._pending.pop(seq, None)

        for f in waiting:
            f.add_done_callback(settled)
