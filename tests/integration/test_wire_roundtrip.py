"""SampleBatch records go to the real broker and come back identical, keyed by resource id."""

from __future__ import annotations

import asyncio

from kemi_stats.codec import decode_batch, encode_batch
from kemi_stats.kafka import make_consumer, make_producer
from kemi_stats.model import MetricKind, Sample, SampleBatch, Source
from kemi_stats.settings import Settings

pytestmark = __import__("pytest").mark.integration


def _batches(n: int) -> list[SampleBatch]:
    return [
        SampleBatch(
            resource_id=f"host:web-{i % 7:02d}",
            time_ms=1_700_000_000_000 + i * 1000,
            source=Source.SNMP,
            labels={"site": "pangyo"},
            samples=[
                Sample("ifHCInOctets", 2**63 + i, {"ifName": "eth0"}, MetricKind.COUNTER64),
                Sample("cpu_usage_pct", 12.5 + i),
            ],
            config_revision=42,
        )
        for i in range(n)
    ]


async def test_batches_round_trip_keyed_by_resource(settings: Settings, fresh_topic: str) -> None:
    sent = _batches(50)
    producer = make_producer(settings)
    await producer.start()
    try:
        for b in sent:
            await producer.send_and_wait(fresh_topic, encode_batch(b), key=b.key)
    finally:
        await producer.stop()
    consumer = make_consumer(settings, fresh_topic, group_id=f"g-{fresh_topic}")
    await consumer.start()
    got: list[tuple[bytes, SampleBatch, int]] = []
    try:
        async with asyncio.timeout(30):
            while len(got) < len(sent):
                records = await consumer.getmany(timeout_ms=500)
                for tp, recs in records.items():
                    got.extend((r.key, decode_batch(r.value), tp.partition) for r in recs)
    finally:
        await consumer.stop()
    assert sorted((b.time_ms, b) for _, b, _ in got) == sorted((b.time_ms, b) for b in sent)
    assert all(key == b.resource_id.encode() for key, b, _ in got)
    partitions: dict[str, set[int]] = {}
    for _, b, p in got:
        partitions.setdefault(b.resource_id, set()).add(p)
    assert all(len(ps) == 1 for ps in partitions.values()), "one resource, one partition"
