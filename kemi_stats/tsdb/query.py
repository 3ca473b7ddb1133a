"""What every query client does, and choosing one from the settings."""

from __future__ import annotations

from typing import Protocol

from kemi_stats.errors import ConfigError
from kemi_stats.settings import Settings
from kemi_stats.tsdb.mapping import SeriesMapping, default_measurement
from kemi_stats.tsdb.range_query import RangeQuery
from kemi_stats.tsdb.series import Series

__all__ = ["QueryClient", "RangeQuery", "make_query_client"]


class QueryClient(Protocol):
    """Reads series back from a time-series database."""

    def query_range(self, q: RangeQuery) -> list[Series]:
        """The series of ``q.metric`` matching ``q``, with their points in the range."""
        ...


def make_query_client(
    settings: Settings, measurement: str | None = None, timeout: float = 30.0
) -> QueryClient:
    """A client for the TSDB of ``settings`` (``KEMI_TSDB_KIND``)."""
    kind = settings.tsdb_kind
    mapping = SeriesMapping(default_measurement(kind) if measurement is None else measurement)
    # the back-ends are imported on use: only one is needed, and influxdb-client is heavy
    if kind == "victoriametrics":
        from kemi_stats.tsdb.victoria import VictoriaQuery

        return VictoriaQuery(settings.tsdb_url, mapping, timeout=timeout)
    if kind == "influxdb":
        from kemi_stats.tsdb.influx import FluxQuery

        return FluxQuery(
            settings.tsdb_url, settings.tsdb_token.get_secret_value(), settings.tsdb_org, settings.tsdb_bucket,
            mapping, timeout=timeout,
        )  # fmt: skip
    raise ConfigError(f"KEMI_TSDB_KIND={kind!r}: expected victoriametrics or influxdb")
