"""Committable offsets when jobs finish out of order."""

from __future__ import annotations

from poller.offsets import OffsetTracker


def test_commit_only_contiguous_finished_offsets() -> None:
    t = OffsetTracker()
    for o in (10, 11, 12):
        t.started("p0", o)
    t.started("p1", 5)
    t.done("p0", 12)
    assert t.committable() == {}
    t.done("p0", 10)
    assert t.committable() == {"p0": 11}
    t.done("p1", 5)
    t.done("p0", 11)
    assert t.committable() == {"p0": 13, "p1": 6}
    assert t.pending() == 0


def test_forgotten_partition_ignores_late_completions() -> None:
    t = OffsetTracker()
    t.started("p0", 1)
    t.forget(["p0"])
    t.done("p0", 1)
    assert t.committable() == {}
