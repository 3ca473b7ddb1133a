"""Line-protocol batches cut from consecutive records, and which of them the TSDB still holds.

Batches are written concurrently and may finish out of order. Each batch begins,
per partition, the range of records it covers on the shared consumer loop; its
acks end those ranges when the TSDB accepts it, so a committed offset never passes
a record still waiting for the TSDB (see :mod:`kemi_stats.consumer.offsets`).
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

from aiokafka import TopicPartition

from kemi_stats.consumer import Ack

__all__ = ["Chunk", "Chunks"]


@dataclass(slots=True)
class Chunk:
    """Lines cut from consecutive records, and the offsets they cover, per partition."""

    seq: int
    #: line-protocol text, one or more lines per item (a record's lines, newline-joined)
    lines: list[str] = field(default_factory=list)
    line_count: int = 0
    points: int = 0
    records: int = 0
    #: partition -> (first offset, last offset) of its records in this chunk
    ranges: dict[TopicPartition, tuple[int, int]] = field(default_factory=dict)
    #: Kafka timestamp (ms) of the oldest record in the chunk
    oldest_ms: int | None = None
    created: float = field(default_factory=time.monotonic)
    acks: list[Ack] = field(default_factory=list)
    done: bool = False

    def add_offset(self, partition: TopicPartition, offset: int, timestamp_ms: int) -> None:
        """Note that the record at ``offset`` of ``partition`` is in this chunk."""
        r = self.ranges.get(partition)
        self.ranges[partition] = (offset, offset) if r is None else (r[0], offset)
        self.records += 1
        if self.oldest_ms is None or timestamp_ms < self.oldest_ms:
            self.oldest_ms = timestamp_ms


class Chunks:
    """Chunks in cut order, until the TSDB has accepted them."""

    def __init__(self) -> None:
        self._pending: deque[Chunk] = deque()
        self._seq = 0

    def new_chunk(self) -> Chunk:
        """A fresh chunk, numbered after the previous one."""
        self._seq += 1
        return Chunk(self._seq)

    def add(self, chunk: Chunk) -> None:
        """Track ``chunk`` (handed to the writer, or empty and done at once)."""
        self._pending.append(chunk)

    def complete(self, chunk: Chunk) -> None:
        """Mark ``chunk`` accepted: its ranges end; drop the finished prefix."""
        chunk.done = True
        for ack in chunk.acks:
            ack()
        while self._pending and self._pending[0].done:
            self._pending.popleft()

    @property
    def inflight(self) -> int:
        """Chunks not yet accepted."""
        return sum(1 for c in self._pending if not c.done)

    def oldest_pending_ms(self) -> int | None:
        """Kafka timestamp of the oldest record not yet accepted, or None."""
        times = [c.oldest_ms for c in self._pending if not c.done and c.oldest_ms is not None]
        return min(times) if times else None
