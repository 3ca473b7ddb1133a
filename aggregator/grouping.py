"""Samples of one request grouped into SampleBatch records, one per resource and time.

Within a batch a series (metric + labels) appears once: when a request names
the same series at the same time twice, the last value wins, as in InfluxDB.
Each series' fields are encoded once and kept (:mod:`kemi_stats.batch_writer`), so a
sample costs its value and a dictionary entry.

Two kinds of group, and an endpoint uses one of them: :meth:`BatchBuilder.group`
(series identity -> encoded sample: any value) and :meth:`BatchBuilder.float_group`
(a series' encoding up to its double -> the double's 8 bytes), for remote_write, whose
values are all doubles: a sample there is two references in a dict, no bytes are
built per sample, and a record is a ``join`` of the pairs.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from itertools import chain
from typing import Any

from aggregator.rejection import over_limit
from kemi_stats.batch_writer import (
    PreparedSeries,
    SeriesCache,
    encode_batches,
    encode_prepared_batch,
    pack_double,
)
from kemi_stats.codec import decode_batch
from kemi_stats.model import MetricKind, SampleBatch, Source

__all__ = [
    "BatchBuilder", "FloatGroup", "Group", "GroupsAt", "GroupsByStamp", "LabelKey", "label_key",
]  # fmt: skip

LabelKey = tuple[tuple[str, str], ...]
#: one (resource, time)'s samples: series identity -> the encoded sample
Group = dict[bytes, bytes]
#: one (resource, time)'s double samples: ``PreparedSeries.float_head`` -> the 8 bytes
FloatGroup = dict[bytes, bytes]

#: the series the push parsers prepare, shared by every request of the process
SERIES = SeriesCache()


class BatchBuilder:
    """Collects the samples of one request; :meth:`records` gives the Kafka records."""

    __slots__ = (
        "_floats",
        "_groups",
        "config_revision",
        "drop_notes",
        "dropped",
        "dropped_fields",
        "series",
    )

    #: how many drop explanations a request keeps (the counts keep everything)
    NOTES = 5

    def __init__(self, config_revision: int = 0, series: SeriesCache = SERIES) -> None:
        self._groups: dict[tuple[str, int], Group] = {}
        self._floats: dict[tuple[str, int], FloatGroup] = {}
        self.config_revision = config_revision
        self.series = series
        self.dropped_fields = 0
        #: points or series left out of an accepted request, by reason (the rest is written)
        self.dropped: dict[str, int] = {}
        self.drop_notes: list[str] = []

    def drop(self, reason: str, note: str, count: int = 1) -> None:
        """Leave ``count`` points out for ``reason``; ``note`` says which and why."""
        self.dropped[reason] = self.dropped.get(reason, 0) + count
        if len(self.drop_notes) < self.NOTES:
            self.drop_notes.append(note)

    @property
    def dropped_total(self) -> int:
        return sum(self.dropped.values())

    def group(self, resource_id: str, time_ms: int) -> Group:
        """The series map of one (resource, time); add samples with :meth:`put`."""
        key = (resource_id, time_ms)
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = {}
        return group

    def float_group(self, resource_id: str, time_ms: int) -> FloatGroup:
        """The double samples of one (resource, time); add them with :meth:`put_float`."""
        key = (resource_id, time_ms)
        group = self._floats.get(key)
        if group is None:
            group = self._floats[key] = {}
        return group

    def groups_of(self, *, floats: bool) -> dict[tuple[str, int], dict[bytes, bytes]]:
        """The float groups or the others, by (resource, time), for :class:`GroupsAt`."""
        return self._floats if floats else self._groups

    def put_float(self, group: FloatGroup, series: PreparedSeries, value: float) -> None:
        """Add a double sample (a float group's entry; the parser's shortcut writes them too)."""
        group[series.float_head] = pack_double(value)

    def put(
        self,
        group: Group,
        metric: str,
        value: float | int,
        labels: dict[str, str],
        label_key: LabelKey,
        kind: MetricKind,
    ) -> None:
        self.put_prepared(group, self.series.get(metric, labels, label_key, kind), value)

    def put_prepared(self, group: Group, series: PreparedSeries, value: float | int) -> None:
        """Add a sample of a series prepared beforehand (a parser's own cache)."""
        group[series.identity] = series.sample(value)

    @property
    def samples(self) -> int:
        """Samples to write: one per series per resource and time (the last one given)."""
        return sum(map(len, self._groups.values())) + sum(map(len, self._floats.values()))

    @property
    def resources(self) -> int:
        """Distinct resources with samples in this request."""
        return len({resource for resource, _ in self._groups} | {r for r, _ in self._floats})

    def records(self, max_bytes: int = 1 << 62) -> list[tuple[bytes, bytes]]:
        """The Kafka records: (resource id, encoded SampleBatch), one per resource and time,
        or several when its samples encode to more than ``max_bytes`` (split by sample).

        A single sample too large for a record is a 413 Rejection.
        """
        revision = self.config_revision
        samples = chain(
            ((key, group.values()) for key, group in self._groups.items() if group),
            ((key, chain.from_iterable(f.items())) for key, f in self._floats.items() if f),
        )
        records: list[tuple[bytes, bytes]] = []
        for key, value in encode_batches(samples, Source.PUSH, revision):
            if len(value) <= max_bytes:
                records.append((key[0].encode(), value))
            else:
                records += self._split(key, revision, max_bytes)
        return records

    def _split(
        self, key: tuple[str, int], revision: int, max_bytes: int
    ) -> list[tuple[bytes, bytes]]:
        """One (resource, time)'s samples as records of at most ``max_bytes`` each."""
        whole = [*self._groups.get(key, {}).values()]
        whole += [head + double for head, double in self._floats.get(key, {}).items()]
        return _split(key[0], key[1], whole, revision, max_bytes)

    def batches(self) -> list[SampleBatch]:
        """The records as a reader sees them (decoded)."""
        return [decode_batch(value) for _, value in self.records()]


class GroupsAt(dict[str, dict[bytes, bytes]]):
    """Groups by resource, all at one time, from a BatchBuilder's ``groups_of``: missing
    ones are made there. Bulk paths look a run's groups up with
    ``map(groups.__getitem__, resources)``."""

    __slots__ = ("store", "time_ms")

    def __init__(self, store: dict[tuple[str, int], dict[bytes, bytes]], time_ms: int) -> None:
        super().__init__()
        self.store = store
        self.time_ms = time_ms

    def __missing__(self, resource: str) -> dict[bytes, bytes]:
        group = self[resource] = self.store.setdefault((resource, self.time_ms), {})
        return group


class GroupsByStamp(dict[tuple[str, Hashable], dict[bytes, bytes]]):
    """Groups by (resource, a time's text or bytes); ``stamps`` gives its milliseconds."""

    __slots__ = ("stamps", "store")

    def __init__(
        self, store: dict[tuple[str, int], dict[bytes, bytes]], stamps: Mapping[Any, int]
    ) -> None:
        super().__init__()
        self.store = store
        self.stamps = stamps

    def __missing__(self, key: tuple[str, Hashable]) -> dict[bytes, bytes]:
        resource, stamp = key
        group = self[key] = self.store.setdefault((resource, self.stamps[stamp]), {})
        return group


def _split(
    resource: str, time_ms: int, samples: list[bytes], revision: int, max_bytes: int
) -> list[tuple[bytes, bytes]]:
    """One (resource, time)'s encoded samples as records of at most ``max_bytes`` each."""
    head = len(encode_prepared_batch(resource, time_ms, Source.PUSH, (), revision))
    room = max_bytes - head
    key = resource.encode()
    records: list[tuple[bytes, bytes]] = []
    part: list[bytes] = []
    size = 0
    for sample in samples:
        if len(sample) > room:
            raise over_limit(
                f"resource {resource!r}: bytes of one sample",
                len(sample),
                room,
                "MAX_RECORD_BYTES",
                "a Kafka record cannot hold it: send fewer or shorter labels",
            )
        if size + len(sample) > room:
            records.append(_record(key, resource, time_ms, part, revision))
            part, size = [], 0
        part.append(sample)
        size += len(sample)
    if part:
        records.append(_record(key, resource, time_ms, part, revision))
    return records


def _record(
    key: bytes, resource: str, time_ms: int, samples: list[bytes], revision: int
) -> tuple[bytes, bytes]:
    return key, encode_prepared_batch(resource, time_ms, Source.PUSH, samples, revision)


def label_key(labels: dict[str, str]) -> LabelKey:
    """A hashable, order-independent identity for a label set."""
    return tuple(sorted(labels.items())) if labels else ()
