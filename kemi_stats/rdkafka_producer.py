"""librdkafka's producer (confluent-kafka) for asyncio: a request's records, one awaitable.

The aggregator's hot path hands tens of records per HTTP request to Kafka and answers
only once every one is acknowledged. aiokafka does that in Python at ~28 µs of CPU per
record; librdkafka does it in C threads at ~10 µs (bench/RESULTS.md, remote_write).

The bridge: :meth:`AckedProducer.send_all` produces every record with a delivery
callback that counts down, and the last one resolves the request's future.
librdkafka runs those callbacks inside ``poll``, and every poll happens on the event
loop's thread: one in each :meth:`send_all` (under load, requests serve each other's
acks), and a task's every 2 ms while records are in flight (every half second
otherwise, for logs and errors). No thread of ours competes for the GIL and the
callbacks need no lock. librdkafka reports every record exactly once (acked, failed,
or timed out after ``message.timeout.ms``), so the future always resolves, even after
the request stopped waiting for it.

Keys are partitioned with ``murmur2_random``, Kafka's Java partitioner, which aiokafka
and kafka-python use too: a resource's records land on the same partition whichever
service produced them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer

__all__ = ["AckedProducer", "DeliveryFailed", "producer_id_granted"]

log = logging.getLogger(__name__)


class DeliveryFailed(Exception):
    """Some records of a batch were not acknowledged: ``failed`` of them, ``reason`` says why."""

    def __init__(self, failed: int, reason: str) -> None:
        super().__init__(f"{failed} records failed: {reason}")
        self.failed = failed
        self.reason = reason


class AckedProducer:
    """A librdkafka producer with ``acks=all``, its callbacks served on the event loop."""

    def __init__(
        self,
        bootstrap: str,
        *,
        client_id: str,
        idempotent: bool,
        linger_ms: float,
        delivery_timeout: float,
        queue_bytes: int,
        max_request_bytes: int = 8 << 20,
        security: Mapping[str, Any] | None = None,
        max_in_flight: int | None = None,
    ) -> None:
        """``security``: the TLS/SASL properties (:func:`kemi_stats.kafka_security.rdkafka_options`);
        ``max_in_flight``: requests in flight per broker (1 keeps a partition's order
        through retries without idempotence)."""
        self.bootstrap = bootstrap
        config: dict[str, Any] = {
            "bootstrap.servers": bootstrap,
            "client.id": client_id,
            "acks": "all",
            "enable.idempotence": idempotent,
            "linger.ms": linger_ms,
            "message.timeout.ms": max(1, int(delivery_timeout * 1000)),
            "partitioner": "murmur2_random",
            "message.max.bytes": max_request_bytes,
            "batch.size": min(max_request_bytes, 1 << 20),
            # the caller bounds the bytes in flight; librdkafka's own queue is never the limit
            "queue.buffering.max.kbytes": max(1024, queue_bytes * 2 // 1024),
            "queue.buffering.max.messages": 2_000_000,
            "logger": log,
            "error_cb": self._error,
            **(security or {}),
        }
        if max_in_flight is not None:
            config["max.in.flight.requests.per.connection"] = max_in_flight
        self._producer = Producer(config)
        self.last_error = ""
        self.fatal = False
        self._loop = asyncio.get_running_loop()
        self._unsettled = 0  # batches with records not yet reported
        self._work = asyncio.Event()
        self._pump_task = self._loop.create_task(self._pump(), name="rdkafka-poll")

    async def _pump(self) -> None:
        """Serve librdkafka's callbacks on the event loop, often while records are in flight."""
        poll = self._producer.poll
        while True:
            poll(0)
            if self._unsettled:
                await asyncio.sleep(0.002)
            else:
                self._work.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(0.5):
                        await self._work.wait()

    def _error(self, err: KafkaError) -> None:
        self.last_error = err.str()
        if err.fatal():
            self.fatal = True  # this producer will not produce again: its owner replaces it
        log.warning("kafka %s: %s", self.bootstrap, err.str())

    def send_all(self, topic: str, records: Sequence[tuple[bytes, bytes]]) -> asyncio.Future[None]:
        """Produce every (key, value); the future resolves once each one is settled.

        It fails with :class:`DeliveryFailed` if any record failed or was refused (the
        local queue full, the producer fatally failed): records after a refused one are
        not produced and count as failed.
        """
        future: asyncio.Future[None] = self._loop.create_future()
        self._produce_all(topic, ((-1, k, v) for k, v in records), len(records), future, None)
        return future

    def send_to_partitions(
        self, topic: str, records: Sequence[tuple[int, bytes, bytes]]
    ) -> asyncio.Future[dict[int, int]]:
        """Produce every (partition, key, value) to its partition, like :meth:`send_all`;
        the future's result is the highest offset written in each partition."""
        future: asyncio.Future[dict[int, int]] = self._loop.create_future()
        self._produce_all(topic, iter(records), len(records), future, {})
        return future

    def _produce_all(
        self,
        topic: str,
        records: Iterator[tuple[int, bytes, bytes]],
        count: int,
        future: asyncio.Future[Any],
        offsets: dict[int, int] | None,
    ) -> None:
        left = [count]
        failures: list[str] = []
        self._unsettled += 1
        if not self._work.is_set():
            self._work.set()

        def settle() -> None:
            self._unsettled -= 1
            if future.done():
                return
            if failures:
                future.set_exception(DeliveryFailed(len(failures), failures[0]))
            else:
                future.set_result(offsets)

        def delivered(err: KafkaError | None, msg: Any) -> None:
            # on the event loop's thread: every poll of this producer happens there
            if err is not None:
                failures.append(err.str())
            elif offsets is not None:
                partition, offset = msg.partition(), msg.offset()
                if offset > offsets.get(partition, -1):
                    offsets[partition] = offset
            left[0] -= 1
            if left[0] == 0:
                settle()

        self._producer.poll(0)  # the acks already in: earlier requests answer sooner
        produce = self._producer.produce
        sent = 0
        try:
            for partition, key, value in records:
                # positional (partition -1: the partitioner's): no keyword parsing per record
                produce(topic, value, key, partition, delivered)
                sent += 1
        except (BufferError, KafkaException) as exc:
            # the unproduced ones never get a callback: count them down here
            unsent = count - sent
            failures.extend([f"refused: {exc}"] * unsent)
            left[0] -= unsent
            if left[0] == 0:
                settle()
        if not count:
            settle()

    def partitions(self, topic: str, timeout: float = 5.0) -> int:
        """How many partitions ``topic`` has (blocking: call from a thread)."""
        meta = self._producer.list_topics(topic, timeout=timeout)
        return len(meta.topics[topic].partitions)

    async def close(self, wait: float = 10.0) -> int:
        """Wait up to ``wait`` s for records in flight; returns how many were not reported."""
        self._pump_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._pump_task
        deadline = time.monotonic() + wait
        while True:
            unsent = int(self._producer.flush(0))  # serves the callbacks here, on the loop
            if not unsent or time.monotonic() >= deadline:
                return unsent
            await asyncio.sleep(0.01)


