"""The calculator's stream processors: raw batches -> derived samples, and group inputs
-> group aggregates; plus the timer that closes windows and buckets the clock has passed.

Raw samples are not passed on: the alert evaluator and the forwarder read them from the
raw topic themselves, so ``kemi.metrics`` carries derived samples only. Every raw
sample used to be written to Kafka twice (raw, then passed through), which doubled the
broker's writes and storage for samples, and raw metrics waited for the calculator.

At-least-once: Faust commits an input offset only after the records produced for it
were acknowledged (raw batches' derived outputs and their resources' new states in the table's
changelog: by librdkafka, awaited per take; group aggregates: by Faust's producer,
flushed before a commit; both with acks=all). A crash repeats
what came after the last commit (at most ``commit_interval`` seconds of input):
point-expression outputs are sent again with the same key,
time and value; counter readings and window inputs at or before the time already in
the table are recognised as repeats and yield no second rate or window value.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections.abc import Iterator, Sequence
from typing import Any, TypeVar, cast

from faust.streams import _current_event
from faust.types import TP, EventT, StoreT
from tenacity import AsyncRetrying, retry_if_exception_type, wait_exponential

from calculator import metrics
from calculator.app import app, calc_settings, settings
from calculator.groups import decode_contributions, encode_contributions, group_key
from calculator.live import LiveDefinitions
from calculator.processor import Contribution, Result
from calculator.state import GroupState, ResourceState
from calculator.tables import group_table, resource_table
from calculator.topics import groups_topic, raw_topic
from kemi_stats.codec import (
    KAFKA_MAX_REQUEST_BYTES,
    decode_batch_reading,
    encode_batch_records,
)
from kemi_stats.consumer.lag import LagClock
from kemi_stats.errors import CodecError
from kemi_stats.kafka_security import rdkafka_options
from kemi_stats.model import SampleBatch
from kemi_stats.rdkafka_producer import AckedProducer, DeliveryFailed

__all__ = [
    "aggregate_groups", "calculate", "close_by_clock", "close_producer", "definitions",
]  # fmt: skip

log = logging.getLogger(__name__)

definitions = LiveDefinitions(settings, calc_settings)

# Faust tables may only be written from a stream; windows and buckets the timer closed
# are remembered here and dropped from the state by the next record of their key.
_closed_windows: dict[bytes, dict[str, int]] = {}
_closed_buckets: dict[bytes, set[int]] = {}

#: no take for this long means the raw topic has nothing more to give: caught up
_lag = LagClock(
    calc_settings.app_id,
    calc_settings.input_topic,
    quiet_after=calc_settings.take_within + calc_settings.fetch_max_wait_ms / 1000 + 1.0,
)
_groups_lag = LagClock(
    calc_settings.app_id,
    calc_settings.groups_topic,
    quiet_after=calc_settings.group_take_within + calc_settings.fetch_max_wait_ms / 1000 + 1.0,
)


def _take_began(clock: LagClock, events: Sequence[EventT]) -> None:
    """Tell ``clock`` the Kafka times (Faust's are in seconds) of the take in hand."""
    stamps = [t for e in events if (t := e.message.timestamp) is not None and t > 0]
    if stamps:
        clock.take_began(min(stamps) * 1000, max(stamps) * 1000)


def _account(res: Result, samples_in: int) -> None:
    metrics.BATCHES.inc()
    metrics.SAMPLES_IN.inc(samples_in)
    if res.produced:
        metrics.PRODUCED.labels("derived").inc(res.produced)
    for kind, n in res.steps.items():
        metrics.COUNTER_STEPS.labels(kind).inc(n)
    for (name, reason), n in res.reasons.items():
        metrics.DROPPED.labels(name, reason).inc(n)


@app.agent(raw_topic)
async def calculate(stream: Any) -> None:
    """Send what the definitions derive from every raw batch (the batch itself is not passed on).

    Records come in takes (up to ``take_max`` of them, or what arrived within
    ``take_within`` seconds): a resource's state is read and written once per take,
    whatever number of its batches the take holds. Faust acks a take's events (and may
    then commit their offsets) once this loop's body returns, and it also acks them if
    the body raises: so the body does not raise. A record that cannot be read or
    processed is skipped, logged and counted (as one record at a time did), and the
    take's records are sent until Kafka has acknowledged every one.
    """
    await _producer()  # a producer that cannot be made fails the agent before any take
    async for events in stream.take_events(calc_settings.take_max, calc_settings.take_within):
        _take_began(_lag, events)
        await _calculate(events)
        _lag.take_done()


async def _calculate(events: Sequence[EventT]) -> None:
    started = time.perf_counter()
    definitions.refresh()
    processor = definitions.processor
    #: resource id -> its state, the last event of the take that carried it, and the
    #: state's bytes as the table held them
    states: dict[bytes, tuple[ResourceState, EventT, bytes]] = {}
    sends: list[tuple[str, bytes, bytes]] = []
    #: the take's contributions by group, sent as one groups record per group
    bundles: dict[str, list[Contribution]] = {}
    for event in events:
        raw: bytes = event.value
        try:
            batch, samples_in = decode_batch_reading(raw, processor.gauges_read, counters=True)
        except CodecError as exc:
            metrics.DECODE_ERRORS.labels(calc_settings.input_topic).inc()
            log.error("%s: record at offset %s skipped: %s", calc_settings.input_topic,
                      event.message.offset, exc)  # fmt: skip
            continue
        rid = batch.key
        try:
            held = states.get(rid)
            state, stored = (held[0], held[2]) if held is not None else _load(rid, event)
            res = processor.process(batch, state)
        except Exception as exc:  # a bug or a broken stored state: this record only
            metrics.PROCESS_ERRORS.labels(calc_settings.input_topic).inc()
            log.error("%s: resource %s: record at partition %s offset %s not processed "
                      "(nothing derived from it): %r", calc_settings.input_topic,
                      batch.resource_id, event.message.partition, event.message.offset, exc,
                      exc_info=exc)  # fmt: skip
            continue
        states[rid] = (state, event, stored)
        for out in res.derived:
            sends.extend((_OUT, rid, value) for value in encode_batch_records(out))
        for c in res.contributions:
            bundles.setdefault(group_key(c.definition, c.group_labels), []).append(c)
        _account(res, samples_in)
    for contributions in bundles.values():
        sends.extend((_GROUPS, key, value) for key, value in encode_contributions(contributions))
    # every state is written before any await, so the clock timer never sees a stale window
    changelog: list[tuple[int, bytes, bytes]] = []
    for rid, (state, event, stored) in states.items():
        value = state.to_bytes()
        if value == _EMPTY_STATE and stored == _EMPTY_STATE:
            # a resource of gauges alone keeps an empty state: never written (one that
            # an earlier version wrote empty stays as it is). Any other state is written
            # even when the take left it as it was, so a take replayed after a crash
            # between the store's write and the changelog's ack sends the changelog what
            # the store holds.
            continue
        with _as_event(event):
            # Faust's own check (once) that the changelog has the raw topic's partitions
            partition = resource_table.partition_for_key(rid)
            resource_table.data[rid] = value  # the store only: the changelog goes below
        changelog.append((event.message.partition if partition is None else partition, rid, value))
    sending = asyncio.ensure_future(_send_all(sends))
    writing = asyncio.ensure_future(_write_changelog(changelog))
    try:
        await asyncio.gather(sending, writing)
    except BaseException:
        sending.cancel()  # neither goes on alone, to land after a later take's records
        writing.cancel()
        raise
    metrics.BATCH_SECONDS.observe((time.perf_counter() - started) / max(len(events), 1))


#: bytes of a take's records handed to librdkafka at once (its queue holds twice that)
_CHUNK_BYTES = 16 << 20


async def _send_all(sends: list[tuple[str, bytes, bytes]]) -> None:
    """Produce a take's records through librdkafka and wait until Kafka acked every one.

    Faust acks the take's events (and so may commit their offsets) only once this has
    returned: at-least-once. librdkafka costs a few microseconds of CPU per record where
    aiokafka's send costs tens (``bench/RESULTS.md``, calculator). Records go in chunks
    of at most ``_CHUNK_BYTES``, each acknowledged before the next is handed over, so a
    take of large records never fills the producer's queue. While a chunk fails (Kafka
    away, a timeout, a record refused), it is sent again after a growing pause (0.5 s
    doubling to 30 s, tenacity) and an error naming the topic and the reason: the take is not done until all are acked, and a record
    sent twice is a repeat with the same key, time and value, as after a crash.
    """
    for chunk in _chunks(sends):
        await _send_chunk(chunk)


_Record = TypeVar("_Record", tuple[str, bytes, bytes], tuple[int, bytes, bytes])


def _chunks(records: list[_Record]) -> Iterator[list[_Record]]:
    """``records`` (``(where, key, value)``) in runs of at most ``_CHUNK_BYTES`` of values."""
    chunk: list[_Record] = []
    size = 0
    for record in records:
        if chunk and size + len(record[2]) > _CHUNK_BYTES:
            yield chunk
            chunk, size = [], 0
        chunk.append(record)
        size += len(record[2])
    if chunk:
        yield chunk


def _retrying() -> AsyncRetrying:
    """Again after a growing pause (0.5 s doubling to 30 s) while records are not acked."""
    return AsyncRetrying(
        retry=retry_if_exception_type(DeliveryFailed),
        wait=wait_exponential(multiplier=0.5, max=30.0),
        reraise=True,
    )


async def _send_chunk(chunk: list[tuple[str, bytes, bytes]]) -> None:
    pending: dict[str, list[tuple[bytes, bytes]]] = {}
    for topic, key, value in chunk:
        pending.setdefault(topic, []).append((key, value))
    async for attempt in _retrying():
        with attempt:
            await _send_pending(pending)


async def _write_changelog(records: list[tuple[int, bytes, bytes]]) -> None:
    """The take's new resource states to the table's changelog, each to its partition.

    Faust would send each through aiokafka (the calculator's largest cost after the
    calculation itself: tens of microseconds a record); librdkafka sends them for a few.
    As Faust does once a record is acked (at-least-once: the calculator never runs
    Faust's exactly-once transactions, whose changelog would go with the transaction),
    the highest offset acked in each partition is kept in the partition's RocksDB
    store, so recovery reads the changelog from there. Like the take's other records,
    they go in chunks of at most ``_CHUNK_BYTES``, each sent again while it fails, and
    are acked before the take's offsets commit.
    """
    for chunk in _chunks(records):
        await _write_changelog_chunk(chunk)


async def _write_changelog_chunk(records: list[tuple[int, bytes, bytes]]) -> None:
    topic = resource_table.changelog_topic.get_topic_name()
    async for attempt in _retrying():
        with attempt:
            producer = await _producer()
            try:
                offsets = await producer.send_to_partitions(topic, records)
            except DeliveryFailed as exc:
                log.error("%s: %d of %d records not acknowledged (%s); sending them again",
                          topic, exc.failed, len(records), exc.reason)  # fmt: skip
                if producer.fatal:
                    await close_producer(producer)
                raise
    store = cast(StoreT, resource_table.data)
    for partition, offset in offsets.items():
        store.set_persisted_offset(TP(topic, partition), offset)


async def _send_pending(pending: dict[str, list[tuple[bytes, bytes]]]) -> None:
    """Send each topic's records of ``pending``; the acked topics leave it. DeliveryFailed
    if any topic's records were not all acknowledged (they are sent again, whole)."""
    producer = await _producer()
    acks = {topic: producer.send_all(topic, records) for topic, records in pending.items()}
    results = await asyncio.gather(*acks.values(), return_exceptions=True)
    failed: DeliveryFailed | None = None
    for topic, result in zip(acks, results, strict=True):
        if result is None:
            del pending[topic]
        elif isinstance(result, DeliveryFailed):
            log.error("%s: %d of %d records not acknowledged (%s); sending them again",
                      topic, result.failed, len(pending[topic]), result.reason)  # fmt: skip
            failed = failed or result
        else:
            raise result
    if failed is not None:
        if producer.fatal:
            await close_producer(producer)
        raise failed


_PRODUCER: list[AckedProducer] = []


async def _producer() -> AckedProducer:
    """The agents' librdkafka producer, made on the worker's loop when first needed."""
    if not _PRODUCER:
        _PRODUCER.append(
            AckedProducer(
                settings.kafka_bootstrap,
                client_id=f"{calc_settings.app_id}-out",
                idempotent=False,
                # one request in flight per broker: a retry cannot reorder a partition
                max_in_flight=1,
                linger_ms=calc_settings.linger_ms,
                delivery_timeout=calc_settings.delivery_timeout,
                queue_bytes=64 << 20,
                max_request_bytes=KAFKA_MAX_REQUEST_BYTES,
                security=rdkafka_options(settings),
            )
        )
    return _PRODUCER[0]


async def close_producer(failed: AckedProducer | None = None) -> None:
    """Wait (bounded) for the records in flight, then close the producer (only if it is
    still ``failed``: another sender may have replaced that one already)."""
    if _PRODUCER and (failed is None or _PRODUCER[0] is failed):
        unsent = await _PRODUCER.pop().close(calc_settings.delivery_timeout)
        if unsent:
            log.warning("%d produced records were not acknowledged before the stop", unsent)


#: what an empty state is stored as; a resource without one reads as this
_EMPTY_STATE = ResourceState().to_bytes()


def _load(rid: bytes, event: EventT) -> tuple[ResourceState, bytes]:
    """``rid``'s state from the table, less the windows the clock timer closed, and the
    bytes the table holds for it (those of an empty state when it holds none).

    A resource whose every sample is a gauge no definition reads by delta (most pushed
    host metrics) keeps an empty state: it is never written, so it costs no changelog.
    """
    with _as_event(event):
        stored = resource_table.get(rid) or _EMPTY_STATE
    state = ResourceState() if stored is _EMPTY_STATE else ResourceState.from_bytes(stored)
    marks = _closed_windows.pop(rid, None)
    if marks:
        for wkey, start in marks.items():
            w = state.windows.get(wkey)
            if w is not None and w[0] == start:
                del state.windows[wkey]
    return state, stored


@contextlib.contextmanager
def _as_event(event: EventT) -> Iterator[None]:
    """Make ``event`` Faust's current event for a table read or write.

    The table's store and changelog follow the current event's partition; inside a
    take that is the take's last event, so each resource's read and write run under
    an event of its own (its partition), as they would one record at a time.
    """
    token = _current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        _current_event.reset(token)


@app.agent(groups_topic)
async def aggregate_groups(stream: Any) -> None:
    """Fold the contributions of each group into per-bucket aggregates.

    In takes (``group_take_max`` records, or what came within ``group_take_within``
    seconds): a group's state is read and written once per take, whatever number of its
    records the take holds. A group's state holds every member of its open buckets, so a
    write per record would cost the changelog the whole group each time. Aggregates are
    emitted only when a bucket closes, a bucket's length plus its grace after its start,
    so the wait delays none by more than ``group_take_within``; it comes out of the grace
    period (``KEMI_CALCULATOR_GRACE``) for a contribution that arrives at its very end.
    A group's take that fails is logged and counted, and the other groups of the take
    go on (each group's aggregates are emitted right after its state is written).
    """
    async for events in stream.take_events(
        calc_settings.group_take_max, calc_settings.group_take_within
    ):
        _take_began(_groups_lag, events)
        await _aggregate(events)
        _groups_lag.take_done()


async def _aggregate(events: Sequence[EventT]) -> None:
    definitions.refresh()
    #: group key -> its contributions in the take, and the take's last event of the group
    groups: dict[bytes, tuple[list[Contribution], EventT]] = {}
    for event in events:
        try:
            contributions = decode_contributions(event.value)
        except CodecError as exc:
            metrics.DECODE_ERRORS.labels(calc_settings.groups_topic).inc()
            log.error("%s: record at partition %s offset %s skipped: %s", calc_settings.groups_topic,
                      event.message.partition, event.message.offset, exc)  # fmt: skip
            continue
        gkey: bytes = event.key  # type: ignore[assignment]  # the groups topic is keyed by bytes
        held = groups.get(gkey)
        if held is not None:
            held[0].extend(contributions)
        groups[gkey] = (held[0] if held is not None else contributions, event)
    for gkey, (contributions, event) in groups.items():
        try:
            outs = _fold(gkey, contributions, event)
        except Exception as exc:  # a bug or a broken stored state: this group's take only
            metrics.PROCESS_ERRORS.labels(calc_settings.groups_topic).inc()
            log.error("%s: group %s: %d contributions not folded: %r", calc_settings.groups_topic,
                      gkey.decode(errors="replace"), len(contributions), exc, exc_info=exc)  # fmt: skip
            continue
        for out in outs:  # emitted before the next group's state is touched
            await _emit(out)
        await asyncio.sleep(0)  # a take of many groups does not hold the loop throughout


def _fold(gkey: bytes, contributions: list[Contribution], event: EventT) -> list[SampleBatch]:
    """Fold one group's contributions of a take into its state; the aggregates it closed."""
    with _as_event(event):
        state = GroupState.from_bytes(group_table.get(gkey))
    for start in _closed_buckets.pop(gkey, ()):
        state.buckets.pop(start, None)
        state.closed_through = max(state.closed_through, start)
    outs: list[SampleBatch] = []
    for c in contributions:
        closed, status = definitions.aggregator.add(c, state)
        outs += closed
        metrics.GROUP_INPUTS.labels(status).inc()
    with _as_event(event):
        group_table[gkey] = state.to_bytes()
    return outs


_OUT = calc_settings.output_topic
_GROUPS = calc_settings.groups_topic


async def _produce(topic: str, key: bytes, value: bytes) -> None:
    """Hand a record to the app's producer (what ``Topic.send`` does, minus its bookkeeping).

    Faust flushes this producer before it commits input offsets, so at-least-once holds.
    The default partitioner (murmur2 of the key) is the one tables and topics use.
    """
    await app.producer.send(topic, key, value, None, None, None)


async def _emit(out: SampleBatch) -> None:
    metrics.PRODUCED.labels("aggregate").inc(len(out.samples))
    for value in encode_batch_records(out):
        await _produce(_OUT, out.key, value)


@app.timer(interval=calc_settings.close_check_interval)
async def close_by_clock() -> None:
    """Close windows and group buckets whose end + grace the wall clock has passed."""
    definitions.refresh()
    defs = definitions.definitions
    now_ms = int(time.time() * 1000)
    outs: list[SampleBatch] = []
    # no await until every expiry is decided and marked (see calculate)
    if defs.window or _closed_windows:
        proc = definitions.processor
        for rid, value in list(resource_table.items()):
            state = ResourceState.from_bytes(value)
            if not state.windows:
                continue
            marks = _closed_windows.setdefault(rid, {})
            for wkey, start in marks.items():
                if state.windows.get(wkey, [None])[0] == start:
                    del state.windows[wkey]
            before = {k: w[0] for k, w in state.windows.items()}
            outs.extend(proc.expire(rid.decode(), state, now_ms))
            for wkey, start in before.items():
                if wkey not in state.windows:
                    marks[wkey] = start
            if not marks:
                del _closed_windows[rid]
    if defs.group:
        agg = definitions.aggregator
        for gkey, value in list(group_table.items()):
            gstate = GroupState.from_bytes(value)
            done = _closed_buckets.setdefault(gkey, set())
            for start in done:
                gstate.buckets.pop(start, None)
            before_b = set(gstate.buckets)
            outs.extend(agg.expire(gstate, now_ms))
            done.update(before_b - set(gstate.buckets))
            if not done:
                del _closed_buckets[gkey]
    for out in outs:
        await _emit(out)
