"""The dead-letter stage: notifications that could not be delivered go to ``kemi.alerts.dead``.

One record per alert, keyed by fingerprint, naming the receiver in ``receivers`` and
the reason (last error, attempts, time spent) in ``reason``; ``kemi-stats tail
kemi.alerts.dead`` shows them.
"""

from __future__ import annotations

from dataclasses import replace

from aiokafka import AIOKafkaProducer

from kemi_stats.codec import encode_alert
from kemi_stats.model import AlertEvent

__all__ = ["DeadLetters"]


class DeadLetters:
    """Publishes undeliverable notifications (waits for the broker's ack)."""

    def __init__(self, producer: AIOKafkaProducer, topic: str) -> None:
        self.producer = producer
        self.topic = topic

    async def publish(self, receiver: str, events: list[AlertEvent], reason: str) -> None:
        for ev in events:
            dead = replace(ev, receivers=[receiver], reason=reason)
            await self.producer.send_and_wait(self.topic, encode_alert(dead), key=dead.key)
