"""Commit positions never pass a record the TSDB has not accepted, whatever the finish order."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from forwarder.chunks import Chunk, Chunks
from kemi_stats.consumer import OffsetTracker


def _add(t: OffsetTracker, chunks: Chunks, chunk: Chunk) -> None:
    """What the forwarder does when it hands a chunk to the writer."""
    chunk.acks = [t.begin(p, first, last) for p, (first, last) in chunk.ranges.items()]
    chunks.add(chunk)


def test_positions_move_only_across_finished_prefix() -> None:
    t, chunks = OffsetTracker(), Chunks()
    a, b, c = chunks.new_chunk(), chunks.new_chunk(), chunks.new_chunk()
    for chunk, offsets in ((a, range(0, 10)), (b, range(10, 20)), (c, range(20, 25))):
        for o in offsets:
            chunk.add_offset(0, o, 1000 + o)
    b.add_offset(1, 5, 999)
    for chunk in (a, b, c):
        _add(t, chunks, chunk)
    chunks.complete(c)
    assert t.to_commit() == {}
    assert chunks.oldest_pending_ms() == 999
    chunks.complete(a)
    assert t.to_commit() == {0: 10}
    t.committed_ok({0: 10})
    assert t.to_commit() == {}
    chunks.complete(b)
    assert t.to_commit() == {0: 25, 1: 6}
    assert chunks.inflight == 0 and chunks.oldest_pending_ms() is None


def test_forget_drops_revoked_partitions() -> None:
    t, chunks = OffsetTracker(), Chunks()
    a = chunks.new_chunk()
    a.add_offset(0, 3, 1)
    a.add_offset(1, 7, 1)
    _add(t, chunks, a)
    t.forget({1})
    chunks.complete(a)
    assert t.to_commit() == {0: 4}


@given(st.permutations(list(range(12))))
def test_any_completion_order_never_commits_past_unfinished(order: list[int]) -> None:
    t, chunks = OffsetTracker(), Chunks()
    cut = []
    for i in range(12):
        c = chunks.new_chunk()
        c.add_offset(i % 3, i * 10 + 9, 0)
        _add(t, chunks, c)
        cut.append(c)
    for i in order:
        chunks.complete(cut[i])
        for p, pos in t.to_commit().items():
            # every chunk holding an offset below pos on partition p is finished
            assert all(cut[j].done for j in range(12) if j % 3 == p and j * 10 + 9 < pos)
    assert t.to_commit() == {0: 100, 1: 110, 2: 120}
