"""Samples of one request grouped into SampleBatches, one per resource and time.

Within a batch a series (metric + labels) appears once: when a request names
the same series at the same time twice, the last value wins, as in InfluxDB.
"""

from __future__ import annotations

from kemi_stats.model import MetricKind, Sample, SampleBatch, Source

__all__ = ["BatchBuilder", "LabelKey", "label_key"]

LabelKey = tuple[tuple[str, str], ...]


class BatchBuilder:
    """Collects the samples of one request; :meth:`batches` gives the SampleBatches."""

    __slots__ = ("_groups", "config_revision", "drop_notes", "dropped", "dropped_fields", "samples")

    #: how many drop explanations a request keeps (the counts keep everything)
    NOTES = 5

    def __init__(self, config_revision: int = 0) -> None:
        self._groups: dict[tuple[str, int], dict[tuple[str, LabelKey], Sample]] = {}
        self.config_revision = config_revision
        self.samples = 0
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

    def group(self, resource_id: str, time_ms: int) -> dict[tuple[str, LabelKey], Sample]:
        """The series map of one (resource, time); add samples with :meth:`put`."""
        key = (resource_id, time_ms)
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = {}
        return group

    def put(
        self,
        group: dict[tuple[str, LabelKey], Sample],
        metric: str,
        value: float | int,
        labels: dict[str, str],
        label_key: LabelKey,
        kind: MetricKind,
    ) -> None:
        series = (metric, label_key)
        if series not in group:
            self.samples += 1
        group[series] = Sample(metric, value, labels, kind)

    @property
    def resources(self) -> set[str]:
        return {resource for resource, _ in self._groups}

    def batches(self) -> list[SampleBatch]:
        return [
            SampleBatch(
                resource_id=resource,
                time_ms=time_ms,
                source=Source.PUSH,
                samples=list(group.values()),
                config_revision=self.config_revision,
            )
            for (resource, time_ms), group in self._groups.items()
            if group
        ]


def label_key(labels: dict[str, str]) -> LabelKey:
    """A hashable, order-independent identity for a label set."""
    return tuple(sorted(labels.items())) if labels else ()
