"""Metric names, label names and resource ids as the platform accepts them.

The JSON API is strict (a bad name is a 400). Line protocol comes from tools we
do not control (Telegraf, influxdb-client), so its names are mapped instead:
``measurement_field`` with every character outside ``[A-Za-z0-9_.:]`` replaced
by ``_`` (and a leading digit prefixed with ``_``), the rule VictoriaMetrics
and Prometheus follow. Mapped names are cached: the per-line path does no regex.
"""

from __future__ import annotations

import re

__all__ = ["KIND_NAMES", "NameMapper", "check_resource_id", "valid_label", "valid_metric"]

from kemi_stats.model import MetricKind

_METRIC = re.compile(r"[A-Za-z_][A-Za-z0-9_.:]*")
_LABEL = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_METRIC_BAD = re.compile(r"[^A-Za-z0-9_.:]")
_LABEL_BAD = re.compile(r"[^A-Za-z0-9_]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

#: kind names senders may use; ``counter`` is a 64-bit counter
KIND_NAMES: dict[str, MetricKind] = {
    "gauge": MetricKind.GAUGE,
    "counter": MetricKind.COUNTER64,
    "counter64": MetricKind.COUNTER64,
    "counter32": MetricKind.COUNTER32,
}

_CACHE_MAX = 100_000


def valid_metric(name: str) -> bool:
    return len(name) <= 256 and _METRIC.fullmatch(name) is not None


def valid_label(name: str) -> bool:
    return len(name) <= 128 and _LABEL.fullmatch(name) is not None


def check_resource_id(resource_id: str, max_length: int) -> str | None:
    """Why ``resource_id`` cannot name a resource, or None if it can."""
    if not resource_id:
        return "is empty"
    if len(resource_id) > max_length:
        return f"is {len(resource_id)} characters long (at most {max_length})"
    if _CONTROL.search(resource_id):
        return "contains control characters"
    return None


class NameMapper:
    """Maps line-protocol names to platform names, once per distinct name."""

    def __init__(self) -> None:
        self._metrics: dict[tuple[str, str], str] = {}
        self._labels: dict[str, str] = {}

    def metric(self, measurement: str, field: str) -> str:
        key = (measurement, field)
        name = self._metrics.get(key)
        if name is None:
            name = _METRIC_BAD.sub("_", f"{measurement}_{field}")
            if name[0].isdigit():
                name = "_" + name
            if len(self._metrics) >= _CACHE_MAX:
                self._metrics.clear()
            self._metrics[key] = name
        return name

    def label(self, key: str) -> str:
        name = self._labels.get(key)
        if name is None:
            name = _LABEL_BAD.sub("_", key)
            if name[0].isdigit():
                name = "_" + name
            if len(self._labels) >= _CACHE_MAX:
                self._labels.clear()
            self._labels[key] = name
        return name
