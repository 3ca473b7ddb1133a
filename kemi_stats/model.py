"""The data model carried on Kafka: samples, batches of samples, poll jobs, alert events.

These are plain typed records; :mod:`kemi_stats.codec` turns them into the
protobuf wire format and into a JSON view for people.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

__all__ = ["AlertEvent", "MetricKind", "PollJob", "Sample", "SampleBatch", "Source"]


class MetricKind(enum.StrEnum):
    """What a sample's value means: a gauge, or a counter with its wrap modulus.

    ``counter32``/``counter64`` are integers that wrap (SNMP, OS counters);
    ``float_counter`` is a float that only grows and resets to zero (Prometheus and
    OpenTelemetry counters): a drop is always a reset, never a wrap.
    """

    GAUGE = "gauge"
    COUNTER32 = "counter32"
    COUNTER64 = "counter64"
    FLOAT_COUNTER = "float_counter"

    @property
    def is_counter(self) -> bool:
        return self is not MetricKind.GAUGE

    @property
    def modulus(self) -> int | None:
        """The value at which the counter wraps to zero, or None for a gauge."""
        if self is MetricKind.COUNTER32:
            return 1 << 32
        if self is MetricKind.COUNTER64:
            return 1 << 64
        return None


class Source(enum.StrEnum):
    """Which stage produced a batch."""

    SNMP = "snmp"
    PUSH = "push"
    CALC = "calc"
    SCRAPE = "scrape"


@dataclass(slots=True)
class Sample:
    """One value of one metric; labels distinguish series within a resource (e.g. ifName)."""

    metric: str
    value: float | int
    labels: dict[str, str] = field(default_factory=dict)
    kind: MetricKind = MetricKind.GAUGE


@dataclass(slots=True)
class SampleBatch:
    """All samples of one resource at one time; the Kafka key is ``resource_id``."""

    resource_id: str
    time_ms: int
    source: Source
    samples: list[Sample] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    config_revision: int = 0

    @property
    def key(self) -> bytes:
        return self.resource_id.encode()


@dataclass(slots=True)
class PollJob:
    """One poll of one target at one scheduled time; the Kafka key is the target name."""

    target: str
    profiles: list[str]
    scheduled_ms: int
    deadline_ms: int
    config_revision: int = 0
    sequence: int = 0

    @property
    def key(self) -> bytes:
        return self.target.encode()


@dataclass(slots=True)
class AlertEvent:
    """One transition of one alert (rule x series); the Kafka key is the fingerprint."""

    fingerprint: str
    rule: str
    status: str
    severity: str = ""
    resource_id: str = ""
    metric: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    value: float = 0.0
    threshold: float = 0.0
    starts_at_ms: int = 0
    ends_at_ms: int = 0
    event_time_ms: int = 0
    receivers: list[str] = field(default_factory=list)
    silenced: bool = False
    config_revision: int = 0
    group_by: list[str] = field(default_factory=list)
    reason: str = ""

    @property
    def key(self) -> bytes:
        return self.fingerprint.encode()
