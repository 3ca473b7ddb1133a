"""When each target is polled: one APScheduler job per target, phase-shifted by a stable jitter.

A target with interval I fires at ``k*I + phase`` (epoch seconds) where ``phase`` is a
hash of its name modulo I: 10,000 targets spread evenly over the minute instead of
firing in the same second, and a target keeps its phase across restarts and failover,
so the standby continues the same rhythm the leader had.
"""

from __future__ import annotations

import contextlib
import math
import zlib
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime

from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from kemi_stats.registry.models import Target

__all__ = ["PollSchedule", "nominal_time", "phase"]


def phase(name: str, interval: float) -> float:
    """The target's stable offset within its interval, in seconds (millisecond steps)."""
    steps = max(1, int(interval * 1000))
    return (zlib.crc32(name.encode()) % steps) / 1000.0


def nominal_time(name: str, interval: float, now: float) -> float:
    """The scheduled fire time of ``name`` nearest to ``now`` (epoch seconds)."""
    p = phase(name, interval)
    return p + round((now - p) / interval) * interval


def first_fire(name: str, interval: float, now: float) -> float:
    """The first fire time of ``name`` strictly after ``now``."""
    p = phase(name, interval)
    return p + (math.floor((now - p) / interval) + 1) * interval


class PollSchedule:
    """Keeps one interval job per enabled target in an APScheduler, following registry changes."""

    def __init__(self, scheduler: AsyncIOScheduler, fire: Callable[[str], Awaitable[None]]) -> None:
        self.scheduler = scheduler
        self.fire = fire
        #: name -> interval of the scheduled jobs
        self.jobs: dict[str, float] = {}

    def sync(self, targets: Mapping[str, Target], now: float) -> tuple[int, int, int]:
        """Make the jobs match ``targets``; returns (added, changed, removed)."""
        wanted = {n: t.interval for n, t in targets.items() if t.enabled}
        added = changed = removed = 0
        for name in list(self.jobs):
            if name not in wanted:
                self.remove(name)
                removed += 1
        for name, interval in wanted.items():
            current = self.jobs.get(name)
            if current == interval:
                continue
            self._add(name, interval, now)
            if current is None:
                added += 1
            else:
                changed += 1
        return added, changed, removed

    def update(self, name: str, target: Target | None, now: float) -> None:
        """Apply one target's change."""
        if target is None or not target.enabled:
            if name in self.jobs:
                self.remove(name)
            return
        if self.jobs.get(name) != target.interval:
            self._add(name, target.interval, now)

    def _add(self, name: str, interval: float, now: float) -> None:
        start = first_fire(name, interval, now)
        self.scheduler.add_job(
            self.fire,
            IntervalTrigger(seconds=interval, start_date=datetime.fromtimestamp(start, UTC)),
            args=[name],
            id=name,
            name=name,
            replace_existing=True,
            coalesce=True,
            max_instances=1,
            # a tick that could not run within a quarter interval is skipped, not run late
            misfire_grace_time=max(1, int(interval / 4)),
        )
        self.jobs[name] = interval

    def remove(self, name: str) -> None:
        self.jobs.pop(name, None)
        with contextlib.suppress(JobLookupError):
            self.scheduler.remove_job(name)
