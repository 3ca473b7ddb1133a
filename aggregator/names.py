"""What the aggregator adds to the platform's name rules (:mod:`kemi_stats.names`).

The JSON API is strict: a name outside the rules is a 400. Line protocol comes
from tools we do not control (Telegraf, influxdb-client), so its names are mapped
instead (``measurement_field``, see :func:`kemi_stats.names.to_metric_name`).
Mapped names are cached here: the per-line path does no regex.
"""

from __future__ import annotations

from typing import Any

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
#: the characters the three caches may hold together before they start over
_CACHE_CHARS = 8 << 20


class NameMapper:
    """Maps line-protocol names to platform names, once per distinct name.

    The caches start over past ``_CACHE_MAX`` entries or ``_CACHE_CHARS`` characters,
    so a stream of long distinct names cannot grow them past a few MiB.
    """

    def __init__(self) -> None:
        self._metrics: dict[tuple[str, str], str] = {}
        self._labels: dict[str, str] = {}
        self._names: dict[str, str] = {}
        self._chars = 0

    def _room(self, cache: dict[Any, str], chars: int) -> None:
        """Make room for an entry of ``chars`` characters in ``cache``."""
        if len(cache) >= _CACHE_MAX or self._chars + chars > _CACHE_CHARS:
            self._metrics.clear()
            self._labels.clear()
            self._names.clear()
            self._chars = 0
        self._chars += chars

    def metric(self, measurement: str, field: str) -> str:
        """The metric name of ``field`` of ``measurement``."""
        key = (measurement, field)
        name = self._metrics.get(key)
        if name is None:
            name = to_metric_name(f"{measurement}_{field}")
            self._room(self._metrics, 2 * len(name))
            self._metrics[key] = name
        return name

    def metric_name(self, name: str) -> str:
        """The platform name of a metric named by another system (Prometheus, OTLP)."""
        mapped = self._names.get(name)
        if mapped is None:
            mapped = to_metric_name(name)
            self._room(self._names, 2 * len(name))
            self._names[name] = mapped
        return mapped

    def label(self, key: str) -> str:
        """The label name of tag ``key``."""
        name = self._labels.get(key)
        if name is None:
            name = to_label_name(key)
            self._room(self._labels, 2 * len(key))
            self._labels[key] = name
        return name
