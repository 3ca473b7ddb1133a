"""The forwarder loop: consume ``kemi.metrics``, cut line-protocol batches, write, commit.

Records are decoded and turned into lines on the event loop; each full batch (or one
older than ``linger_ms``) goes to :class:`~kemi_stats.forwarder.writer.TsdbWriter`, which
retries until the TSDB accepts it. Up to ``max_inflight`` batches are out at once; past
that the assigned partitions are paused (the consumer still polls, so it stays in its
group however long the TSDB is away) and resumed when a batch is accepted. Offsets are
committed only up to records the TSDB has accepted (:mod:`~kemi_stats.forwarder.offsets`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError

from kemi_stats.codec import decode_batch
from kemi_stats.errors import BrokerError, CodecError
from kemi_stats.forwarder import metrics as m
from kemi_stats.forwarder.config import ForwarderSettings, resolve_measurement
from kemi_stats.forwarder.lineprotocol import BatchEncoder, EncodeStats
from kemi_stats.forwarder.offsets import Chunk, OffsetTracker
from kemi_stats.forwarder.visibility import VisibilityFlusher
from kemi_stats.forwarder.writer import Origin, TsdbWriter
from kemi_stats.kafka import make_consumer
from kemi_stats.settings import Settings

__all__ = ["Forwarder"]

log = logging.getLogger(__name__)


class _Rebalance(ConsumerRebalanceListener):
    def __init__(self, forwarder: Forwarder) -> None:
        self.forwarder = forwarder

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        if not revoked:
            return
        await self.forwarder.on_revoked({tp.partition for tp in revoked})

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        log.info("assigned partitions %s", sorted(tp.partition for tp in assigned))


class Forwarder:
    """Consumes one topic into the TSDB; :meth:`run` until cancelled."""

    def __init__(self, settings: Settings, fwd: ForwarderSettings | None = None) -> None:
        self.settings = settings
        self.fwd = fwd if fwd is not None else ForwarderSettings()
        self.measurement = resolve_measurement(settings, self.fwd)
        self.encoder = BatchEncoder(self.measurement)
        self.writer = TsdbWriter(settings, self.fwd)
        self.tracker = OffsetTracker()
        self.flusher = VisibilityFlusher(
            settings.tsdb_url,
            self.fwd.visibility_flush if settings.tsdb_kind == "victoriametrics" else 0.0,
        )
        self.consumer: AIOKafkaConsumer | None = None
        self._current = self.tracker.new_chunk()
        self._stats = EncodeStats()
        self._tasks: set[asyncio.Task[None]] = set()
        self._capacity = asyncio.Event()
        self._commit_lock = asyncio.Lock()
        self._last_commit = 0.0
        self._paused = False
        #: partition -> highest offset seen + 1, and end offsets read from the broker
        self._seen: dict[int, int] = {}
        self._ends: dict[int, int] = {}
        self.running = False
        m.LAG_SECONDS.set_function(self._lag_seconds)

    # -- health -------------------------------------------------------------------
    def kafka_check(self) -> tuple[bool, str]:
        """Health: the consumer is running; which partitions it holds."""
        if self.consumer is None or not self.running:
            return False, "consumer not started"
        parts = sorted(tp.partition for tp in self.consumer.assignment())
        return True, f"{self.fwd.topic} group {self.fwd.group_id}: partitions {parts}"

    def tsdb_check(self) -> tuple[bool, str]:
        """Health: writes have not been failing for longer than ``unhealthy_after``."""
        since = self.writer.failing_since
        waiting = self.tracker.inflight
        if since is None:
            return True, f"{self.settings.tsdb_url}: ok, {waiting} batches in flight"
        failing = time.monotonic() - since
        detail = (
            f"{self.settings.tsdb_url}: writes failing for {failing:.0f} s "
            f"({self.writer.last_error}); {waiting} batches waiting, nothing dropped"
        )
        return failing < self.fwd.unhealthy_after, detail

    def _lag_seconds(self) -> float:
        oldest = self.tracker.oldest_pending_ms()
        if oldest is None:
            oldest = self._current.oldest_ms
        return max(0.0, time.time() - oldest / 1000) if oldest is not None else 0.0

    # -- main loop ----------------------------------------------------------------
    async def run(self) -> None:
        """Consume until cancelled; on the way out, flush and commit what the TSDB accepted."""
        consumer = make_consumer(
            self.settings,
            group_id=self.fwd.group_id,
            max_poll_records=self.fwd.max_poll_records,
            client_id="kemi-forwarder",
        )
        consumer.subscribe([self.fwd.topic], listener=_Rebalance(self))
        try:
            await consumer.start()
        except KafkaError as exc:
            where = self.settings.kafka_bootstrap
            raise BrokerError(f"kafka {where}: cannot connect: {exc}") from exc
        self.consumer = consumer
        self.running = True
        lag_task = asyncio.create_task(self._lag_loop())
        flush_task = asyncio.create_task(self.flusher.run())
        log.info(
            "forwarding %s -> %s %s (measurement %r)", self.fwd.topic, self.settings.tsdb_kind,
            self.settings.tsdb_url, self.measurement,
        )  # fmt: skip
        try:
            while True:
                await self._step(consumer)
        finally:
            self.running = False
            for task in (lag_task, flush_task):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await asyncio.shield(self._shutdown(consumer))

    async def _step(self, consumer: AIOKafkaConsumer) -> None:
        if self.tracker.inflight >= self.fwd.max_inflight:
            if not self._paused:
                consumer.pause(*consumer.assignment())
                self._paused = True
            self._capacity.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._capacity.wait(), timeout=1.0)
            # a poll while paused keeps the consumer in its group (max.poll.interval)
            await consumer.getmany(timeout_ms=0)
            await self._maybe_commit(consumer)
            return
        if self._paused:
            consumer.resume(*consumer.assignment())
            self._paused = False
        timeout = max(1, self.fwd.linger_ms // 2) if self._current.records else 500
        fetched = await consumer.getmany(timeout_ms=timeout, max_records=self.fwd.max_poll_records)
        for tp, records in fetched.items():
            self._take(tp.partition, records)
        current = self._current
        if current.records and (
            time.monotonic() - current.created >= self.fwd.linger_ms / 1000 or not fetched
        ):
            self._dispatch()
        await self._maybe_commit(consumer)

    def _take(self, partition: int, records: list[Any]) -> None:
        encode = self.encoder.encode
        stats = self._stats
        topic = self.fwd.topic
        limit = self.fwd.batch_lines
        for r in records:
            chunk = self._current
            chunk.add_offset(partition, r.offset, r.timestamp)
            try:
                if r.value is None:
                    raise CodecError("record has no value")
                batch = decode_batch(r.value)
            except CodecError as exc:
                m.MALFORMED.inc()
                log.warning(
                    "skipped malformed record %s partition %d offset %d (key %r): %s",
                    topic, partition, r.offset, r.key, exc,
                )  # fmt: skip
                continue
            before = stats.points
            encode(batch, chunk.lines, stats)
            chunk.points += stats.points - before
            if len(chunk.lines) >= limit:
                self._dispatch()
        m.RECORDS.inc(len(records))
        if records:
            self._seen[partition] = max(self._seen.get(partition, 0), records[-1].offset + 1)
        if stats.skipped:
            for reason, n in stats.skipped.items():
                m.SAMPLES_SKIPPED.labels(reason).inc(n)
            stats.skipped.clear()

    def _dispatch(self) -> None:
        chunk = self._current
        self._current = self.tracker.new_chunk()
        if not chunk.records:
            return
        self.tracker.add(chunk)
        if not chunk.lines:
            self.tracker.complete(chunk)
            return
        task = asyncio.create_task(self._write(chunk))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        m.BATCHES_INFLIGHT.set(self.tracker.inflight)

    async def _write(self, chunk: Chunk) -> None:
        origin = Origin(self.fwd.topic, dict(chunk.ranges))
        await self.writer.write(chunk.lines, chunk.points, origin)
        self.flusher.written()
        chunk.lines = []
        self.tracker.complete(chunk)
        m.BATCHES_INFLIGHT.set(self.tracker.inflight)
        self._capacity.set()

    async def _maybe_commit(self, consumer: AIOKafkaConsumer, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_commit < self.fwd.commit_interval:
            return
        self._last_commit = now
        await self._commit(consumer)

    async def _commit(self, consumer: AIOKafkaConsumer, only: set[int] | None = None) -> None:
        async with self._commit_lock:
            positions = self.tracker.take_commit()
            if only is not None:
                positions = {p: o for p, o in positions.items() if p in only}
            assigned = {tp.partition for tp in consumer.assignment()}
            positions = {p: o for p, o in positions.items() if p in assigned}
            if not positions:
                return
            offsets = {TopicPartition(self.fwd.topic, p): o for p, o in positions.items()}
            try:
                await consumer.commit(offsets)
            except KafkaError as exc:
                m.COMMITS.labels("failed").inc()
                log.warning("commit %s failed (will retry): %s", positions, exc)
                return
            m.COMMITS.labels("ok").inc()
            self.tracker.committed_ok(positions)
            self._update_lag()

    async def on_revoked(self, partitions: set[int]) -> None:
        """Before giving partitions away: write what we hold, commit it, forget them."""
        consumer = self.consumer
        self._dispatch()
        if self._tasks:
            # bounded: while the TSDB is down this cannot finish, and the group must move on;
            # the next owner then re-reads those records, which overwrite (idempotent writes)
            limit = self.settings.kafka_session_timeout_ms / 2000
            await asyncio.wait(set(self._tasks), timeout=limit)
        if consumer is not None:
            await self._commit(consumer, only=partitions)
        self.tracker.forget(partitions)
        for p in partitions:
            self._seen.pop(p, None)
            self._ends.pop(p, None)
            with contextlib.suppress(KeyError, ValueError):
                m.LAG_RECORDS.remove(self.fwd.topic, str(p))
        log.info("revoked partitions %s", sorted(partitions))

    async def _shutdown(self, consumer: AIOKafkaConsumer) -> None:
        self._dispatch()
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=10.0)
            for task in pending:
                task.cancel()
            if pending:
                log.warning("stopping with %d batches not accepted (re-read later)", len(pending))
        with contextlib.suppress(Exception):
            await self._commit(consumer)
        await consumer.stop()
        self.writer.close()

    # -- lag -------------------------------------------------------------------
    async def _lag_loop(self) -> None:
        while True:
            await asyncio.sleep(self.fwd.lag_interval)
            consumer = self.consumer
            if consumer is None:
                continue
            tps = list(consumer.assignment())
            if not tps:
                continue
            try:
                ends = await consumer.end_offsets(tps)
            except (KafkaError, ValueError) as exc:
                log.debug("end offsets: %s", exc)
                continue
            self._ends = {tp.partition: int(o) for tp, o in ends.items()}
            for tp in tps:
                if tp.partition not in self.tracker.committed:
                    # the group's position from before this process (or none yet)
                    with contextlib.suppress(KafkaError):
                        pos = await consumer.committed(tp)
                        if pos is not None:
                            self.tracker.committed.setdefault(tp.partition, int(pos))
            self._update_lag()

    def _update_lag(self) -> None:
        consumer = self.consumer
        if consumer is None:
            return
        for tp in consumer.assignment():
            p = tp.partition
            high = max(consumer.highwater(tp) or 0, self._ends.get(p, 0), self._seen.get(p, 0))
            pos = self.tracker.committed.get(p, 0)
            m.LAG_RECORDS.labels(self.fwd.topic, str(p)).set(max(0, high - pos))
