"""Which Kafka offsets may be committed when jobs finish out of order.

Jobs of one partition run concurrently and finish in any order; an offset is
committed only once every job before it on that partition is done, so a crash never
skips a job that was fetched but not finished.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable, Iterable

__all__ = ["OffsetTracker"]


class OffsetTracker:
    """Per partition: offsets started in order, offsets done, and the committable position."""

    def __init__(self) -> None:
        self._started: dict[Hashable, deque[int]] = {}
        self._done: dict[Hashable, set[int]] = {}
        self._ready: dict[Hashable, int] = {}

    def started(self, partition: Hashable, offset: int) -> None:
        """Record that the record at ``offset`` is being worked on (offsets arrive in order)."""
        self._started.setdefault(partition, deque()).append(offset)
        self._done.setdefault(partition, set())

    def done(self, partition: Hashable, offset: int) -> None:
        """Record that the record at ``offset`` is finished."""
        started = self._started.get(partition)
        if started is None:
            return  # partition revoked meanwhile
        done = self._done[partition]
        done.add(offset)
        while started and started[0] in done:
            first = started.popleft()
            done.discard(first)
            self._ready[partition] = first + 1

    def committable(self) -> dict[Hashable, int]:
        """Positions (next offset to read) that may be committed, then forgets them."""
        ready, self._ready = self._ready, {}
        return ready

    def pending(self) -> int:
        """Records started and not yet committable."""
        return sum(len(d) for d in self._started.values())

    def forget(self, partitions: Iterable[Hashable]) -> None:
        """Drop the state of partitions this consumer no longer owns."""
        for p in partitions:
            self._started.pop(p, None)
            self._done.pop(p, None)
            self._ready.pop(p, None)
