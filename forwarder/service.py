"""The forwarder loop: consume the sample topics, cut line-protocol batches, write, commit.

It reads the raw samples straight from ``kemi.metrics.raw`` and the calculator's derived
samples from ``kemi.metrics``: raw metrics reach the TSDB whether or not the calculator
keeps up.

(The same process also writes the ``ALERTS`` series from ``kemi.alerts``:
:mod:`forwarder.alert_series`.)

Records are decoded and turned into lines on the event loop; each full batch (or one
older than ``linger_ms``) goes to :class:`~forwarder.writer.TsdbWriter`, which
retries until the TSDB accepts it. Up to ``max_inflight`` batches are out at once; past
that the assigned partitions are paused (the consumer still polls, so it stays in its
group however long the TSDB is away) and resumed when a batch is accepted. Offsets are
committed only up to records the TSDB has accepted: each batch begins its ranges of
records on the shared :class:`~kemi_stats.consumer.ConsumerLoop` and ends them when
the TSDB has accepted it (:mod:`forwarder.chunks`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from aiokafka import TopicPartition
from aiokafka.errors import KafkaError

from forwarder import metrics as m
from forwarder.alert_series import AlertSeries
from forwarder.chunks import Chunk, Chunks
from forwarder.lineprotocol import BatchEncoder, EncodeStats
from forwarder.settings import ForwarderSettings, resolve_measurement
from forwarder.shapes import Shapes
from forwarder.visibility import VisibilityFlusher
from forwarder.writer import Origin, TsdbWriter
from kemi_stats.codec import decode_batch
from kemi_stats.consumer import ConsumerLoop, first_read
from kemi_stats.consumer.held import describe_partitions
from kemi_stats.errors import CodecError
from kemi_stats.kafka import make_consumer
from kemi_stats.runtime import ServiceRuntime
from kemi_stats.settings import Settings, load_settings
from kemi_stats.topics import ensure_topics_async

__all__ = ["NAME", "PORT", "Forwarder", "main"]

NAME = "forwarder"
#: default HTTP port (/healthz, /metrics); KEMI_HTTP_PORT overrides it
PORT = 9106

log = logging.getLogger(__name__)


class Forwarder:
    """Consumes the sample topics into the TSDB; :meth:`run` until cancelled."""

    def __init__(self, settings: Settings, fwd: ForwarderSettings | None = None) -> None:
        self.settings = settings
        self.fwd = fwd if fwd is not None else ForwarderSettings()
        self.measurement = resolve_measurement(settings, self.fwd)
        self.encoder = BatchEncoder(self.measurement)
        self.shapes = Shapes(self.encoder, self.fwd.shape_memory_mb << 20)
        m.SHAPES.set_function(lambda: len(self.shapes))
        m.SHAPE_BYTES.set_function(lambda: self.shapes.held_bytes)
        self.writer = TsdbWriter(settings, self.fwd)
        self.chunks = Chunks()
        self.flusher = VisibilityFlusher(
            settings.tsdb_url,
            self.fwd.visibility_flush if settings.tsdb_kind == "victoriametrics" else 0.0,
        )
        self.loop: ConsumerLoop | None = None
        self._current = self.chunks.new_chunk()
        self._stats = EncodeStats()
        self._tasks: set[asyncio.Task[None]] = set()
        #: partition -> highest offset seen + 1, and end offsets read from the broker
        self._seen: dict[TopicPartition, int] = {}
        self._ends: dict[TopicPartition, int] = {}
        m.LAG_SECONDS.set_function(self._lag_seconds)

    @property
    def running(self) -> bool:
        """Whether the consumer is in its group and forwarding."""
        return self.loop is not None and self.loop.running

    # -- health -------------------------------------------------------------------
    def kafka_check(self) -> tuple[bool, str]:
        """Health: the consumer is running; which partitions it holds."""
        if self.loop is None or not self.loop.running:
            return False, "consumer not started"
        held = describe_partitions(self.loop.assignment(), self.fwd.topics)
        return True, f"group {self.fwd.group_id}: {held}"

    def tsdb_check(self) -> tuple[bool, str]:
        """Health: writes have not been failing for longer than ``unhealthy_after``."""
        since = self.writer.failing_since
        waiting = self.chunks.inflight
        if since is None:
            return True, f"{self.settings.tsdb_url}: ok, {waiting} batches in flight"
        failing = time.monotonic() - since
        detail = (
            f"{self.settings.tsdb_url}: writes failing for {failing:.0f} s "
            f"({self.writer.last_error}); {waiting} batches waiting, nothing dropped"
        )
        return failing < self.fwd.unhealthy_after, detail

    def _lag_seconds(self) -> float:
        oldest = self.chunks.oldest_pending_ms()
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
        self.loop = loop = ConsumerLoop(
            consumer,
            list(self.fwd.topics),
            group=self.fwd.group_id,
            commit_interval=self.fwd.commit_interval,
            busy=lambda: self.chunks.inflight >= self.fwd.max_inflight,
            settle=self._settle,
            assigned=self._assigned,
            fetch_interval=self.fwd.fetch_interval_ms / 1000,
        )
        await loop.start()
        lag_task = asyncio.create_task(self._lag_loop())
        flush_task = asyncio.create_task(self.flusher.run())
        log.info(
            "forwarding %s -> %s %s (measurement %r)", " and ".join(self.fwd.topics), self.settings.tsdb_kind,
            self.settings.tsdb_url, self.measurement,
        )  # fmt: skip
        try:
            while True:
                await self._step(loop)
        finally:
            for task in (lag_task, flush_task):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await asyncio.shield(loop.stop(drain=self._drain))
            self.writer.close()

    async def _step(self, loop: ConsumerLoop) -> None:
        timeout = max(1, self.fwd.linger_ms // 2) if self._current.records else 500
        fetched = await loop.fetch(timeout_ms=timeout, max_records=self.fwd.max_poll_records)
        for tp, records in fetched.items():
            self._take(tp, records)
        current = self._current
        if current.records and (
            time.monotonic() - current.created >= self.fwd.linger_ms / 1000 or not fetched
        ):
            self._dispatch()

    def _take(self, tp: TopicPartition, records: list[Any]) -> None:
        encode = self.encoder.encode
        render = self.shapes.render
        stats = self._stats
        limit = self.fwd.batch_lines
        shaped, compiled = self.shapes.rendered, self.shapes.compiled
        for r in records:
            chunk = self._current
            chunk.add_offset(tp, r.offset, r.timestamp)
            value = r.value
            if value is not None:
                # a record repeating a known shape: its lines straight from its bytes
                rendered = render(r.key, value)
                if rendered is not None:
                    chunk.lines.append(rendered[0])
                    chunk.line_count += rendered[1]
                    chunk.points += rendered[2]
                    if chunk.line_count >= limit:
                        self._dispatch()
                    continue
            try:
                if value is None:
                    raise CodecError("record has no value")
                batch = decode_batch(value)
            except CodecError as exc:
                m.MALFORMED.inc()
                log.warning(
                    "skipped malformed record %s partition %d offset %d (key %r): %s",
                    tp.topic, tp.partition, r.offset, r.key, exc,
                )  # fmt: skip
                continue
            points, lines = stats.points, stats.lines
            encode(batch, chunk.lines, stats)
            chunk.points += stats.points - points
            chunk.line_count += stats.lines - lines
            if stats.points - points == len(batch.samples):
                self.shapes.learn(r.key, value, batch)
            if chunk.line_count >= limit:
                self._dispatch()
        m.RECORDS.inc(len(records))
        m.RECORDS_SHAPED.inc(self.shapes.rendered - shaped)
        m.SHAPES_COMPILED.inc(self.shapes.compiled - compiled)
        if records:
            self._seen[tp] = max(self._seen.get(tp, 0), records[-1].offset + 1)
        if stats.skipped:
            for reason, n in stats.skipped.items():
                m.SAMPLES_SKIPPED.labels(reason).inc(n)
            stats.skipped.clear()

    def _dispatch(self) -> None:
        chunk = self._current
        self._current = self.chunks.new_chunk()
        if not chunk.records or self.loop is None:
            return
        chunk.acks = [
            self.loop.begin(tp, first, last) for tp, (first, last) in chunk.ranges.items()
        ]
        self.chunks.add(chunk)
        if not chunk.lines:
            self.chunks.complete(chunk)
            return
        task = asyncio.create_task(self._write(chunk))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        m.BATCHES_INFLIGHT.set(self.chunks.inflight)

    async def _write(self, chunk: Chunk) -> None:
        origin = Origin(dict(chunk.ranges))
        await self.writer.write(chunk.lines, chunk.points, origin)
        self.flusher.written()
        chunk.lines = []
        self.chunks.complete(chunk)
        m.BATCHES_INFLIGHT.set(self.chunks.inflight)

    async def _settle(self, revoked: set[TopicPartition]) -> None:
        """Before giving partitions away: hand what we hold to the TSDB and wait (bounded)."""
        self._dispatch()
        if self._tasks:
            # bounded: while the TSDB is down this cannot finish, and the group must move on;
            # the next owner then re-reads those records, which overwrite (idempotent writes)
            limit = self.settings.kafka_session_timeout_ms / 2000
            await asyncio.wait(set(self._tasks), timeout=limit)
        for tp in revoked:
            self._seen.pop(tp, None)
            self._ends.pop(tp, None)
            with contextlib.suppress(KeyError, ValueError):
                m.LAG_RECORDS.remove(tp.topic, str(tp.partition))

    async def _assigned(self, assigned: set[TopicPartition]) -> None:
        """A group upgraded from reading raw samples through ``kemi.metrics`` starts the raw
        topic at its end (:mod:`kemi_stats.consumer.first_read`)."""
        loop = self.loop
        if loop is not None and self.fwd.raw_topic:
            held = first_read.hold(loop.consumer, assigned, self.fwd.raw_topic)
            loop.held.update(held)  # a loop waking from busy must not resume them early
            try:
                await first_read.place(loop.consumer, held, self.fwd.topic, self.fwd.group_id)
            finally:
                loop.held.difference_update(held)

    async def _drain(self) -> None:
        self._dispatch()
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=10.0)
            for task in pending:
                task.cancel()
            if pending:
                log.warning("stopping with %d batches not accepted (re-read later)", len(pending))

    # -- lag -------------------------------------------------------------------
    async def _lag_loop(self) -> None:
        while True:
            await asyncio.sleep(self.fwd.lag_interval)
            loop = self.loop
            if loop is None:
                continue
            tps = list(loop.assignment())
            if not tps:
                continue
            try:
                ends = await loop.consumer.end_offsets(tps)
            except (KafkaError, ValueError) as exc:
                log.debug("end offsets: %s", exc)
                continue
            self._ends = {tp: int(o) for tp, o in ends.items()}
            committed = loop.tracker.committed
            for tp in tps:
                if tp not in committed:
                    # the group's position from before this process (or none yet)
                    with contextlib.suppress(KafkaError):
                        pos = await loop.consumer.committed(tp)
                        if pos is not None:
                            committed.setdefault(tp, int(pos))
            self._update_lag(loop)

    def _update_lag(self, loop: ConsumerLoop) -> None:
        committed = loop.tracker.committed
        for tp in loop.assignment():
            high = max(
                loop.consumer.highwater(tp) or 0, self._ends.get(tp, 0), self._seen.get(tp, 0)
            )
            pos = committed.get(tp, 0)
            m.LAG_RECORDS.labels(tp.topic, str(tp.partition)).set(max(0, high - pos))


def main() -> int:
    """Run the forwarder until SIGTERM/SIGINT (``python -m forwarder``)."""
    settings = load_settings()

    async def serve(runtime: ServiceRuntime) -> None:
        fwd = ForwarderSettings()
        forwarder = Forwarder(settings, fwd)
        runtime.add_check("kafka", forwarder.kafka_check)
        runtime.add_check("tsdb", forwarder.tsdb_check)
        await ensure_topics_async(settings)
        alerts = AlertSeries(settings, fwd, forwarder.encoder, forwarder.writer)
        async with asyncio.TaskGroup() as group:
            group.create_task(forwarder.run())
            group.create_task(alerts.run())

    return ServiceRuntime(NAME, settings, PORT).run(serve)
