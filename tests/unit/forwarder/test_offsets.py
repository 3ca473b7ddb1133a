"""Commit positions never pass a record the TSDB has not accepted, whatever the finish order."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from kemi_stats.forwarder.offsets import OffsetTracker


def test_positions_move_only_across_finished_prefix() -> None:
    t = OffsetTracker()
    a, b, c = t.new_chunk(), t.new_chunk(), t.new_chunk()
    for chunk, offsets in ((a, range(0, 10)), (b, range(10, 20)), (c, range(20, 25))):
        for o in offsets:
            chunk.add_offset(0, o, 1000 + o)
        t.add(chunk)
    b.add_offset(1, 5, 999)
    t.complete(c)
    assert t.take_commit() == {}
    assert t.oldest_pending_ms() == 999
    t.complete(a)
    assert t.take_commit() == {0: 10}
    t.committed_ok({0: 10})
    assert t.take_commit() == {}
    t.complete(b)
    assert t.take_commit() == {0: 25, 1: 6}
    assert t.inflight == 0 and t.oldest_pending_ms() is None


def test_forget_drops_revoked_partitions() -> None:
    t = OffsetTracker()
    a = t.new_chunk()
    a.add_offset(0, 3, 1)
    a.add_offset(1, 7, 1)
    t.add(a)
    t.forget({1})
    t.complete(a)
    assert t.take_commit() == {0: 4}


@given(st.permutations(list(range(12))))
def test_any_completion_order_never_commits_past_unfinished(order: list[int]) -> None:
    t = OffsetTracker()
    chunks = []
    for i in range(12):
        c = t.new_chunk()
        c.add_offset(i % 3, i * 10 + 9, 0)
        t.add(c)
        chunks.append(c)
    for i in order:
        t.complete(chunks[i])
        done = {j for j in range(12) if chunks[j].done}
        prefix = 0
        while prefix in done:
            prefix += 1
        for p, pos in t.take_commit().items():
            # every chunk holding an offset below pos on partition p is finished
            assert all(chunks[j].done for j in range(12) if j % 3 == p and j * 10 + 9 < pos)
            assert pos <= max((j * 10 + 10 for j in range(prefix) if j % 3 == p), default=0)
    assert t.take_commit() == {0: 100, 1: 110, 2: 120}
