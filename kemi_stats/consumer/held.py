"""What a consumer of several topics holds, per topic, for health checks and APIs."""

from __future__ import annotations

from collections.abc import Iterable

from aiokafka import TopicPartition

__all__ = ["describe_partitions", "partitions_by_topic"]


def partitions_by_topic(
    held: Iterable[TopicPartition], topics: Iterable[str]
) -> dict[str, list[int]]:
    """``{topic: [partition, ...]}`` for each of ``topics``, sorted (empty when none)."""
    by: dict[str, list[int]] = {t: [] for t in topics}
    for tp in held:
        if tp.topic in by:
            by[tp.topic].append(tp.partition)
    return {t: sorted(parts) for t, parts in by.items()}


def describe_partitions(held: Iterable[TopicPartition], topics: Iterable[str]) -> str:
    """``kemi.metrics.raw partitions [0, 1], kemi.metrics partitions [0, 1]``."""
    return ", ".join(f"{t} partitions {p}" for t, p in partitions_by_topic(held, topics).items())
