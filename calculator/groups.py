"""Aggregates across resources: contributions keyed by group, folded per time bucket.

The per-resource path emits one :class:`Contribution` per series; a take's contributions
to one group travel on the groups topic together, as a ``SampleBatch`` of one sample per
contribution keyed by the group key (``site_in_bps/site=pangyo``), so every input of one group meets on one partition.
There the latest value of each member is kept per time bucket; a bucket closes when
the group's newest input (or the wall clock) is past its end plus the grace period,
and its aggregate is emitted with the resource id ``group:site=pangyo``.
"""

from __future__ import annotations

from collections.abc import Sequence

from calculator.definitions import CompiledDefinition, DefinitionSet
from calculator.processor import Contribution
from calculator.state import GroupState, labels_key
from calculator.windows import Closed, GroupBuckets
from kemi_stats.codec import decode_batch, encode_batch_records
from kemi_stats.errors import CodecError
from kemi_stats.model import Sample, SampleBatch, Source

__all__ = [
    "BUNDLE",
    "GroupAggregator",
    "decode_contributions",
    "encode_contributions",
    "group_key",
    "group_resource_id",
]

_GROUP_LABEL = "kemi_group"


def group_key(definition: str, group_labels: dict[str, str]) -> str:
    """``site_in_bps/site=pangyo``: the definition and its group's label values."""
    return definition + "/" + ",".join(f"{k}={group_labels[k]}" for k in sorted(group_labels))


def group_resource_id(group_labels: dict[str, str]) -> str:
    """The resource id group aggregates are written under: ``group:site=pangyo``."""
    return "group:" + ",".join(f"{k}={group_labels[k]}" for k in sorted(group_labels))


#: sample labels of a bundled contribution: its resource and its time (ms); a name that a
#: series label cannot have (names follow Prometheus, which keeps ``__`` for itself)
_MEMBER = "__member"
_AT = "__at"
#: contributions in one groups record, at most (and at most MAX_RECORD_BYTES of them)
BUNDLE = 500


def encode_contributions(contributions: Sequence[Contribution]) -> list[tuple[bytes, bytes]]:
    """Contributions to one group (one definition and group labels) as groups records.

    A take of raw records contributes to each group many times; one record carries up
    to :data:`BUNDLE` of them (each sample with its resource and time as labels), so the
    group side folds a take's worth of a group at the cost of one record, not hundreds.
    """
    first = contributions[0]
    key = group_key(first.definition, first.group_labels).encode()
    labels = {**first.group_labels, _GROUP_LABEL: ",".join(sorted(first.group_labels))}
    out: list[tuple[bytes, bytes]] = []
    for i in range(0, len(contributions), BUNDLE):
        part = contributions[i : i + BUNDLE]
        samples = [
            Sample(c.definition, c.value, {**c.series_labels, _MEMBER: c.resource_id, _AT: str(c.time_ms)})
            for c in part
        ]  # fmt: skip
        batch = SampleBatch(resource_id=part[0].resource_id, time_ms=part[0].time_ms,
                            source=Source.CALC, samples=samples, labels=labels)  # fmt: skip
        # split further by size: long label values must not make a record Kafka refuses
        out.extend((key, value) for value in encode_batch_records(batch))
    return out


def decode_contributions(data: bytes) -> list[Contribution]:
    """The contributions of a groups record; raise CodecError if it holds none.

    A record of one contribution without the member labels (written before bundles)
    is that contribution, of the record's resource and time.
    """
    batch = decode_batch(data)
    if not batch.samples or _GROUP_LABEL not in batch.labels:
        raise CodecError(f"groups record for {batch.resource_id}: not a group contribution")
    names = [n for n in batch.labels[_GROUP_LABEL].split(",") if n]
    group_labels = {n: batch.labels.get(n, "") for n in names}
    out = []
    for s in batch.samples:
        labels = dict(s.labels)
        resource = labels.pop(_MEMBER, batch.resource_id)
        at = labels.pop(_AT, None)
        try:
            time_ms = int(at) if at is not None else batch.time_ms
        except ValueError:
            raise CodecError(f"groups record for {batch.resource_id}: bad time {at!r}") from None
        out.append(Contribution(definition=s.metric, group_labels=group_labels,
                                resource_id=resource, series_labels=labels,
                                time_ms=time_ms, value=float(s.value)))  # fmt: skip
    return out


class GroupAggregator:
    """Folds contributions of one group into per-bucket aggregates."""

    def __init__(
        self, definitions: DefinitionSet, *, default_bucket_ms: int, grace_ms: int
    ) -> None:
        self.defs = definitions
        self.default_bucket_ms = default_bucket_ms
        self.grace_ms = grace_ms

    def _buckets(self, d: CompiledDefinition, state: GroupState) -> GroupBuckets:
        return GroupBuckets(state, d.window_ms or self.default_bucket_ms, self.grace_ms)

    def add(self, c: Contribution, state: GroupState) -> tuple[list[SampleBatch], str]:
        """Record one contribution; return the aggregates of buckets it closed, and a status.

        Status: ``added``, ``late`` (its bucket was emitted already) or ``unknown``
        (the definition is gone or no longer a group aggregate).
        """
        d = self.defs.by_name.get(c.definition)
        if d is None or d.mode != "group":
            return [], "unknown"
        state.definition, state.labels = c.definition, c.group_labels
        member = c.resource_id + "\x1f" + labels_key(c.series_labels)
        closed, status = self._buckets(d, state).add(member, c.time_ms, c.value)
        return [self._output(d, c.group_labels, b) for b in closed], status

    def expire(self, state: GroupState, now_ms: int) -> list[SampleBatch]:
        """Close the buckets of one group the wall clock has passed."""
        d = self.defs.by_name.get(state.definition)
        if d is None or d.mode != "group":
            state.buckets.clear()
            return []
        closed = self._buckets(d, state).expire(now_ms)
        return [self._output(d, state.labels, b) for b in closed]

    def _output(
        self, d: CompiledDefinition, group_labels: dict[str, str], b: Closed
    ) -> SampleBatch:
        assert d.expr.fold is not None
        return SampleBatch(
            resource_id=group_resource_id(group_labels),
            time_ms=b.start_ms,
            source=Source.CALC,
            samples=[Sample(d.name, float(d.expr.fold(b.values)), {**group_labels, **d.labels})],
            labels=dict(group_labels),
            config_revision=self.defs.revision,
        )
