"""The Kafka partitions each consumer of this process holds, on one board.

Consumers post their assignments here (aiokafka's through
:class:`kemi_stats.consumer.rebalance.RebalanceListener`, the calculator's from Faust's
signals); the instance registration (:mod:`kemi_stats.registry.instances`) publishes
them in etcd. No Kafka client is imported here: ``kemi-stats services`` reads the type.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable
from typing import Protocol

__all__ = ["ASSIGNMENTS", "Assignments", "Partitions"]

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
