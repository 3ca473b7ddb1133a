"""Aggregates across resources: contributions keyed by group, folded per time bucket.

The per-resource path emits one :class:`Contribution` per series; it travels on the
groups topic as a one-sample ``SampleBatch`` keyed by the group key
(``site_in_bps/site=pangyo``), so every input of one group meets on one partition.
There the latest value of each member is kept per time bucket; a bucket closes when
the group's newest input (or the wall clock) is past its end plus the grace period,
and its aggregate is emitted with the resource id ``group:site=pangyo``.
"""

from __future__ import annotations

from calculator.definitions import CompiledDefinition, DefinitionSet
from calculator.processor import Contribution
from calculator.state import GroupState, labels_key
from calculator.windows import Closed, GroupBuckets
from kemi_stats.codec import decode_batch, encode_batch
from kemi_stats.errors import CodecError
from kemi_stats.model import Sample, SampleBatch, Source

__all__ = [
    "GroupAggregator",
    "decode_contribution",
    "encode_contribution",
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


def encode_contribution(c: Contribution) -> tuple[bytes, bytes]:
    """(Kafka key, value) of a contribution on the groups topic."""
    batch = SampleBatch(
        resource_id=c.resource_id,
        time_ms=c.time_ms,
        source=Source.CALC,
        samples=[Sample(c.definition, c.value, c.series_labels)],
        labels={**c.group_labels, _GROUP_LABEL: ",".join(sorted(c.group_labels))},
    )
    return group_key(c.definition, c.group_labels).encode(), encode_batch(batch)


def decode_contribution(data: bytes) -> Contribution:
    """A contribution back from the groups topic; raise CodecError if it is not one."""
    batch = decode_batch(data)
    if len(batch.samples) != 1 or _GROUP_LABEL not in batch.labels:
        raise CodecError(f"groups record for {batch.resource_id}: not a group contribution")
    names = [n for n in batch.labels[_GROUP_LABEL].split(",") if n]
    s = batch.samples[0]
    return Contribution(
        definition=s.metric,
        group_labels={n: batch.labels.get(n, "") for n in names},
        resource_id=batch.resource_id,
        series_labels=s.labels,
        time_ms=batch.time_ms,
        value=float(s.value),
    )


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
