"""Faust's Kafka transport, with the consumer's fetch wait from the calculator's settings.

Faust builds its aiokafka consumer with ``fetch_max_wait_ms=1500`` and no setting for it.
A broker may hold a fetch that long when little data comes (the local one holds it for
the whole wait even when data arrives), so on a quiet stream a sample waited up to 1.5 s
in the calculator before anything derived from it or alerted on it. This is Faust's own
transport with two changes: the worker consumer's wait is the app's
``fetch_max_wait_ms`` (``KEMI_CALCULATOR_FETCH_MAX_WAIT_MS``), set before it starts; and
while it keeps up, it takes records from its fetcher at most once per
``fetch_interval_ms`` (``KEMI_CALCULATOR_FETCH_INTERVAL_MS``): a partition with records
waiting is not fetched again, so fewer, larger fetches reach the broker
(:class:`kemi_stats.consumer.loop.Pace`). Faust sets no record limit on a fetch, so none
counts as full and the interval holds during a backlog too: each partition then still
gives up to one buffered fetch (1 MiB) per interval, far more than the worker processes.
"""

from __future__ import annotations

from typing import Any

import faust
from faust.transport.drivers import aiokafka as driver

from kemi_stats.consumer.loop import Pace

__all__ = ["CalculatorApp"]


class _ConsumerThread(driver.AIOKafkaConsumerThread):
    _pace: Pace | None = None

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # read by AIOKafkaConsumer.start() when it builds its fetcher
        consumer._fetch_max_wait_ms = self.app.fetch_max_wait_ms  # type: ignore[attr-defined]
        self._pace = Pace(self.app.fetch_interval_ms / 1000)  # type: ignore[attr-defined]
        return consumer

    async def _fetch_records(
        self,
        consumer: Any,
        active_partitions: Any,
        timeout: float | None = None,  # noqa: ASYNC109  (Faust's signature)
        max_records: int | None = None,
    ) -> Any:
        pace = self._pace
        if pace is not None:
            await pace.wait()
        records = await super()._fetch_records(
            consumer, active_partitions, timeout=timeout, max_records=max_records
        )
        if pace is not None:
            pace.fetched(records, max_records)
        return records


class _Consumer(driver.Consumer):
    def _new_consumer_thread(self) -> driver.AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class _Transport(driver.Transport):
    Consumer = _Consumer


class CalculatorApp(faust.App):
    """A Faust app whose Kafka consumer waits at most ``fetch_max_wait_ms`` per fetch."""

    fetch_max_wait_ms: int = 1500  # Faust's own
    fetch_interval_ms: int = 0

    def _new_transport(self) -> Any:
        return _Transport(self.conf.broker_consumer, self)
