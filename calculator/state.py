"""What the calculator remembers per resource and per group, as compact bytes for its tables.

One table value per resource (not per series) keeps a batch to one table write and
one changelog record. Values are JSON (orjson): readable with ``kemi-stats tail`` on
the changelog, and integers up to 2**64 round-trip exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

__all__ = ["GroupState", "ResourceState", "labels_key", "parse_labels_key", "series_key"]

_SEP = "\x1f"
_PAIR = "\x1e"
_STATE_VERSION = 1


def labels_key(labels: dict[str, str]) -> str:
    """A canonical string for a label set (sorted pairs)."""
    if not labels:
        return ""
    return _PAIR.join(f"{k}={labels[k]}" for k in sorted(labels))


def parse_labels_key(key: str) -> dict[str, str]:
    """The label set a :func:`labels_key` string names."""
    if not key:
        return {}
    return dict(pair.split("=", 1) for pair in key.split(_PAIR))


def series_key(name: str, lkey: str) -> str:
    """The state key of one series (metric or definition) with one label set."""
    return f"{name}{_SEP}{lkey}"


def split_series_key(key: str) -> tuple[str, str]:
    name, _, lkey = key.partition(_SEP)
    return name, lkey


@dataclass(slots=True)
class ResourceState:
    """Last readings of counters (and gauges read by delta), sysUpTime, and open windows."""

    #: series key -> [value, time_ms]
    series: dict[str, list[Any]] = field(default_factory=dict)
    #: [sysUpTime, time_ms] of the latest batch that carried it
    uptime: list[Any] | None = None
    #: definition + label set -> [window start ms, last sample ms, [values]]
    windows: dict[str, list[Any]] = field(default_factory=dict)

    def to_bytes(self) -> bytes:
        return orjson.dumps(
            {"v": _STATE_VERSION, "s": self.series, "u": self.uptime, "w": self.windows}
        )

    @classmethod
    def from_bytes(cls, data: bytes | None) -> ResourceState:
        if not data:
            return cls()
        doc = orjson.loads(data)
        return cls(series=doc.get("s") or {}, uptime=doc.get("u"), windows=doc.get("w") or {})


@dataclass(slots=True)
class GroupState:
    """Open buckets of one group: bucket start ms -> member -> latest value."""

    buckets: dict[int, dict[str, float]] = field(default_factory=dict)
    #: start of the newest bucket already emitted; older inputs are late
    closed_through: int = -1
    #: newest input time seen for the group (its event-time watermark)
    max_time_ms: int = 0
    definition: str = ""
    labels: dict[str, str] = field(default_factory=dict)

    def to_bytes(self) -> bytes:
        return orjson.dumps(
            {
                "v": _STATE_VERSION,
                "b": {str(k): v for k, v in self.buckets.items()},
                "c": self.closed_through,
                "m": self.max_time_ms,
                "d": self.definition,
                "l": self.labels,
            }
        )

    @classmethod
    def from_bytes(cls, data: bytes | None) -> GroupState:
        if not data:
            return cls()
        doc = orjson.loads(data)
        return cls(
            buckets={int(k): v for k, v in (doc.get("b") or {}).items()},
            closed_through=int(doc.get("c", -1)),
            max_time_ms=int(doc.get("m", 0)),
            definition=doc.get("d", ""),
            labels=doc.get("l") or {},
        )
