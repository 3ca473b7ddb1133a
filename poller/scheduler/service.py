"""The poll scheduler: one poll job per target per interval on the jobs topic, from the leader only.

Every scheduler process keeps the full schedule (so a standby's phases are already
in place); a tick publishes only while this process holds the etcd lease. Targets
follow the registry's live view: an added target fires at its next phase, a removed
one stops, a changed interval is rescheduled, without restart.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from kemi_stats.codec import encode_job
from kemi_stats.kafka import make_producer
from kemi_stats.model import PollJob
from kemi_stats.registry.etcd import EtcdConfig
from kemi_stats.registry.live import Change, LiveView
from kemi_stats.runtime import ServiceRuntime
from kemi_stats.settings import Settings, load_settings
from poller.scheduler import metrics as m
from poller.scheduler.leader import LeaderElection
from poller.scheduler.schedule import PollSchedule, nominal_time
from poller.startup import start_poller

__all__ = ["NAME", "PORT", "JobPublisher", "main"]

NAME = "poller-scheduler"
#: default HTTP port (/healthz, /metrics); KEMI_HTTP_PORT overrides it
PORT = 9101

log = logging.getLogger("poller.scheduler")


@dataclass
class JobPublisher:
    """Turns a schedule tick for a target into a PollJob on Kafka (if this process leads)."""

    view: LiveView
    producer: AIOKafkaProducer
    topic: str
    is_leader: Callable[[], bool]
    published: int = 0
    errors: int = 0

    def leading(self) -> bool:
        return self.is_leader()

    def job_for(self, name: str, now: float) -> PollJob | None:
        """The job of target ``name`` for the tick nearest ``now`` (None if the target is gone)."""
        target = self.view.get("target").get(name)
        if target is None or not target.enabled:
            return None
        scheduled = nominal_time(name, target.interval, now)
        return PollJob(
            target=name,
            profiles=list(target.profiles),
            scheduled_ms=int(scheduled * 1000),
            deadline_ms=int((scheduled + target.deadline) * 1000),
            config_revision=self.view.revision,
            sequence=round(scheduled / target.interval),
        )

    async def fire(self, name: str) -> None:
        """One tick of target ``name``."""
        if not self.leading():
            m.FIRES.labels("standby").inc()
            return
        job = self.job_for(name, time.time())
        if job is None:
            m.FIRES.labels("no_target").inc()
            return
        try:
            ack = await self.producer.send(self.topic, encode_job(job), key=job.key)
            await ack
        except Exception as exc:
            self.errors += 1
            m.PUBLISH_ERRORS.inc()
            m.FIRES.labels("error").inc()
            log.warning("target %s: publish poll job: %s", name, exc)
            return
        self.published += 1
        m.PUBLISHED.inc()
        m.FIRES.labels("published").inc()


def main() -> int:
    """Run the scheduler until SIGTERM/SIGINT (``python -m poller.scheduler``)."""
    return ServiceRuntime(NAME, load_settings(), PORT).run(serve)


async def serve(runtime: ServiceRuntime) -> None:
    """The scheduler process: live view, leader election, APScheduler, producer."""
    settings: Settings = runtime.settings
    ps, view = await start_poller(settings, ["target"])
    producer = make_producer(settings)
    await producer.start()
    identity = f"{socket.gethostname()}:{os.getpid()}"
    loop = asyncio.get_running_loop()

    def on_leader(leading: bool) -> None:
        m.LEADER.set(1 if leading else 0)
        m.LEADER_CHANGES.inc()

    election = LeaderElection(
        EtcdConfig.from_settings(settings),
        f"{settings.etcd_prefix}leader/{ps.election}",
        identity,
        ps.lease_ttl,
        on_change=on_leader,
    )
    publisher = JobPublisher(view, producer, ps.jobs_topic, lambda: election.is_leader)
    scheduler = AsyncIOScheduler(event_loop=loop, timezone="UTC")
    schedule = PollSchedule(scheduler, publisher.fire)

    def on_change(change: Change) -> None:
        schedule.update(change.name, change.new, time.time())
        m.TARGETS.set(len(schedule.jobs))

    scheduler.start()
    schedule.sync(view.get("target"), time.time())
    m.TARGETS.set(len(schedule.jobs))
    view.subscribe_on(loop, on_change)
    # changes between the first sync and the subscription: sync once more
    schedule.sync(view.get("target"), time.time())
    election.start()

    def health() -> tuple[bool, str]:
        role = "leader" if election.is_leader else "standby"
        registry_state = "connected" if view.connected else "disconnected"
        return view.connected, (
            f"{role}; {len(schedule.jobs)} targets scheduled; "
            f"{publisher.published} jobs published, {publisher.errors} publish errors; "
            f"registry {registry_state}"
        )

    runtime.add_check("scheduler", health)
    log.info(
        "poll scheduler %s: %d targets, jobs to %s", identity, len(schedule.jobs), ps.jobs_topic
    )
    try:
        await asyncio.Event().wait()
    finally:
        scheduler.shutdown(wait=False)
        await asyncio.to_thread(election.stop)
        await producer.stop()
        view.close()
