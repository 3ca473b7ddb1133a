"""Which offsets may be committed: only those whose records the TSDB has accepted.

Batches are written concurrently and may finish out of order. The tracker keeps them
in the order they were cut; a partition's commit position moves forward only across a
prefix of finished batches, so a committed offset never passes a record that is still
waiting for the TSDB, whatever order the writes end in.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

__all__ = ["Chunk", "OffsetTracker"]


@dataclass(slots=True)
class Chunk:
    """Lines cut from consecutive records, and the offsets they cover, per partition."""

    seq: int
    lines: list[str] = field(default_factory=list)
    points: int = 0
    records: int = 0
    #: partition -> (first offset, last offset) of its records in this chunk
    ranges: dict[int, tuple[int, int]] = field(default_factory=dict)
    #: Kafka timestamp (ms) of the oldest record in the chunk
    oldest_ms: int | None = None
    created: float = field(default_factory=time.monotonic)
    done: bool = False

    def add_offset(self, partition: int, offset: int, timestamp_ms: int) -> None:
        """Note that the record at ``offset`` of ``partition`` is in this chunk."""
        r = self.ranges.get(partition)
        self.ranges[partition] = (offset, offset) if r is None else (r[0], offset)
        self.records += 1
        if self.oldest_ms is None or timestamp_ms < self.oldest_ms:
            self.oldest_ms = timestamp_ms


class OffsetTracker:
    """Chunks in cut order; commit positions (next offset to read) per partition."""

    def __init__(self) -> None:
        self._pending: deque[Chunk] = deque()
        self._ready: dict[int, int] = {}
        self.committed: dict[int, int] = {}
        self._seq = 0

    def new_chunk(self) -> Chunk:
        """A fresh chunk, numbered after the previous one."""
        self._seq += 1
        return Chunk(self._seq)

    def add(self, chunk: Chunk) -> None:
        """Track ``chunk`` (handed to the writer, or empty and done at once)."""
        self._pending.append(chunk)

    def complete(self, chunk: Chunk) -> None:
        """Mark ``chunk`` accepted; advance positions across the finished prefix."""
        chunk.done = True
        while self._pending and self._pending[0].done:
            head = self._pending.popleft()
            for partition, (_, last) in head.ranges.items():
                if last + 1 > self._ready.get(partition, -1):
                    self._ready[partition] = last + 1

    def take_commit(self) -> dict[int, int]:
        """Positions that moved since the last commit (the caller commits them)."""
        moved = {p: o for p, o in self._ready.items() if self.committed.get(p) != o}
        return moved

    def committed_ok(self, positions: dict[int, int]) -> None:
        """Record that ``positions`` were committed."""
        self.committed.update(positions)

    def forget(self, partitions: set[int]) -> None:
        """Stop tracking ``partitions`` (revoked): their positions are no longer ours."""
        for p in partitions:
            self._ready.pop(p, None)
            self.committed.pop(p, None)
        for chunk in self._pending:
            for p in partitions:
                chunk.ranges.pop(p, None)

    @property
    def inflight(self) -> int:
        """Chunks not yet accepted."""
        return sum(1 for c in self._pending if not c.done)

    def oldest_pending_ms(self) -> int | None:
        """Kafka timestamp of the oldest record not yet accepted, or None."""
        times = [c.oldest_ms for c in self._pending if not c.done and c.oldest_ms is not None]
        return min(times) if times else None
