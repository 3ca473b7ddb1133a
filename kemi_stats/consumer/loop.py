"""The consume/commit loop every Kafka-consuming service shares.

::

    fetch ──> service begins work per record (tracker.begin -> ack)
      │           work finishes in any order, calls ack
      │  busy? pause partitions, wait for an ack, poll with timeout 0 (stay in the group)
      └─ every commit_interval: commit the finished prefix of each assigned partition
    revoke: service settles (flush what it holds) -> commit those partitions -> forget them
    stop:   last commit -> consumer stops

The service decides what "done" means (a poll published, a batch in the TSDB, a
webhook delivered); the loop guarantees that no offset is committed past a record
whose work is not done.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Hashable, Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from prometheus_client import Counter

from kemi_stats.consumer.lag import LagClock
from kemi_stats.consumer.offsets import Ack, OffsetTracker
from kemi_stats.consumer.rebalance import PartitionsHook, RebalanceListener
from kemi_stats.errors import BrokerError

__all__ = ["ConsumerLoop"]

log = logging.getLogger(__name__)

COMMITS = Counter(
    "kemi_consumer_commits_total", "Offset commits by consumer group", ["group", "outcome"]
)

Records = dict[TopicPartition, list[Any]]


async def _nothing(partitions: set[TopicPartition]) -> None:
    return None


def _noop() -> None:
    return None


class ConsumerLoop:
    """One group consumer: fetch, track out-of-order completion, commit the finished prefix."""

    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        topics: list[str],
        *,
        group: str,
        commit_interval: float = 1.0,
        busy: Callable[[], bool] | None = None,
        settle: PartitionsHook = _nothing,
        assigned: PartitionsHook = _nothing,
        commit_timeout: float = 5.0,
        fetch_interval: float = 0.0,
    ) -> None:
        """``fetch_interval``: after a fetch that was not full, the next one waits until this
        many seconds have passed since it began (see :class:`Pace`)."""
        self.consumer = consumer
        self.topics = topics
        self.group = group
        self.tracker = OffsetTracker()
        self.commit_interval = commit_interval
        self._busy = busy
        self._settle = settle
        self._on_assigned = assigned
        self._pace = Pace(fetch_interval)
        self._commit_timeout = commit_timeout
        self._progress = asyncio.Event()
        self._commit_lock = asyncio.Lock()
        self._last_commit = time.monotonic()
        self._paused = False
        #: partitions paused by the service until it resumes them (a first read deciding
        #: where to start, :mod:`kemi_stats.consumer.first_read`): never resumed here
        self.held: set[TopicPartition] = set()
        #: partition -> its generation when the last fetch returned records of it
        self._fetched: dict[TopicPartition, int] = {}
        self.running = False
        self.lag = LagClock(group, ",".join(topics))

    def begin(self, tp: TopicPartition, first: int, last: int | None = None, acks: int = 1) -> Ack:
        """Records ``first..last`` of ``tp`` are being worked on; the ack (``acks`` times) ends it."""
        now = self.tracker.generation(tp)
        if self._fetched.get(tp, now) != now:
            # fetched before the partition was revoked: its new owner reads them again
            return _noop
        done = self.tracker.begin(tp, first, last, acks)
        progress = self._progress

        def ack() -> None:
            done()
            progress.set()

        return ack

    def assignment(self) -> set[TopicPartition]:
        """The partitions this consumer holds now."""
        return set(self.consumer.assignment())

    async def start(self) -> None:
        """Subscribe and join the group; a broker that cannot be reached is a BrokerError."""
        self.consumer.subscribe(
            self.topics, listener=RebalanceListener(self._revoked, self._assigned)
        )
        try:
            await self.consumer.start()
        except KafkaError as exc:
            raise BrokerError(f"kafka: group {self.group}: cannot connect: {exc}") from exc
        self.running = True

    async def fetch(self, timeout_ms: int = 200, max_records: int | None = None) -> Records:
        """The next records (maybe none); commits when due; while busy, waits without fetching.

        Hand the records over (``begin``) before awaiting anything else: a rebalance in
        between makes them stale, and ``begin`` then leaves them to the new owner.
        """
        consumer = self.consumer
        # commit first, so nothing runs between a fetch and the hand-over of its records
        await self.commit_if_due()
        records: Records
        if self._busy is not None and self._busy():
            # every time: a rebalance resumes the partitions it assigns
            consumer.pause(*consumer.assignment())
            self._paused = True
            self._progress.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._progress.wait(), timeout=1.0)
            # a poll while paused keeps the consumer in its group (max.poll.interval); what
            # it returns (a partition assigned since the pause) is handed over, never dropped
            records = await consumer.getmany(timeout_ms=0)
        else:
            if self._paused:
                consumer.resume(*(consumer.assignment() - self.held))
                self._paused = False
            await self._pace.wait()
            records = await consumer.getmany(timeout_ms=timeout_ms, max_records=max_records)
            self._pace.fetched(records, max_records)
            self.lag.fetched(oldest_timestamp(records))
        generation = self.tracker.generation
        self._fetched = {tp: generation(tp) for tp in records}
        return records

    async def commit_if_due(self) -> None:
        """Commit if ``commit_interval`` has passed since the last commit."""
        if time.monotonic() - self._last_commit >= self.commit_interval:
            await self.commit()

    async def commit(self, only: set[TopicPartition] | None = None) -> None:
        """Commit the finished prefix of every assigned partition (or of ``only``)."""
        async with self._commit_lock:
            self._last_commit = time.monotonic()
            held = self.assignment() if only is None else only & self.assignment()
            positions: dict[Hashable, int] = {
                tp: o for tp, o in self.tracker.to_commit().items() if tp in held
            }
            if not positions:
                return
            try:
                await asyncio.wait_for(self.consumer.commit(positions), self._commit_timeout)
            except Exception as exc:  # any commit failure is retried at the next tick
                COMMITS.labels(self.group, "failed").inc()
                log.warning("group %s: offset commit failed (will retry): %s", self.group, exc)
                return
            COMMITS.labels(self.group, "ok").inc()
            self.tracker.committed_ok(positions)

    async def _revoked(self, partitions: set[TopicPartition]) -> None:
        if not partitions:
            return
        await self._settle(partitions)
        await self.commit(only=partitions)
        self.tracker.forget(partitions)
        log.info("group %s: revoked %s", self.group, _names(partitions))

    async def _assigned(self, partitions: set[TopicPartition]) -> None:
        log.info("group %s: assigned %s", self.group, _names(partitions))
        await self._on_assigned(partitions)

    async def stop(self, drain: Callable[[], Awaitable[None]] | None = None) -> None:
        """Let the service finish (``drain``), commit what is done, leave the group."""
        self.running = False
        try:
            if drain is not None:
                await drain()
            await asyncio.shield(self.commit())
        except Exception:
            log.exception("group %s: final commit failed", self.group)
        finally:
            await self.consumer.stop()


class Pace:
    """At most one fetch per ``interval`` seconds while the consumer keeps up.

    A broker answers a fetch at once when it has anything new, so a consumer that keeps
    up with a steady stream fetches as fast as its loop goes, a few records each time.
    The broker's cost is mostly per fetch (the local one's grows with what it holds:
    ``bench/RESULTS.md``), and ``fetch.min.bytes`` is not honoured by every broker, so
    the wait is ours: after a fetch that was not full, the next one begins ``interval``
    after it. A full fetch (a backlog) is followed at once.
    """

    __slots__ = ("_full", "_interval", "_started")

    def __init__(self, interval: float) -> None:
        self._interval = interval
        self._started = 0.0
        self._full = True

    async def wait(self) -> None:
        """Sleep until the next fetch may begin; note that it begins."""
        if self._interval > 0 and not self._full:
            delay = self._started + self._interval - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        self._started = time.monotonic()

    def fetched(self, records: Mapping[Any, list[Any]], max_records: int | None) -> None:
        """The fetch returned ``records``; full when it reached ``max_records``."""
        self._full = max_records is not None and sum(map(len, records.values())) >= max_records


def oldest_timestamp(records: Records) -> int | None:
    """The smallest Kafka timestamp (ms) among the first record of each partition; None
    for no records, -1 when none of them has a timestamp (which leaves the lag as it was)."""
    if not records:
        return None
    stamps = [recs[0].timestamp for recs in records.values() if recs and recs[0].timestamp > 0]
    return min(stamps, default=-1)


def _names(partitions: set[TopicPartition]) -> str:
    return ", ".join(f"{tp.topic}[{tp.partition}]" for tp in sorted(partitions))
