"""Consume from Kafka, finish out of order, commit only the finished prefix (shared by services)."""

from kemi_stats.consumer.loop import ConsumerLoop
from kemi_stats.consumer.offsets import Ack, OffsetTracker
from kemi_stats.consumer.rebalance import RebalanceListener

__all__ = ["Ack", "ConsumerLoop", "OffsetTracker", "RebalanceListener"]
