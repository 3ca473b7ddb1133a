"""Where a group starts on a raw partition it has never committed: after an upgrade, its end.

The alert evaluator and the forwarder used to get raw samples through ``kemi.metrics``,
where the calculator passed every raw batch on; now they read ``kemi.metrics.raw``
themselves. For a raw partition the group has never committed while it has committed
the same partition of ``kemi.metrics``, the group is one of those, upgraded: the raw
records before now reached it through ``kemi.metrics`` (an earlier calculator still
passes them on until it is upgraded too), so it starts there at the partition's end.
Its oldest record would replay up to the topic's retention (a week by default) into
alerts and the TSDB. Any other partition never committed starts at its beginning, as
every new group does.

Either way the start is committed at once, so the decision is taken once per partition:
a later restart finds a commit and goes on from it, however quiet the partition was.

Records must not be read before the decision: :func:`hold` pauses the partitions, and
must run before the rebalance listener's first ``await``; :func:`place` resumes them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, MutableMapping

from aiokafka import AIOKafkaConsumer, TopicPartition

__all__ = ["hold", "place"]

log = logging.getLogger(__name__)


def hold(
    consumer: AIOKafkaConsumer, assigned: Iterable[TopicPartition], topic: str
) -> list[TopicPartition]:
    """Pause the assigned partitions of ``topic`` (no await: nothing is fetched meanwhile)."""
    held = sorted(tp for tp in assigned if tp.topic == topic)
    if held:
        consumer.pause(*held)
    return held


async def place(
    consumer: AIOKafkaConsumer,
    held: list[TopicPartition],
    old_topic: str,
    group: str,
    positions: MutableMapping[TopicPartition, int] | None = None,
) -> None:
    """Start each ``held`` partition the group never committed (see the module), commit
    that start, note it in ``positions``, and resume them all. A broker that cannot
    answer leaves them at the group's default start (logged): they are resumed anyway."""
    try:
        if held:
            await _place(consumer, held, old_topic, group, positions)
    except Exception as exc:  # aiokafka drops a listener's exception; the group goes on
        log.warning(
            "group %s: cannot tell where to start %s (%s): reading from the group's position",
            group, held[0].topic, exc,
        )  # fmt: skip
    finally:
        consumer.resume(*held)


async def _place(
    consumer: AIOKafkaConsumer,
    held: list[TopicPartition],
    old_topic: str,
    group: str,
    positions: MutableMapping[TopicPartition, int] | None,
) -> None:
    never = [tp for tp in held if await consumer.committed(tp) is None]
    if not never:
        return
    upgraded = [
        tp
        for tp in never
        if old_topic
        and old_topic != tp.topic
        and await consumer.committed(TopicPartition(old_topic, tp.partition)) is not None
    ]
    new = [tp for tp in never if tp not in upgraded]
    start: dict[TopicPartition, int] = {}
    if upgraded:
        start.update(await consumer.end_offsets(upgraded))
    if new:
        start.update(await consumer.beginning_offsets(new))
    for tp, offset in start.items():
        consumer.seek(tp, offset)
    await consumer.commit(start)
    if positions is not None:
        positions.update(start)
    if upgraded:
        log.warning(
            "group %s: first read of %s by a group that read %s: partitions %s start at their "
            "end (their earlier records reached this group through %s)",
            group, held[0].topic, old_topic, [tp.partition for tp in upgraded], old_topic,
        )  # fmt: skip
