"""Read SampleBatches back from a topic, as a test checks what a service wrote."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

from kemi_stats.codec import decode_batch
from kemi_stats.kafka import make_consumer
from kemi_stats.model import SampleBatch
from kemi_stats.settings import Settings


async def read_batches(
    kafka: str,
    topic: str,
    want: int,
    wait: float = 20.0,
    keep: Callable[[SampleBatch], bool] = lambda _: True,
) -> list[SampleBatch]:
    """The batches ``keep`` selects, from the start of ``topic``, until ``want`` (or ``wait`` s).

    Every record's key must be its batch's resource id (the platform's partitioning rule).
    """
    consumer = make_consumer(
        Settings(kafka_bootstrap=kafka), topic, group_id=f"t-{uuid.uuid4().hex}"
    )
    await consumer.start()
    got: list[SampleBatch] = []
    deadline = time.monotonic() + wait
    try:
        while time.monotonic() < deadline:
            records = await consumer.getmany(timeout_ms=300)
            for recs in records.values():
                for r in recs:
                    batch = decode_batch(r.value)
                    assert r.key == batch.resource_id.encode()
                    if keep(batch):
                        got.append(batch)
            if len(got) >= want and not records:
                break
    finally:
        await consumer.stop()
    return got
