"""What a query returns: series, each a metric, its labels and its (time, value) points."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Series"]


@dataclass(slots=True)
class Series:
    """One series: the kemi metric name, its labels (``resource`` among them), its points."""

    metric: str
    labels: dict[str, str]
    #: (unix seconds, value), oldest first
    points: list[tuple[float, float]] = field(default_factory=list)

    @property
    def values(self) -> list[float]:
        return [v for _, v in self.points]

    def to_dict(self) -> dict[str, Any]:
        """The JSON view of the series."""
        return {
            "metric": self.metric,
            "labels": self.labels,
            "points": [list(p) for p in self.points],
        }

    def selector(self) -> str:
        """``metric{k="v",...}`` for people."""
        inner = ",".join(f'{k}="{v}"' for k, v in sorted(self.labels.items()))
        return f"{self.metric}{{{inner}}}"
