"""The poll worker: consume poll jobs as a consumer group, poll targets at once, publish batches.

Per job: a job past its deadline is dropped and counted (never polled late); the
target, its credential and profiles come from the registry's live view (so a profile
change applies to the next poll); a target with a ``scrape_url`` is scraped instead
(:mod:`poller.scrape`); the whole poll runs under the job's deadline; the
resulting SampleBatch goes to the raw topic and only after Kafka acked it is the job's
offset committable. One failing target is a counted error, never a stalled loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque

from aiokafka import AIOKafkaProducer, TopicPartition

from kemi_stats.codec import decode_job, encode_batch
from kemi_stats.consumer import Ack, ConsumerLoop
from kemi_stats.errors import CodecError
from kemi_stats.kafka import make_consumer, make_producer
from kemi_stats.model import PollJob, SampleBatch
from kemi_stats.registry.live import Change, LiveView
from kemi_stats.registry.models import Credential, Profile, Target
from kemi_stats.runtime import ServiceRuntime
from kemi_stats.settings import Settings, load_settings
from poller.collect import TargetState, failure_batch
from poller.errors import PollError
from poller.one_shot import poll_snmp, scrape
from poller.plan import PollPlan, compile_plan
from poller.scrape import ScrapedBatch, Scraper, scrape_failure_batch
from poller.snmp import SnmpClient
from poller.startup import start_poller
from poller.worker import metrics as m

__all__ = ["NAME", "PORT", "PollWorker", "main"]

NAME = "poller"
#: default HTTP port (/healthz, /metrics); KEMI_HTTP_PORT overrides it
PORT = 9102

log = logging.getLogger("poller.worker")


class PollWorker:
    """Runs poll jobs against a live registry view; Kafka and SNMP are handed in."""

    def __init__(
        self,
        view: LiveView,
        client: SnmpClient,
        producer: AIOKafkaProducer,
        raw_topic: str,
        concurrency: int,
        scraper: Scraper | None = None,
    ) -> None:
        self.view = view
        self.client = client
        self.scraper = scraper or Scraper()
        self.producer = producer
        self.raw_topic = raw_topic
        self.semaphore = asyncio.Semaphore(concurrency)
        self.concurrency = concurrency
        self.states: dict[str, TargetState] = {}
        self._plans: dict[str, tuple[Target, tuple[Profile | None, ...], PollPlan]] = {}
        self._running: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._recent: deque[float] = deque(maxlen=100_000)
        self.in_flight = 0
        self.dropped = 0

    # --- registry changes ----------------------------------------------------------------

    def on_change(self, change: Change) -> None:
        """Forget a removed target's state (called on the event loop)."""
        if change.kind == "target" and change.new is None:
            self.states.pop(change.name, None)
            self._plans.pop(change.name, None)
            self.client.forget(change.name)
            self.scraper.forget(change.name)
            for gauge in (m.TARGET_LAST_POLL, m.TARGET_UP):
                with contextlib.suppress(KeyError):
                    gauge.remove(change.name)

    def _plan(self, name: str, target: Target) -> PollPlan:
        profiles: dict[str, Profile] = self.view.get("profile")
        used = tuple(profiles.get(p) for p in target.profiles)
        cached = self._plans.get(name)
        if (
            cached is not None
            and cached[0] is target
            and all(a is b for a, b in zip(cached[1], used, strict=True))
        ):
            return cached[2]
        plan = compile_plan(name, target, profiles)
        self._plans[name] = (target, used, plan)
        return plan

    # --- one job ----------------------------------------------------------------------

    def _drop(self, reason: str, job: PollJob | None) -> None:
        self.dropped += 1
        m.JOBS_DROPPED.labels(reason).inc()
        if job is not None and reason != "late":
            log.warning("job for target %s dropped: %s", job.target, reason)

    async def poll(self, job: PollJob) -> SampleBatch | ScrapedBatch | None:
        """Poll the job's target; None if the job is dropped (late, unknown or disabled target)."""
        now_ms = time.time() * 1000
        if now_ms >= job.deadline_ms:
            self._drop("late", job)
            return None
        target: Target | None = self.view.get("target").get(job.target)
        if target is None:
            self._drop("unknown_target", job)
            return None
        if not target.enabled:
            self._drop("disabled", job)
            return None
        if job.target in self._running:
            self._drop("overlap", job)
            return None
        self._running.add(job.target)
        self.in_flight += 1
        m.IN_FLIGHT.inc()
        started = time.monotonic()
        time_ms = int(time.time() * 1000)
        failed = scrape_failure_batch if target.scrapes else failure_batch
        batch: SampleBatch | ScrapedBatch
        try:
            if target.scrapes:
                batch = await self._scrape(job, target, time_ms)
            else:
                batch = await self._poll_snmp(job, target)
        except PollError as exc:
            reason = exc.reason
            log.info("%s", exc)
        except Exception:  # a bug or library failure on one target must not stop the others
            reason = "other"
            log.exception("target %s: poll failed unexpectedly", job.target)
        else:
            reason = ""
        finally:
            self._running.discard(job.target)
            self.in_flight -= 1
            m.IN_FLIGHT.dec()
        if reason:
            m.POLLS.labels("error").inc()
            m.ERRORS.labels(reason).inc()
            m.TARGET_UP.labels(job.target).set(0)
            duration = time.monotonic() - started
            batch = failed(job.target, target, reason, duration, time_ms, job.config_revision)
        else:
            m.POLLS.labels("ok").inc()
            m.TARGET_UP.labels(job.target).set(1)
            if isinstance(batch, ScrapedBatch):
                m.VALUES.inc(batch.exposed)
                for why, count in batch.dropped.items():
                    m.SCRAPE_DROPPED.labels(why).inc(count)
            else:
                m.VALUES.inc(batch.samples[-1].value)
        m.POLL_DURATION.observe(time.monotonic() - started)
        m.TARGET_LAST_POLL.labels(job.target).set(time.time())
        self._recent.append(time.monotonic())
        return batch

    async def _poll_snmp(self, job: PollJob, target: Target) -> SampleBatch:
        """Poll an SNMP target within the job's deadline; PollError says why it failed."""
        state = self.states.setdefault(job.target, TargetState())
        credential: Credential | None = self.view.get("credential").get(target.credential or "")
        if credential is None:
            raise PollError(job.target, "config", f"credential {target.credential} does not exist")
        plan = self._plan(job.target, target)
        batch, _ = await poll_snmp(
            self.client, job.target, target, credential, plan, state,
            remaining=job.deadline_ms / 1000 - time.time(), revision=job.config_revision,
        )  # fmt: skip
        return batch

    async def _scrape(self, job: PollJob, target: Target, time_ms: int) -> ScrapedBatch:
        """Scrape a /metrics target within the job's deadline; PollError says why it failed."""
        return await scrape(
            self.scraper, job.target, target, time_ms,
            remaining=job.deadline_ms / 1000 - time.time(), revision=job.config_revision,
        )  # fmt: skip

    async def publish(self, batch: SampleBatch | ScrapedBatch) -> None:
        """Send a batch and wait for Kafka's ack."""
        value = batch.value if isinstance(batch, ScrapedBatch) else encode_batch(batch)
        ack = await self.producer.send(self.raw_topic, value, key=batch.key)
        await ack

    async def _handle(self, tp: TopicPartition, offset: int, value: bytes, ack: Ack) -> None:
        try:
            try:
                job = decode_job(value)
            except CodecError as exc:
                log.error("poll job at %s:%s undecodable: %s", tp, offset, exc)
                self._drop("undecodable", None)
                return
            batch = await self.poll(job)
            if batch is not None:
                await self.publish(batch)
        except Exception:
            log.exception("poll job at %s:%s failed", tp, offset)
        finally:
            ack()
            self.semaphore.release()

    async def submit(self, tp: TopicPartition, offset: int, value: bytes, ack: Ack) -> None:
        """Start a job once a concurrency slot is free; ``ack`` when it is published or dropped."""
        await self.semaphore.acquire()
        task = asyncio.create_task(self._handle(tp, offset, value, ack))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self, grace: float) -> None:
        """Wait up to ``grace`` seconds for running polls to finish (at shutdown)."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=grace)

    def polls_per_second(self, window: float = 60.0) -> float:
        now = time.monotonic()
        recent = [t for t in self._recent if now - t <= window]
        if not recent:
            return 0.0
        span = max(1.0, min(window, now - recent[0]))
        return len(recent) / span


def main() -> int:
    """Run one worker process until SIGTERM/SIGINT (``python -m poller.worker``)."""
    return ServiceRuntime(NAME, load_settings(), PORT).run(serve)


async def serve(runtime: ServiceRuntime) -> None:
    """The worker process: live view, Kafka clients, the fetch loop."""
    settings: Settings = runtime.settings
    ps, view = await start_poller(settings, ["target", "credential", "profile"])
    client = SnmpClient(ps.max_oids_per_get)
    producer = make_producer(settings)
    await producer.start()
    worker = PollWorker(view, client, producer, ps.raw_topic, ps.concurrency)
    view.subscribe_on(asyncio.get_running_loop(), worker.on_change)
    consumer = make_consumer(settings, group_id=ps.group_id, max_poll_records=ps.concurrency)
    jobs = ConsumerLoop(
        consumer,
        [ps.jobs_topic],
        group=ps.group_id,
        busy=worker.semaphore.locked,
    )
    await jobs.start()

    def health() -> tuple[bool, str]:
        ok = view.connected
        return ok, (
            f"registry {'connected' if ok else 'disconnected'}; {len(view.get('target'))} targets; "
            f"{worker.polls_per_second():.1f} polls/s; in flight {worker.in_flight}; "
            f"dropped {worker.dropped}; partitions {len(jobs.assignment())}"
        )

    runtime.add_check("poller", health)
    log.info(
        "poll worker: group %s on %s, concurrency %d", ps.group_id, ps.jobs_topic, ps.concurrency
    )
    try:
        while True:
            records = await jobs.fetch(timeout_ms=200, max_records=ps.concurrency)
            for tp, recs in records.items():
                for rec in recs:
                    await worker.submit(tp, rec.offset, rec.value, jobs.begin(tp, rec.offset))
    finally:
        await jobs.stop(drain=lambda: worker.drain(5.0))
        await producer.stop()
        await worker.scraper.close()
        client.close()
        view.close()
