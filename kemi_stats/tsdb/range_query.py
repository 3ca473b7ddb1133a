"""What a history query asks for: one metric over a time range, narrowed by labels.

Its own module because both back-ends (:mod:`~kemi_stats.tsdb.victoria`,
:mod:`~kemi_stats.tsdb.influx`) read it and :mod:`~kemi_stats.tsdb.query` chooses
between them: here it imports neither side.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kemi_stats.tsdb.mapping import RESOURCE_TAG

__all__ = ["RangeQuery"]


@dataclass(frozen=True, slots=True)
class RangeQuery:
    """One metric, optionally narrowed to a resource and label values, over [start, end]."""

    metric: str
    start: float
    end: float
    step: float = 60.0
    resource: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    #: stored samples as they are, instead of one value per step
    raw: bool = False
    #: only each series' newest stored sample in the range (a point at its own time)
    latest: bool = False

    def matchers(self) -> dict[str, str]:
        """Label -> exact value the series must have (``resource`` included when given)."""
        out = dict(self.labels)
        if self.resource is not None:
            out[RESOURCE_TAG] = self.resource
        return out
