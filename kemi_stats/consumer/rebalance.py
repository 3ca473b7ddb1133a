"""The one rebalance listener: hands aiokafka's callbacks to two coroutines of the owner.

It also records what each consumer of the process holds in :data:`ASSIGNMENTS`, which
the instance registration (:mod:`kemi_stats.registry.instances`) publishes in etcd.
"""

from __future__ import annotations

import weakref
from collections.abc import Awaitable, Callable, Iterable
from typing import Protocol

from aiokafka import ConsumerRebalanceListener, TopicPartition

__all__ = ["ASSIGNMENTS", "Assignments", "Partitions", "PartitionsHook", "RebalanceListener"]

PartitionsHook = Callable[[set[TopicPartition]], Awaitable[None]]

#: topic -> sorted partition numbers
Partitions = dict[str, list[int]]


class _Partition(Protocol):
    """aiokafka's TopicPartition, or Faust's TP."""

    @property
    def topic(self) -> str: ...

    @property
    def partition(self) -> int: ...


class Assignments:
    """The partitions each consumer of this process holds, and who to tell when they change."""

    def __init__(self) -> None:
        # weak: a consumer that is gone holds nothing (tests create many)
        self._held: weakref.WeakKeyDictionary[object, frozenset[tuple[str, int]]] = (
            weakref.WeakKeyDictionary()
        )
        self._callbacks: list[Callable[[], None]] = []

    def update(self, owner: object, partitions: Iterable[_Partition]) -> None:
        """``owner`` now holds exactly ``partitions``."""
        held = frozenset((str(p.topic), int(p.partition)) for p in partitions)
        if self._held.get(owner) == held:
            return
        self._held[owner] = held
        for callback in list(self._callbacks):
            callback()

    def snapshot(self) -> Partitions:
        """Every partition held in the process, by topic."""
        out: dict[str, set[int]] = {}
        for held in list(self._held.values()):
            for topic, partition in held:
                out.setdefault(topic, set()).add(partition)
        return {topic: sorted(parts) for topic, parts in sorted(out.items())}

    def on_change(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` (on the event loop) whenever an assignment changes."""
        self._callbacks.append(callback)

    def remove_callback(self, callback: Callable[[], None]) -> None:
        if callback in self._callbacks:
            self._callbacks.remove(callback)


#: the process's consumers' partitions
ASSIGNMENTS = Assignments()


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
