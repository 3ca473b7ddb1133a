"""The evaluator process: Kafka in and out, live rules and silences, checkpoints, HTTP API.

Loop: fetch a chunk of samples -> :class:`Engine` -> send transitions to ``kemi.alerts``
(key: fingerprint). Samples come from two topics: the raw ones straight from
``kemi.metrics.raw`` (so alerts on raw metrics do not wait for, nor depend on, the
calculator) and the derived ones from ``kemi.metrics``. Each series lives in one
partition of one of them; a state is kept under its *slot*, the partition's number
in its topic's range of slots (raw partition p is slot p, derived partition p is
``1 << 16 | p``), so the two topics' partitions may be spread over the evaluators in
any way. Every ``checkpoint_interval``: wait for the
broker to ack every sent transition, then save dirty states *and* the offsets they
reflect in one SQLite transaction, then commit the offsets to Kafka. After a crash
the evaluator resumes from the saved offsets with the saved states, so no pending
time is lost and no firing alert re-fires; transitions sent after the last
checkpoint may be sent again, which the notifier's dedup stage absorbs.

No-data and repeat timers run on ``max(wall clock, newest event time)`` and only
while the consumer is caught up (the last fetch was not full): a backlog after a
restart must not look like silence.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from aiohttp import web
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from alerting.evaluator import metrics as m
from alerting.evaluator.engine import Engine
from alerting.evaluator.store import StateStore
from alerting.settings import AlertingSettings
from alerting.silences import SilenceSet
from alerting.topics import ensure_alerting_topics
from kemi_stats.codec import alert_from_json, alert_to_json, decode_batch_reading, encode_alert
from kemi_stats.consumer import RebalanceListener, first_read
from kemi_stats.consumer.held import describe_partitions, partitions_by_topic
from kemi_stats.consumer.lag import LagClock
from kemi_stats.consumer.loop import Pace, oldest_timestamp
from kemi_stats.durations import format_duration
from kemi_stats.errors import CodecError, KemiError, NotFoundError
from kemi_stats.kafka import make_consumer, make_producer
from kemi_stats.model import AlertEvent
from kemi_stats.registry.live import Change, LiveView
from kemi_stats.runtime import ServiceRuntime
from kemi_stats.settings import Settings, load_settings

__all__ = ["NAME", "PORT", "EvaluatorService", "main"]

log = logging.getLogger(__name__)

NAME = "alert-evaluator"
#: default HTTP port (/healthz, /metrics); KEMI_HTTP_PORT overrides it
PORT = 9104
MAX_RECORDS = 2000
#: the first slot of the derived topic: its partition p is slot ``DERIVED_SLOTS | p``, a raw
#: topic's partition p is slot p
DERIVED_SLOTS = 1 << 16
#: how often expired silences past their retention are looked for (seconds)
SWEEP_INTERVAL = 60.0
#: seconds a stopping evaluator waits for its last transitions' acks (see _final_checkpoint)
FINAL_CHECKPOINT_WAIT = 5.0


class EvaluatorService:
    """One evaluator instance: owns the states of the partitions assigned to it."""

    def __init__(self, settings: Settings, asettings: AlertingSettings | None = None) -> None:
        self.settings = settings
        self.asettings = asettings or AlertingSettings()
        self.silences = SilenceSet()
        #: the registry revision whose rules and silences are in force
        self.applied_revision = 0
        self.engine = Engine(
            silenced=self.silences.covers,
            history_size=self.asettings.history_size,
            series_ttl_ms=int(self.asettings.series_ttl * 1000),
        )
        state_dir = settings.data_dir / "alert-evaluator"
        self.store = StateStore(state_dir / "state.sqlite", self.asettings.history_size)
        self.view: LiveView | None = None
        self.consumer: AIOKafkaConsumer | None = None
        self.producer: AIOKafkaProducer | None = None
        #: the sample topics, raw first, and the first slot of each
        self.topics = self.asettings.sample_topics
        self._base = {t: 0 if t == self.asettings.raw_topic else DERIVED_SLOTS for t in self.topics}
        #: next offset to read per partition held
        self.positions: dict[TopicPartition, int] = {}
        #: the partitions held
        self.held: set[TopicPartition] = set()
        self.lag = LagClock(self.asettings.evaluator_group, ",".join(self.topics))
        self._pace = Pace(self.asettings.fetch_interval_ms / 1000)
        self.caught_up = False
        self._lock = asyncio.Lock()
        self._config_dirty = asyncio.Event()
        self._pending_sends: list[asyncio.Future[Any]] = []
        self._last_tick = self._last_checkpoint = 0.0
        self._last_sweep = 0.0
        self._samples_seen = 0

    # --- registry -------------------------------------------------------------------

    def _on_change(self, change: Change) -> None:
        if change.kind != "derived":  # derived names matter once, at start (use_slots)
            self._config_dirty.set()

    def _reload_config(self) -> list[AlertEvent]:
        assert self.view is not None
        self._config_dirty.clear()
        self.silences.update(self.view.get("silence"))
        events = self.engine.set_rules(self.view.get("rule"), self.view.revision)
        self.applied_revision = self.view.revision
        m.RULES.set(len(self.engine.rules))
        m.INVALID_RULES.set(len(self.engine.invalid_rules))
        log.info(
            "config at revision %d: %d rules (%d invalid), %d silences",
            self.view.revision,
            len(self.engine.rules),
            len(self.engine.invalid_rules),
            len(self.silences),
        )
        return events

    # --- rebalance ------------------------------------------------------------------

    def slot(self, tp: TopicPartition) -> int:
        """The slot under which the states of ``tp``'s series are kept."""
        return self._base[tp.topic] | tp.partition

    def describe_held(self, held: set[TopicPartition] | None = None) -> str:
        """``kemi.metrics.raw partitions [0, 1], kemi.metrics partitions [0, 1]``."""
        return describe_partitions(self.held if held is None else held, self.topics)

    async def on_assigned(self, assigned: set[TopicPartition]) -> None:
        assert self.consumer is not None
        raw = self.asettings.raw_topic
        # nothing of a raw partition is read before its start is decided (first_read)
        held = first_read.hold(self.consumer, assigned, raw) if raw else []
        try:
            await self._assigned(assigned, held)
        finally:
            self.consumer.resume(*held)

    async def _assigned(self, assigned: set[TopicPartition], held: list[TopicPartition]) -> None:
        async with self._lock:
            mine = {tp for tp in assigned if tp.topic in self._base}
            fresh = {self.slot(tp) for tp in mine - self.held}
            events = self.engine.restore(self.store.load_series(fresh), self.store.rule_docs())
            await self._send(events)
            saved = {t: self.store.offsets(t) for t in self.topics}
            assert self.consumer is not None
            # a raw partition with no saved offset: where the group starts it (an upgraded
            # group: at its end), committed and noted for the next checkpoint
            unsaved = [tp for tp in held if tp.partition not in saved.get(tp.topic, {})]
            await first_read.place(
                self.consumer, unsaved, self.asettings.metrics_topic,
                self.asettings.evaluator_group, self.positions,
            )  # fmt: skip
            for tp in mine:
                offset = saved[tp.topic].get(tp.partition)
                if self.slot(tp) in fresh and offset is not None:
                    self.consumer.seek(tp, offset)
                    self.positions[tp] = offset
            self.held |= mine
            m.SERIES.set(len(self.engine.series))
            log.info(
                "assigned %s (%d states restored)",
                self.describe_held(mine),
                len(self.engine.series),
            )

    async def on_revoked(self, revoked: set[TopicPartition]) -> None:
        async with self._lock:
            mine = {tp for tp in revoked if tp.topic in self._base}
            if not mine:
                return
            await self._checkpoint(commit=False)
            slots = {self.slot(tp) for tp in mine}
            dropped = self.engine.forget_partitions(slots)
            for tp in mine:
                self.positions.pop(tp, None)
            self.held -= mine
            log.info("revoked %s (%d states handed over)", self.describe_held(mine), dropped)

    # --- the loop -------------------------------------------------------------------

    async def _send(self, events: list[AlertEvent]) -> None:
        assert self.producer is not None
        topic = self.asettings.alerts_topic
        for ev in events:
            fut = await self.producer.send(topic, encode_alert(ev), key=ev.key)
            self._pending_sends.append(fut)
            m.TRANSITIONS.labels(ev.status).inc()

    async def _checkpoint(self, commit: bool = True) -> None:
        started = time.perf_counter()
        assert self.producer is not None and self.consumer is not None
        if self._pending_sends:
            sends, self._pending_sends = self._pending_sends, []
            await asyncio.gather(*sends)  # every transition acked before its state is saved
        upserts, deletes, history, rules_changed = self.engine.drain()
        self.store.checkpoint(
            upserts=upserts,
            deletes=deletes,
            offsets=self.positions,
            history=[alert_to_json(e) for e in history],
            rules=self.engine.rule_docs() if rules_changed else None,
        )
        if commit and self.positions:
            try:
                await asyncio.wait_for(self.consumer.commit(dict(self.positions)), 5.0)
            except Exception as exc:  # the saved offsets are authoritative; Kafka's are for lag
                log.warning("offset commit failed (saved locally): %s", exc)
        m.CHECKPOINT.observe(time.perf_counter() - started)
        m.SERIES.set(len(self.engine.series))

    async def _final_checkpoint(self) -> None:
        """The checkpoint on the way out, waited for at most FINAL_CHECKPOINT_WAIT seconds.

        With the broker gone, the acks of the last transitions never come: the saved state
        then stays at the last checkpoint, and the next start re-derives those transitions
        from its offsets (nothing is lost), rather than holding the stop until the
        producer's timeout (an orchestrator kills a process that takes that long)."""
        checkpoint = asyncio.ensure_future(self._checkpoint())
        try:
            await asyncio.wait_for(asyncio.shield(checkpoint), FINAL_CHECKPOINT_WAIT)
        except TimeoutError:
            checkpoint.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await checkpoint
            log.warning(
                "final checkpoint not done within %.0f s (Kafka unreachable?): the next start "
                "resumes from the last one", FINAL_CHECKPOINT_WAIT,
            )  # fmt: skip

    async def _step(self) -> None:
        """Fetch and evaluate one chunk, run timers when due, checkpoint when due."""
        assert self.consumer is not None
        await self._pace.wait()
        records = await self.consumer.getmany(
            timeout_ms=int(min(self.asettings.evaluation_tick, 0.2) * 1000), max_records=MAX_RECORDS
        )
        self._pace.fetched(records, MAX_RECORDS)
        self.lag.fetched(oldest_timestamp(records))
        async with self._lock:
            events: list[AlertEvent] = []
            fetched = 0
            engine = self.engine
            metrics = engine.metrics  # rules change between chunks only (under the lock)
            for tp, recs in records.items():
                if tp not in self.held:
                    continue  # revoked while this chunk was in flight
                slot = self.slot(tp)
                fetched += len(recs)
                for rec in recs:
                    try:
                        batch, _ = decode_batch_reading(rec.value, metrics)
                    except CodecError as exc:
                        m.DECODE_ERRORS.inc()
                        log.warning("%s[%d]@%d: %s", tp.topic, tp.partition, rec.offset, exc)
                        continue
                    events.extend(engine.process(batch, slot))
                self.positions[tp] = recs[-1].offset + 1
            m.BATCHES.inc(fetched)
            self.caught_up = fetched < MAX_RECORDS
            if self._config_dirty.is_set():
                events.extend(self._reload_config())
            now = time.time()
            if self.caught_up and now - self._last_tick >= self.asettings.evaluation_tick:
                self._last_tick = now
                events.extend(engine.tick(max(int(now * 1000), engine.watermark_ms)))
                self._update_gauges(now)
            await self._send(events)
            if now - self._last_sweep >= SWEEP_INTERVAL:
                self._last_sweep = now
                await self._sweep_silences(now)
            if now - self._last_checkpoint >= self.asettings.checkpoint_interval:
                self._last_checkpoint = now
                await self._checkpoint()

    async def _sweep_silences(self, now: float) -> None:
        """Remove silences that ended more than ``silence_retention`` ago from the registry."""
        if self.view is None:
            return
        cutoff = now - self.asettings.silence_retention
        old = [n for n, s in self.view.get("silence").items() if s.ends_at < cutoff]
        for name in old:
            try:
                await asyncio.to_thread(self.view.registry.delete, "silence", name)
            except NotFoundError:
                continue  # another evaluator removed it first
            except KemiError as exc:
                log.warning("silence %s: cannot remove it after its retention: %s", name, exc)
                return
            log.info("silence %s: removed, expired more than %s ago", name,
                     format_duration(self.asettings.silence_retention))  # fmt: skip

    def _update_gauges(self, now: float) -> None:
        active = self.engine.active(now)
        for status in ("pending", "firing"):
            m.ACTIVE.labels(status).set(sum(1 for a in active if a["status"] == status))
        m.SAMPLES.inc(self.engine.samples_total - self._samples_seen)
        self._samples_seen = self.engine.samples_total
        if self.engine.watermark_ms:
            m.LAG.set(max(0.0, now - self.engine.watermark_ms / 1000))

    async def run(self, runtime: ServiceRuntime) -> None:
        """Run until cancelled (SIGTERM): a last checkpoint is written on the way out."""
        s, a = self.settings, self.asettings
        await ensure_alerting_topics(s, a)
        self.view = await LiveView.open(s, ["rule", "silence", "receiver", "derived"])
        # states saved before raw samples were read from their own topic: a derived
        # metric's series moves to its derived slot (partition p of kemi.metrics, as before)
        moved = self.store.use_slots(set(self.view.get("derived")), DERIVED_SLOTS)
        if moved is not None:
            log.info("saved states keyed by slot: %d derived series moved to theirs", moved)
        self.view.subscribe_on(asyncio.get_running_loop(), self._on_change)
        self.engine.history.extend(alert_from_json(h) for h in self.store.history(a.history_size))
        runtime.add_check(
            "registry", lambda: (bool(self.view and self.view.connected), "etcd watch")
        )
        runtime.add_check(
            "rules",
            lambda: (
                True,
                f"{len(self.engine.rules)} rules, {len(self.silences)} silences"
                f" at revision {self.applied_revision}, invalid: {self.engine.invalid_rules}",
            ),
        )
        self.producer = make_producer(s)
        self.consumer = make_consumer(
            s, group_id=a.evaluator_group, fetch_max_wait_ms=a.fetch_max_wait_ms
        )
        await self.producer.start()
        self._last_tick = self._last_checkpoint = time.time()
        try:
            await self._send(self._reload_config())
            await self.consumer.start()
            # the evaluator commits with its local checkpoint, so it keeps its own positions
            listener = RebalanceListener(self.on_revoked, self.on_assigned)
            self.consumer.subscribe(list(self.topics), listener=listener)
            runtime.add_check("kafka", lambda: (True, self.describe_held()))
            log.info("evaluating %s -> %s", " and ".join(self.topics), a.alerts_topic)
            while True:
                await self._step()
        finally:
            try:
                async with self._lock:
                    await self._final_checkpoint()
            except Exception:
                log.exception("final checkpoint failed")
            await self.consumer.stop()
            await self.producer.stop()
            self.store.close()
            self.view.close()

    # --- HTTP API -------------------------------------------------------------------

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/api/v1/alerts", self._api_alerts),
            web.get("/api/v1/alerts/history", self._api_history),
        ]

    async def _api_alerts(self, request: web.Request) -> web.Response:
        now = time.time()
        alerts = self.engine.active(now)
        return web.json_response(
            {
                "alerts": alerts,
                "now_ms": int(now * 1000),
                "partitions": partitions_by_topic(self.held, self.topics),
            }
        )

    async def _api_history(self, request: web.Request) -> web.Response:
        try:
            limit = max(1, min(int(request.query.get("limit", "50")), self.asettings.history_size))
        except ValueError:
            raise web.HTTPBadRequest(text="limit must be an integer") from None
        rows = list(self.engine.history)[-limit:]
        return web.json_response({"transitions": [alert_to_json(e) for e in rows]})


def main() -> int:
    """Entry point of ``python -m alerting.evaluator``."""
    settings = load_settings()
    service = EvaluatorService(settings)
    app = web.Application()
    app.add_routes(service.routes())
    runtime = ServiceRuntime(NAME, settings, PORT, app)
    return runtime.run(service.run)
