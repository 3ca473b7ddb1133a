"""Stable jitter and the APScheduler job set following registry changes."""

from __future__ import annotations

import asyncio

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from kemi_stats.registry.models import Target
from poller.scheduler.schedule import PollSchedule, first_fire, nominal_time, phase


def test_phase_is_stable_and_spread() -> None:
    assert phase("core-sw-1", 60) == phase("core-sw-1", 60)
    seconds = [int(phase(f"dev-{i}", 60)) for i in range(6000)]
    per_second = [seconds.count(s) for s in range(60)]
    assert min(per_second) > 60 and max(per_second) < 140  # ~100 each


def test_fire_times_follow_the_phase() -> None:
    p = phase("x", 10)
    t = first_fire("x", 10, 1000.0)
    assert t > 1000.0 and t - 1000.0 <= 10 and abs((t - p) % 10) < 1e-6
    assert nominal_time("x", 10, t + 0.3) == t


async def test_sync_adds_changes_and_removes_jobs() -> None:
    fired: list[str] = []

    async def fire(name: str) -> None:
        fired.append(name)

    scheduler = AsyncIOScheduler(event_loop=asyncio.get_running_loop(), timezone="UTC")
    scheduler.start()
    try:
        schedule = PollSchedule(scheduler, fire)
        t = Target(host="127.0.0.1", credential="c", profiles=["p"], interval=1, deadline=1)
        off = t.model_copy(update={"enabled": False})
        assert schedule.sync({"a": t, "b": t, "c": off}, 0) == (2, 0, 0)
        slow = t.model_copy(update={"interval": 5.0})
        assert schedule.sync({"a": slow}, 0) == (0, 1, 1)
        assert {j.id for j in scheduler.get_jobs()} == {"a"}
        schedule.update("a", None, 0)
        schedule.update("z", t, 0)
        await asyncio.sleep(2.2)
        assert "z" in fired and "a" not in fired
    finally:
        scheduler.shutdown(wait=False)