def producer_id_granted(
    bootstrap: str, *, wait: float, security: Mapping[str, Any] | None = None
) -> tuple[bool | None, str]:
    """Whether the brokers grant librdkafka's idempotent producer its producer id, and why.

    A producer with ``enable.idempotence`` produces nothing before the id is assigned,
    so whether the brokers offer idempotence is asked of the client that will produce:
    a throwaway idempotent producer reports its id state in its statistics (``eos``).
    True: the id was assigned. False: librdkafka reports ``_UNSUPPORTED_FEATURE`` (no
    InitProducerId) or a fatal error, or the brokers were asked (InitProducerId
    requests sent) and gave no id within ``wait``. None: no broker was asked (not
    reachable in time), so nothing is known. Blocking (up to ``wait`` s): call from a
    thread.
    """
    state = {"idempotence": "", "refused": ""}
    asked = [0]

    def stats(text: str) -> None:
        report = json.loads(text)
        state["idempotence"] = report.get("eos", {}).get("idemp_state", "")
        asked[0] = sum(
            broker.get("req", {}).get("InitProducerId", 0)
            for broker in report.get("brokers", {}).values()
        )

    def error(err: KafkaError) -> None:
        if err.fatal() or err.code() == KafkaError._UNSUPPORTED_FEATURE:
            state["refused"] = err.str()

    config: dict[str, Any] = {
        "bootstrap.servers": bootstrap,
        "client.id": "kemi-idempotence-check",
        "enable.idempotence": True,
        "statistics.interval.ms": 50,
        "stats_cb": stats,
        "error_cb": error,
        "logger": log,
        **(security or {}),
    }
    producer = Producer(config)
    deadline = time.monotonic() + wait
    try:
        while time.monotonic() < deadline:
            producer.poll(0.05)
            if state["idempotence"] == "Assigned":
                return True, "producer id granted"
            if state["refused"]:
                return False, state["refused"]
        where = f"state {state['idempotence'] or 'unknown'}"
        if asked[0]:
            return False, f"{asked[0]} producer id requests, no id within {wait:g} s ({where})"
        return None, f"no broker asked for a producer id within {wait:g} s ({where})"
    finally:
        producer.flush(0)  # it produced nothing
