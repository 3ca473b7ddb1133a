"""One poll of one target: run its plan through an SNMP session and build its SampleBatch.

Every batch carries ``snmp_up``, ``snmp_poll_duration_seconds`` and ``snmp_values``
(the number of values read), and a successful one ``sysUpTime``. A failed poll gives
``snmp_up=0`` and ``snmp_poll_error{reason=...}=1``, never partial values.

Kinds: a Counter32/Counter64 value keeps its kind whatever the profile says; a value
the profile calls a counter that the agent sends as another integer type becomes a
counter64. ``scale`` applies to gauges only (a scaled counter would no longer wrap
where its kind says). Strings that read as numbers (UCD laLoad "0.42") are gauges;
other strings of scalars (sysName) become batch labels; of table columns are dropped.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from kemi_stats.model import MetricKind, Sample, SampleBatch, Source
from kemi_stats.registry.models import Target
from poller.plan import PollPlan, TableSpec
from poller.snmp import SnmpSession, SnmpValue

__all__ = ["TargetState", "collect", "failure_batch", "to_sample"]

_KINDS = {"counter32": MetricKind.COUNTER32, "counter64": MetricKind.COUNTER64}


@dataclass(slots=True)
class TargetState:
    """What a worker keeps about a target between polls: poll count and lookup labels."""

    polls: int = 0
    #: table key -> row index -> lookup labels (ifName, ifAlias, ...)
    lookups: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)
    #: table key -> poll number of the last lookup walk
    lookup_poll: dict[str, int] = field(default_factory=dict)
    lookup_walks: int = 0


def to_sample(
    metric: str, value: SnmpValue, counter: bool, scale: float, labels: dict[str, str]
) -> Sample | str:
    """The sample for one value, or the value as text if it is a non-numeric string."""
    snmp_type, raw = value
    if snmp_type == "string":
        try:
            number: float | int = float(raw)
        except ValueError:
            return str(raw)
        return Sample(metric, number * scale if scale != 1.0 else number, labels, MetricKind.GAUGE)
    assert not isinstance(raw, str)
    kind = _KINDS.get(snmp_type)
    if kind is not None:
        return Sample(metric, raw, labels, kind)
    if counter:
        return Sample(metric, raw, labels, MetricKind.COUNTER64)
    return Sample(metric, raw * scale if scale != 1.0 else raw, labels, MetricKind.GAUGE)


def failure_batch(
    name: str, target: Target, reason: str, duration: float, time_ms: int, revision: int
) -> SampleBatch:
    """``snmp_up=0`` and the reason, for a poll that failed."""
    return SampleBatch(
        resource_id=target.resource(name),
        time_ms=time_ms,
        source=Source.SNMP,
        labels=target.batch_labels(name),
        config_revision=revision,
        samples=[
            Sample("snmp_up", 0),
            Sample("snmp_poll_error", 1, {"reason": reason}),
            Sample("snmp_poll_duration_seconds", round(duration, 6)),
            Sample("snmp_values", 0),
        ],
    )


async def _table(
    table: TableSpec, session: SnmpSession, state: TargetState, samples: list[Sample]
) -> int:
    cache = state.lookups.get(table.key)
    due = bool(table.lookups) and (
        cache is None
        or state.polls - state.lookup_poll.get(table.key, -(10**9)) >= table.lookup_refresh
    )
    roots = [c.oid for c in table.columns]
    if due:
        roots += [oid for _, oid in table.lookups]
    rows = await session.walk(roots)
    if table.lookups:
        if not due and cache is not None:
            indexes = {i for c in table.columns for i, _ in rows[c.oid]}
            if not indexes <= cache.keys():
                # a new row (interface added): its labels now, not at the next refresh
                rows.update(await session.walk([oid for _, oid in table.lookups]))
                due = True
        if due:
            cache = {}
            for label, oid in table.lookups:
                for index, (_, raw) in rows[oid]:
                    cache.setdefault(index, {})[label] = str(raw)
            state.lookups[table.key] = cache
            state.lookup_poll[table.key] = state.polls
            state.lookup_walks += 1
    cache = cache or {}
    count = 0
    for col in table.columns:
        for index, value in rows[col.oid]:
            labels = {table.index_label: index}
            extra = cache.get(index)
            if extra:
                labels.update(extra)
            sample = to_sample(col.metric, value, col.counter, col.scale, labels)
            if isinstance(sample, Sample):
                samples.append(sample)
                count += 1
    return count


async def collect(
    name: str,
    target: Target,
    plan: PollPlan,
    session: SnmpSession,
    state: TargetState,
    *,
    revision: int = 0,
) -> SampleBatch:
    """Poll target ``name`` once; raise PollError if it fails (the caller bounds the time)."""
    started = time.monotonic()
    labels = target.batch_labels(name)
    samples: list[Sample] = []
    count = 0
    values = await session.get([s.oid for s in plan.scalars])
    # The batch time is when the agent answered the first request (sysUpTime is always
    # in it), not when the poll began: set-up before the first answer (v3 engine
    # discovery, an agent's slow first response) would otherwise skew every rate.
    time_ms = int(time.time() * 1000)
    for spec, value in zip(plan.scalars, values, strict=True):
        if value is None:
            continue
        sample = to_sample(spec.metric, value, spec.counter, spec.scale, {})
        if isinstance(sample, Sample):
            samples.append(sample)
            count += 1
        else:
            labels[spec.metric] = sample
    for table in plan.tables:
        count += await _table(table, session, state, samples)
    state.polls += 1
    samples.append(Sample("snmp_up", 1))
    samples.append(Sample("snmp_poll_duration_seconds", round(time.monotonic() - started, 6)))
    samples.append(Sample("snmp_values", count))
    return SampleBatch(
        resource_id=target.resource(name),
        time_ms=time_ms,
        source=Source.SNMP,
        labels=labels,
        config_revision=revision,
        samples=samples,
    )
