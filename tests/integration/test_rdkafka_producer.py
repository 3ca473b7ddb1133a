"""librdkafka's producer on a real broker: acks per request, Kafka's partitioning, failures."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka.partitioner import DefaultPartitioner

from kemi_stats.kafka import make_consumer
from kemi_stats.rdkafka_producer import AckedProducer, DeliveryFailed, producer_id_granted
from kemi_stats.settings import Settings
from kemi_stats.stack.servers import free_port
from kemi_stats.topics import TopicSpec, ensure_topics
from tests.servers import RunningServer

pytestmark = pytest.mark.integration


def _producer(bootstrap: str, delivery_timeout: float = 10.0) -> AckedProducer:
    return AckedProducer(
        bootstrap,
        client_id="test",
        idempotent=False,
        linger_ms=2,
        delivery_timeout=delivery_timeout,
        queue_bytes=1 << 20,
    )


async def test_records_acked_and_on_the_partition_aiokafka_would_choose(
    kafka: RunningServer,
) -> None:
    topic = f"test.rd.{uuid.uuid4().hex[:8]}"
    ensure_topics(kafka.address, (TopicSpec(topic, 12),))
    producer = _producer(kafka.address)
    records = [(f"host:web-{i:03d}".encode(), f"value {i}".encode()) for i in range(60)]
    try:
        assert await asyncio.to_thread(producer.partitions, topic) == 12
        await asyncio.wait_for(producer.send_all(topic, records), 20)
    finally:
        assert await producer.close(5) == 0
    consumer = make_consumer(Settings(kafka_bootstrap=kafka.address), topic, group_id="t-rd")
    await consumer.start()
    got: dict[bytes, int] = {}
    try:
        async with asyncio.timeout(20):
            while len(got) < len(records):
                for part, recs in (await consumer.getmany(timeout_ms=300)).items():
                    for r in recs:
                        assert r.key is not None
                        assert r.value == dict(records)[r.key]
                        got[r.key] = part.partition
    finally:
        await consumer.stop()
    partitions = list(range(12))
    chosen = DefaultPartitioner()
    assert got == {key: chosen(key, partitions, partitions) for key, _ in records}


async def test_a_broker_that_is_not_there_fails_the_request_after_the_timeout() -> None:
    producer = _producer(f"127.0.0.1:{free_port()}", delivery_timeout=1.0)
    try:
        acks = producer.send_all("test.nowhere", [(b"k", b"v"), (b"k2", b"v2")])
        with pytest.raises(DeliveryFailed) as failed:
            await asyncio.wait_for(acks, 10)
        assert failed.value.failed == 2
        assert "timed out" in failed.value.reason.lower()
    finally:
        await producer.close(0)


async def test_no_records_settle_at_once(kafka: RunningServer) -> None:
    producer = _producer(kafka.address)
    try:
        await asyncio.wait_for(producer.send_all("unused", []), 1)
    finally:
        await producer.close(0)


async def test_records_sent_to_their_partitions_report_the_highest_offsets(
    kafka: RunningServer,
) -> None:
    topic = f"test.rd.parts.{uuid.uuid4().hex[:8]}"
    ensure_topics(kafka.address, (TopicSpec(topic, 3),))
    producer = _producer(kafka.address)
    records = [(i % 2, f"k{i}".encode(), f"v{i}".encode()) for i in range(5)]  # partitions 0, 1
    try:
        offsets = await asyncio.wait_for(producer.send_to_partitions(topic, records), 20)
        again = await asyncio.wait_for(producer.send_to_partitions(topic, records[:1]), 20)
    finally:
        assert await producer.close(5) == 0
    assert offsets == {0: 2, 1: 1}  # three records in partition 0, two in 1
    assert again == {0: 3}
    consumer = make_consumer(Settings(kafka_bootstrap=kafka.address), topic, group_id="t-rdp")
    await consumer.start()
    got: list[tuple[int, bytes | None]] = []
    try:
        async with asyncio.timeout(20):
            while len(got) < 6:
                for part, recs in (await consumer.getmany(timeout_ms=300)).items():
                    got.extend((part.partition, r.key) for r in recs)
    finally:
        await consumer.stop()
    assert sorted(got) == sorted([(p, k) for p, k, _ in records] + [(0, b"k0")])


def test_the_broker_grants_the_idempotent_producer_its_id(kafka: RunningServer) -> None:
    # the aggregator's idempotence=auto asks this of the client that will produce
    assert producer_id_granted(kafka.address, wait=10) == (True, "producer id granted")


def test_without_a_broker_nothing_is_known_of_producer_ids() -> None:
    # not "unsupported": no broker was asked, so the aggregator asks again later
    granted, why = producer_id_granted(f"127.0.0.1:{free_port()}", wait=1)
    assert granted is None
    assert why.startswith("no broker asked for a producer id within 1 s (state "), why
