"""Which offsets may be committed when records finish out of order.

A consumer hands records to concurrent work (polls, TSDB writes, webhook deliveries)
that finishes in any order. Per partition, the commit position is the first offset
still open: everything before it is finished, so a crash never skips a record that
was fetched but not done. Ranges are begun in offset order within a generation of
the partition; an ack of work begun before the partition was revoked does not count
after it is assigned again (each ack is bound to its generation), and records fetched
before a revocation are not begun after it (the consumer loop checks the generation).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable

__all__ = ["Ack", "OffsetTracker"]

#: called when the work on a range of records is done
Ack = Callable[[], None]


def _noop() -> None:
    return None


class OffsetTracker:
    """Per partition: ranges begun in offset order, the acks they still wait for, the positions committed."""

    def __init__(self) -> None:
        #: partition -> first offset of an open range -> acks still due (insertion order = offset order)
        self._open: dict[Hashable, dict[int, int]] = {}
        #: partition -> the offset after the last one begun
        self._next: dict[Hashable, int] = {}
        #: partition -> the first offset begun since it was assigned (where the group stood)
        self._first: dict[Hashable, int] = {}
        self._generation: dict[Hashable, int] = {}
        #: partition -> position last committed
        self.committed: dict[Hashable, int] = {}

    def begin(self, partition: Hashable, first: int, last: int | None = None, acks: int = 1) -> Ack:
        """Records ``first..last`` of ``partition`` are being worked on; call the ack ``acks`` times."""
        self._next[partition] = (first if last is None else last) + 1
        self._first.setdefault(partition, first)
        if acks <= 0:
            return _noop
        self._open.setdefault(partition, {})[first] = acks
        generation = self._generation.get(partition, 0)

        def ack() -> None:
            if self._generation.get(partition, 0) == generation:
                self._ack(partition, first)

        return ack

    def generation(self, partition: Hashable) -> int:
        """How many times ``partition`` was forgotten (revoked): work of an older one is stale."""
        return self._generation.get(partition, 0)

    def _ack(self, partition: Hashable, first: int) -> None:
        open_ = self._open.get(partition)
        if not open_ or first not in open_:
            return
        open_[first] -= 1
        if open_[first] <= 0:
            del open_[first]

    def position(self, partition: Hashable) -> int | None:
        """The offset to commit for ``partition`` (all before it is finished), or None if unknown."""
        open_ = self._open.get(partition)
        if open_:
            return next(iter(open_))
        return self._next.get(partition)

    def to_commit(self) -> dict[Hashable, int]:
        """Positions that moved since they were last committed (or since the partition came)."""
        out: dict[Hashable, int] = {}
        for partition in self._next:
            pos = self.position(partition)
            if pos is not None and pos != self.committed.get(partition, self._first[partition]):
                out[partition] = pos
        return out

    def committed_ok(self, positions: dict[Hashable, int]) -> None:
        """Record that ``positions`` were committed."""
        self.committed.update(positions)

    @property
    def pending(self) -> int:
        """Ranges begun and not yet finished."""
        return sum(len(o) for o in self._open.values())

    def forget(self, partitions: Iterable[Hashable]) -> None:
        """Partitions were revoked: drop their state; acks of work begun before no longer count."""
        for p in partitions:
            self._generation[p] = self._generation.get(p, 0) + 1
            self._open.pop(p, None)
            self._next.pop(p, None)
            self._first.pop(p, None)
            self.committed.pop(p, None)
