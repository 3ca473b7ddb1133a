"""The one rebalance listener: hands aiokafka's callbacks to two coroutines of the owner.

It also posts what each consumer of the process holds on
:data:`kemi_stats.assignments.ASSIGNMENTS`, which the instance registration publishes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiokafka import ConsumerRebalanceListener, TopicPartition

from kemi_stats.assignments import ASSIGNMENTS

__all__ = ["PartitionsHook", "RebalanceListener"]

PartitionsHook = Callable[[set[TopicPartition]], Awaitable[None]]


class RebalanceListener(ConsumerRebalanceListener):
    """Calls ``revoked`` before partitions go (commit there) and ``assigned`` after they come."""

    def __init__(self, revoked: PartitionsHook, assigned: PartitionsHook) -> None:
        self._revoked = revoked
        self._assigned = assigned

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        try:
            await self._revoked(set(revoked))
        finally:
            # aiokafka rebalances eagerly: everything held is revoked, then the new set assigned
            ASSIGNMENTS.update(self, ())

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        ASSIGNMENTS.update(self, assigned)
        await self._assigned(set(assigned))
