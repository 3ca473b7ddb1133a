"""Kafka clients configured the same way everywhere (aiokafka for services).

faust-streaming already depends on aiokafka, and on the measured broker it is 4x
(producer) to 15x (consumer) faster than kafka-python, so the async services use it;
kafka-python serves the synchronous CLI's ``kemi-stats tail``. The aggregator, whose work is
mostly producing, uses librdkafka instead (:mod:`kemi_stats.rdkafka_producer`).
Every client gets the TLS and SASL options of :mod:`kemi_stats.kafka_security`.
"""

from __future__ import annotations

from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from kemi_stats.kafka_security import aiokafka_options
from kemi_stats.settings import Settings

__all__ = ["make_consumer", "make_producer"]


def make_producer(settings: Settings, **overrides: Any) -> AIOKafkaProducer:
    """A producer that waits for every replica's ack (nothing is acknowledged before Kafka has it)."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap,
        "acks": "all",
        "linger_ms": 5,
        "max_batch_size": 1 << 20,
        "max_request_size": 8 << 20,
        "enable_idempotence": False,
        "request_timeout_ms": 15000,
        **aiokafka_options(settings),
    }
    options.update(overrides)
    return AIOKafkaProducer(**options)


def make_consumer(
    settings: Settings, *topics: str, group_id: str, **overrides: Any
) -> AIOKafkaConsumer:
    """A group consumer with manual commits (commit only after the work is done)."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap,
        "group_id": group_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "session_timeout_ms": settings.kafka_session_timeout_ms,
        "heartbeat_interval_ms": max(500, settings.kafka_session_timeout_ms // 4),
        "max_partition_fetch_bytes": 8 << 20,
        "fetch_max_bytes": 32 << 20,
        **aiokafka_options(settings),
    }
    options.update(overrides)
    return AIOKafkaConsumer(*topics, **options)
