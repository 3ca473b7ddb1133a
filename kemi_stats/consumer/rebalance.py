"""The one rebalance listener: hands aiokafka's callbacks to two coroutines of the owner."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiokafka import ConsumerRebalanceListener, TopicPartition

__all__ = ["PartitionsHook", "RebalanceListener"]

PartitionsHook = Callable[[set[TopicPartition]], Awaitable[None]]


class RebalanceListener(ConsumerRebalanceListener):
    """Calls ``revoked`` before partitions go (commit there) and ``assigned`` after they come."""

    def __init__(self, revoked: PartitionsHook, assigned: PartitionsHook) -> None:
        self._revoked = revoked
        self._assigned = assigned

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._revoked(set(revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self._assigned(set(assigned))
