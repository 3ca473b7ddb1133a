"""Reading series from InfluxDB 2.x/3.x with Flux, through influxdb-client's QueryApi."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from influxdb_client import InfluxDBClient

from kemi_stats.tsdb.errors import TsdbError
from kemi_stats.tsdb.mapping import SeriesMapping
from kemi_stats.tsdb.range_query import RangeQuery
from kemi_stats.tsdb.series import Series

__all__ = ["FluxQuery", "flux_query", "flux_string"]

#: columns of a Flux record that are not series labels
_NOT_LABELS = frozenset(("result", "table"))


def flux_string(text: str) -> str:
    """``text`` as a Flux string literal (``\\``, ``"`` and ``${`` escaped)."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("${", "\\${")
    return f'"{escaped}"'


def _flux_time(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def flux_query(bucket: str, measurement: str, q: RangeQuery) -> str:
    """The Flux program for ``q``: one table per series, one value per step unless raw."""
    conds = [
        f"r._measurement == {flux_string(measurement)}",
        f"r._field == {flux_string(q.metric)}",
    ]
    conds += [f"r[{flux_string(k)}] == {flux_string(v)}" for k, v in sorted(q.matchers().items())]
    lines = [
        f"from(bucket: {flux_string(bucket)})",
        f"  |> range(start: {_flux_time(q.start)}, stop: {_flux_time(q.end)})",
        f"  |> filter(fn: (r) => {' and '.join(conds)})",
    ]
    if q.latest:
        lines.append("  |> last()")
    elif not q.raw:
        lines.append(
            f"  |> aggregateWindow(every: {int(q.step * 1000)}ms, fn: last, createEmpty: false)"
        )
    return "\n".join(lines)


class FluxQuery:
    """Query client for InfluxDB 2.x/3.x (Flux) under the kemi mapping rule."""

    def __init__(
        self, url: str, token: str, org: str, bucket: str, mapping: SeriesMapping,
        timeout: float = 30.0, client: Any = None,
    ) -> None:  # fmt: skip
        self.url = url
        self.org = org
        self.bucket = bucket
        self.measurement = mapping.measurement or "kemi"
        self._client = client or InfluxDBClient(
            url=url, token=token, org=org, timeout=int(timeout * 1000)
        )

    def query_range(self, q: RangeQuery) -> list[Series]:
        """The series of ``q.metric`` matching ``q``."""
        flux = flux_query(self.bucket, self.measurement, q)
        try:
            tables = self._client.query_api().query(flux, org=self.org)
        except Exception as exc:
            raise TsdbError(f"influxdb {self.url}: query {q.metric}: {exc}") from exc
        merged: dict[tuple[tuple[str, str], ...], Series] = {}
        for table in tables:
            for record in table.records:
                values: dict[str, Any] = record.values
                labels = {
                    k: str(v) for k, v in values.items()
                    if not k.startswith("_") and k not in _NOT_LABELS and v is not None
                }  # fmt: skip
                key = tuple(sorted(labels.items()))
                series = merged.setdefault(key, Series(q.metric, labels, []))
                value = values.get("_value")
                when = values.get("_time")
                if value is None or when is None:
                    continue
                series.points.append((when.timestamp(), float(value)))
        for s in merged.values():
            s.points.sort()
        return sorted(merged.values(), key=lambda s: sorted(s.labels.items()))
