"""Tumbling windows per series and time buckets per group: when they open, fill and close.

A window is aligned to multiples of its length since the epoch, so every worker
agrees on the boundaries. It closes when a sample of a later window arrives for the
same series, or when the wall clock passes its end plus the grace period; its
aggregate is stamped with the window's start time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from calculator.state import GroupState

__all__ = ["Closed", "GroupBuckets", "window_add", "window_expired", "window_start"]

Fold = Callable[[list[float]], float]


@dataclass(frozen=True, slots=True)
class Closed:
    """A window or bucket that closed: its start and the values it collected."""

    start_ms: int
    values: list[float]


def window_start(time_ms: int, window_ms: int) -> int:
    return time_ms - time_ms % window_ms


def window_add(
    window: list[Any] | None, value: float, time_ms: int, window_ms: int
) -> tuple[list[Any] | None, Closed | None, str]:
    """Add one value; return (window state, the window it closed or None, status).

    Status is ``added``, ``opened`` or ``late`` (older than or as old as the last
    value: a duplicate or a replay, ignored).
    """
    start = window_start(time_ms, window_ms)
    if window is None:
        return [start, time_ms, [value]], None, "opened"
    cur_start, last_ms, values = window
    if time_ms <= last_ms or start < cur_start:
        return window, None, "late"
    if start > cur_start:
        return [start, time_ms, [value]], Closed(cur_start, values), "opened"
    values.append(value)
    window[1] = time_ms
    return window, None, "added"


def window_expired(window: list[Any], now_ms: int, window_ms: int, grace_ms: int) -> bool:
    """True once the wall clock is past the window's end plus the grace period."""
    return now_ms >= window[0] + window_ms + grace_ms


class GroupBuckets:
    """Time buckets of one group across resources: the latest value of each member per bucket."""

    def __init__(self, state: GroupState, bucket_ms: int, grace_ms: int) -> None:
        self.state = state
        self.bucket_ms = bucket_ms
        self.grace_ms = grace_ms

    def add(self, member: str, time_ms: int, value: float) -> tuple[list[Closed], str]:
        """Record one member's value; return buckets closed by the advanced watermark, status."""
        st = self.state
        start = window_start(time_ms, self.bucket_ms)
        if start <= st.closed_through:
            return [], "late"
        st.buckets.setdefault(start, {})[member] = value
        st.max_time_ms = max(st.max_time_ms, time_ms)
        return self.close_before(st.max_time_ms - self.grace_ms), "added"

    def close_before(self, now_ms: int) -> list[Closed]:
        """Close every bucket whose end is at or before ``now_ms`` (oldest first)."""
        st = self.state
        done = sorted(s for s in st.buckets if s + self.bucket_ms <= now_ms)
        closed = []
        for s in done:
            members = st.buckets.pop(s)
            closed.append(Closed(s, list(members.values())))
            st.closed_through = max(st.closed_through, s)
        return closed

    def expire(self, now_ms: int) -> list[Closed]:
        """Close buckets the wall clock has passed (end + grace)."""
        return self.close_before(now_ms - self.grace_ms)
