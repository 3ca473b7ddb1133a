"""Which offsets of ``kemi.alerts`` may be committed: the first one not yet finished, per partition.

A record is finished when every receiver it goes to has delivered it, dead-lettered
it or decided not to send it (silenced, duplicate). Receivers work independently, so
records finish out of order; the commit point is the oldest unfinished record. A
slow receiver therefore holds the *commit point* back, never another receiver's
deliveries: after a crash the records past the commit point are read again, and the
notification log (dedup stage) plus the Idempotency-Key keep that from reaching a
receiver twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

__all__ = ["OffsetTracker"]


class OffsetTracker:
    """Outstanding (partition, offset) -> number of receiver jobs still open."""

    def __init__(self) -> None:
        self._open: dict[int, dict[int, int]] = {}
        self._next: dict[int, int] = {}
        self._generation: dict[int, int] = {}
        self.in_flight = 0

    def add(self, partition: int, offset: int, jobs: int) -> Callable[[], None]:
        """Register a record with ``jobs`` pending deliveries; return the ack for each job."""
        self._next[partition] = offset + 1
        if jobs > 0:
            self._open.setdefault(partition, {})[offset] = jobs
            self.in_flight += 1
        generation = self._generation.get(partition, 0)

        def ack() -> None:
            if generation == self._generation.get(partition, 0):
                self._done(partition, offset)

        return ack

    def _done(self, partition: int, offset: int) -> None:
        pending = self._open.get(partition)
        if not pending or offset not in pending:
            return
        pending[offset] -= 1
        if pending[offset] <= 0:
            del pending[offset]
            self.in_flight -= 1

    def committable(self) -> dict[int, int]:
        """Per partition, the offset to commit (everything before it is finished)."""
        out: dict[int, int] = {}
        for partition, nxt in self._next.items():
            pending = self._open.get(partition)
            out[partition] = next(iter(pending)) if pending else nxt
        return out

    def forget(self, partitions: Iterable[int]) -> None:
        """Partitions were revoked: acks of their in-flight jobs no longer count."""
        for p in partitions:
            self._generation[p] = self._generation.get(p, 0) + 1
            self.in_flight -= len(self._open.pop(p, {}))
            self._next.pop(p, None)
