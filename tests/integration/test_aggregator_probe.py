"""The aggregator's Kafka probe on the real broker: answering, idempotence, and no broker."""

from __future__ import annotations

import pytest

from aggregator.kafkahealth import KafkaProbe
from kemi_stats.settings import load_settings
from kemi_stats.stack.servers import free_port
from tests.servers import RunningServer

pytestmark = pytest.mark.integration


def _probe(bootstrap: str, timeout: float = 1.0) -> KafkaProbe:
    settings = load_settings().model_copy(update={"kafka_bootstrap": bootstrap})
    return KafkaProbe(settings, interval=0.2, timeout=timeout)


async def test_a_broker_that_answers_and_grants_producer_ids(kafka: RunningServer) -> None:
    probe = _probe(kafka.address)
    assert await probe.probe_once()
    assert probe.ok
    assert probe.detail == f"kafka {kafka.address}: answering"
    assert probe.idempotence is True  # asked once, of librdkafka's idempotent producer


async def test_no_broker_is_found_out_and_named() -> None:
    address = f"127.0.0.1:{free_port()}"
    probe = _probe(address)
    for _ in range(3):
        assert not await probe.probe_once()
        assert not probe.ok
        assert probe.detail.startswith(f"kafka {address}: "), probe.detail
    # librdkafka's words: refused connections ("brokers are down") or a metadata timeout
    assert "down" in probe.detail or "transport failure" in probe.detail, probe.detail
    assert probe.idempotence is None  # not asked: nothing answered
    assert "producer id" not in probe.detail
