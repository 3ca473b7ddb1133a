"""What the aggregator adds to the platform's name rules (:mod:`kemi_stats.names`).

The JSON API is strict: a name outside the rules is a 400. Line protocol comes
from tools we do not control (Telegraf, influxdb-client), so its names are mapped
instead (``measurement_field``, see :func:`kemi_stats.names.to_metric_name`).
Mapped names are cached here: the per-line path does no regex.
"""

from __future__ import annotations

from kemi_stats.model import MetricKind
from kemi_stats.names import to_label_name, to_metric_name

__all__ = ["KIND_NAMES", "NameMapper"]

#: kind names senders may use; ``counter`` is a 64-bit counter
KIND_NAMES: dict[str, MetricKind] = {
    "gauge": MetricKind.GAUGE,
    "counter": MetricKind.COUNTER64,
    "counter64": MetricKind.COUNTER64,
    "counter32": MetricKind.COUNTER32,
    "float_counter": MetricKind.FLOAT_COUNTER,
}

_CACHE_MAX = 100_000


class NameMapper:
    """Maps line-protocol names to platform names, once per distinct name."""

    def __init__(self) -> None:
        self._metrics: dict[tuple[str, str], str] = {}
        self._labels: dict[str, str] = {}
        self._names: dict[str, str] = {}

    def metric(self, measurement: str, field: str) -> str:
        """The metric name of ``field`` of ``measurement``."""
        key = (measurement, field)
        name = self._metrics.get(key)
        if name is None:
            name = to_metric_name(f"{measurement}_{field}")
            if len(self._metrics) >= _CACHE_MAX:
                self._metrics.clear()
            self._metrics[key] = name
        return name

    def metric_name(self, name: str) -> str:
        """The platform name of a metric named by another system (Prometheus, OTLP)."""
        mapped = self._names.get(name)
        if mapped is None:
            mapped = to_metric_name(name)
            if len(self._names) >= _CACHE_MAX:
                self._names.clear()
            self._names[name] = mapped
        return mapped

    def label(self, key: str) -> str:
        """The label name of tag ``key``."""
        name = self._labels.get(key)
        if name is None:
            name = to_label_name(key)
            if len(self._labels) >= _CACHE_MAX:
                self._labels.clear()
            self._labels[key] = name
        return name
