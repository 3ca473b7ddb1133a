"""The calculator's stream processors: raw batches -> pass-through + derived, and group inputs
-> group aggregates; plus the timer that closes windows and buckets the clock has passed.

At-least-once: Faust commits an input offset only after the records produced for it
were handed to the producer (and the producer acks with acks=all). A crash repeats
what came after the last commit (at most ``commit_interval`` seconds of input):
pass-through records and point-expression outputs are sent again with the same key,
time and value; counter readings and window inputs at or before the time already in
the table are recognised as repeats and yield no second rate or window value.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from calculator import metrics
from calculator.app import app, calc_settings, settings
from calculator.groups import decode_contribution, encode_contribution
from calculator.live import LiveDefinitions
from calculator.processor import Result
from calculator.state import GroupState, ResourceState
from calculator.tables import group_table, resource_table
from calculator.topics import groups_topic, raw_topic
from kemi_stats.codec import MAX_RECORD_BYTES, decode_batch, encode_batch_records
from kemi_stats.errors import CodecError
from kemi_stats.model import SampleBatch

__all__ = ["aggregate_groups", "calculate", "close_by_clock", "definitions"]

log = logging.getLogger(__name__)

definitions = LiveDefinitions(settings, calc_settings)

# Faust tables may only be written from a stream; windows and buckets the timer closed
# are remembered here and dropped from the state by the next record of their key.
_closed_windows: dict[bytes, dict[str, int]] = {}
_closed_buckets: dict[bytes, set[int]] = {}


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
    """Pass every raw batch through unchanged and add what the definitions derive from it."""
    async for event in stream.events():
        raw: bytes = event.value
        started = time.perf_counter()
        try:
            batch = decode_batch(raw)
        except CodecError as exc:
            metrics.DECODE_ERRORS.labels(calc_settings.input_topic).inc()
            log.error("%s: record at offset %s skipped: %s", calc_settings.input_topic,
                      event.message.offset, exc)  # fmt: skip
            continue
        definitions.refresh()
        rid = batch.key
        state = ResourceState.from_bytes(resource_table.get(rid))
        marks = _closed_windows.pop(rid, None)
        if marks:
            for wkey, start in marks.items():
                w = state.windows.get(wkey)
                if w is not None and w[0] == start:
                    del state.windows[wkey]
        res = definitions.processor.process(batch, state)
        # write state before any await, so the clock timer never sees a stale window
        resource_table[rid] = state.to_bytes()
        if len(raw) <= MAX_RECORD_BYTES:
            await _produce(_OUT, event.key or rid, raw)
        else:  # written before records were split by size: passed on in parts
            for value in encode_batch_records(batch):
                await _produce(_OUT, rid, value)
        for out in res.derived:
            for value in encode_batch_records(out):
                await _produce(_OUT, rid, value)
        for c in res.contributions:
            key, value = encode_contribution(c)
            await _produce(_GROUPS, key, value)
        _account(res, len(batch.samples))
        metrics.BATCH_SECONDS.observe(time.perf_counter() - started)


@app.agent(groups_topic)
async def aggregate_groups(stream: Any) -> None:
    """Fold the contributions of each group into per-bucket aggregates."""
    async for event in stream.events():
        try:
            c = decode_contribution(event.value)
        except CodecError as exc:
            metrics.DECODE_ERRORS.labels(calc_settings.groups_topic).inc()
            log.error("%s: record skipped: %s", calc_settings.groups_topic, exc)
            continue
        definitions.refresh()
        gkey: bytes = event.key
        state = GroupState.from_bytes(group_table.get(gkey))
        for start in _closed_buckets.pop(gkey, ()):
            state.buckets.pop(start, None)
            state.closed_through = max(state.closed_through, start)
        outs, status = definitions.aggregator.add(c, state)
        group_table[gkey] = state.to_bytes()
        metrics.GROUP_INPUTS.labels(status).inc()
        for out in outs:
            await _emit(out)


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
