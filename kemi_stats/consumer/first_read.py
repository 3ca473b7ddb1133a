"""Where a group starts on a sample topic it reads for the first time after an upgrade.

The alert evaluator and the forwarder used to get raw samples through ``kemi.metrics``,
where the calculator passed every raw batch on; now they read ``kemi.metrics.raw``
themselves. A group with offsets committed on ``kemi.metrics`` and none on
``kemi.metrics.raw`` is such a group, upgraded: the raw records before now reached it
through ``kemi.metrics`` already (an earlier calculator still passes them on until it is
upgraded too), so it starts the raw topic at its end. Its oldest record would replay up
to the topic's retention (a week by default) into alerts and the TSDB.

A group that has committed nothing on either topic is new, and reads both from their
oldest record, as every group does.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from aiokafka import AIOKafkaConsumer, TopicPartition

__all__ = ["start_new_topic_at_end"]

log = logging.getLogger(__name__)


async def start_new_topic_at_end(
    consumer: AIOKafkaConsumer,
    assigned: Iterable[TopicPartition],
    new_topic: str,
    old_topic: str,
    group: str,
) -> bool:
    """Seek the assigned partitions of ``new_topic`` to its end if the group has read
    ``old_topic`` and never ``new_topic``; whether it did. Call it from the rebalance
    listener, before seeking to offsets saved elsewhere (they win)."""
    mine = sorted(tp for tp in assigned if tp.topic == new_topic)
    if not mine or not old_topic or old_topic == new_topic:
        return False
    if await _committed_any(consumer, new_topic) or not await _committed_any(consumer, old_topic):
        return False
    ends = await consumer.end_offsets(mine)
    for tp in mine:
        consumer.seek(tp, ends[tp])
    log.warning(
        "group %s: first read of %s by a group that read %s: starting at its end, partitions "
        "%s (its earlier records reached this group through %s)",
        group, new_topic, old_topic, [tp.partition for tp in mine], old_topic,
    )  # fmt: skip
    return True


async def _committed_any(consumer: AIOKafkaConsumer, topic: str) -> bool:
    """Whether the consumer's group has an offset committed on any partition of ``topic``."""
    for p in sorted(consumer.partitions_for_topic(topic) or ()):
        if await consumer.committed(TopicPartition(topic, p)) is not None:
            return True
    return False
