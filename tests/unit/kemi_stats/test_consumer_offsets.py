"""Committable offsets when records finish out of order (poll jobs, TSDB batches, webhooks)."""

from __future__ import annotations

from kemi_stats.consumer import OffsetTracker


def test_commit_only_contiguous_finished_offsets() -> None:
    t = OffsetTracker()
    acks = {o: t.begin("p0", o) for o in (10, 11, 12)}
    p1 = t.begin("p1", 5)
    acks[12]()
    assert t.to_commit() == {}
    acks[10]()
    assert t.to_commit() == {"p0": 11}
    p1()
    acks[11]()
    assert t.to_commit() == {"p0": 13, "p1": 6}
    assert t.pending == 0


def test_forgotten_partition_ignores_late_completions() -> None:
    t = OffsetTracker()
    ack = t.begin("p0", 1)
    t.forget(["p0"])
    ack()
    assert t.to_commit() == {}


def test_late_ack_from_before_a_revocation_does_not_move_the_new_owner() -> None:
    t = OffsetTracker()
    old = t.begin("p0", 1)
    t.forget(["p0"])
    t.begin("p0", 1)  # assigned again, the same record re-read and not yet done
    old()
    assert t.to_commit() == {}


def test_commit_point_is_oldest_unfinished_record() -> None:
    t = OffsetTracker()
    a = t.begin(0, 10, acks=2)
    b = t.begin(0, 11)
    t.begin(0, 12, acks=0)
    assert t.to_commit() == {}
    b()
    a()
    assert t.to_commit() == {}
    a()
    assert t.to_commit() == {0: 13} and t.pending == 0
    t.committed_ok({0: 13})
    assert t.to_commit() == {}


def test_a_range_ends_at_its_last_offset() -> None:
    t = OffsetTracker()
    first = t.begin(0, 0, 9)
    second = t.begin(0, 10, 19)
    second()
    assert t.to_commit() == {}
    first()
    assert t.to_commit() == {0: 20}
