"""VictoriaMetrics reads: ``/api/v1/query_range`` (per step) and ``/api/v1/export`` (raw)."""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import orjson

from kemi_stats.tsdb.errors import TsdbError
from kemi_stats.tsdb.mapping import SeriesMapping
from kemi_stats.tsdb.range_query import RangeQuery
from kemi_stats.tsdb.series import Series

__all__ = ["VictoriaQuery", "promql_selector", "promql_string"]


def promql_string(text: str) -> str:
    """``text`` as a double-quoted PromQL string literal."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def promql_selector(name: str, matchers: dict[str, str]) -> str:
    """``{__name__="name",k="v",...}``: exact matches, any metric name spelling allowed."""
    parts = [f"__name__={promql_string(name)}"]
    parts += [f"{k}={promql_string(v)}" for k, v in sorted(matchers.items())]
    return "{" + ",".join(parts) + "}"


class VictoriaQuery:
    """Query client for VictoriaMetrics (single node or vmselect) over its Prometheus API."""

    def __init__(
        self, url: str, mapping: SeriesMapping | None = None, timeout: float = 30.0
    ) -> None:
        self.url = url.rstrip("/")
        self.mapping = mapping or SeriesMapping()
        self.timeout = timeout

    def _get(self, path: str, params: dict[str, str]) -> bytes:
        url = f"{self.url}{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=self.timeout) as resp:
                return bytes(resp.read())
        except urllib.error.HTTPError as exc:
            body = exc.read().decode(errors="replace").strip()[:300]
            raise TsdbError(f"victoriametrics {self.url}{path}: HTTP {exc.code}: {body}") from exc
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise TsdbError(f"victoriametrics {self.url}: cannot connect: {reason}") from exc

    def query_range(self, q: RangeQuery) -> list[Series]:
        """The series of ``q.metric`` matching ``q``; per step, or raw samples if ``q.raw``."""
        selector = promql_selector(self.mapping.victoria_name(q.metric), q.matchers())
        if q.latest:
            return self._latest(selector, q)
        if q.raw:
            return self._export(selector, q)
        body = self._get(
            "/api/v1/query_range",
            {
                "query": selector,
                "start": f"{q.start:.3f}",
                "end": f"{q.end:.3f}",
                "step": f"{q.step:g}s",
                # VictoriaMetrics otherwise rounds the range to the step (its cache) and
                # hides points newer than its latency offset (30s): a sample pushed a few
                # seconds ago would be missing from the last step
                "nocache": "1",
                "latency_offset": "1ms",
            },
        )
        doc = orjson.loads(body)
        if doc.get("status") != "success":
            raise TsdbError(
                f"victoriametrics {self.url}: query {selector}: {doc.get('error', doc)}"
            )
        out = []
        for item in doc["data"]["result"]:
            labels = dict(item["metric"])
            name = labels.pop("__name__", self.mapping.victoria_name(q.metric))
            points = [(float(t), float(v)) for t, v in item.get("values", [])]
            out.append(Series(self.mapping.metric_from_victoria(name), labels, points))
        return sorted(out, key=lambda s: sorted(s.labels.items()))

    def _instant(self, query: str, at: float) -> list[dict[str, Any]]:
        body = self._get("/api/v1/query", {"query": query, "time": f"{at:.3f}", "nocache": "1",
                                           "latency_offset": "1ms"})  # fmt: skip
        doc = orjson.loads(body)
        if doc.get("status") != "success":
            raise TsdbError(f"victoriametrics {self.url}: query {query}: {doc.get('error', doc)}")
        return list(doc["data"]["result"])

    def _latest(self, selector: str, q: RangeQuery) -> list[Series]:
        """Each series' newest sample in the range: two instant queries (MetricsQL's
        ``last_over_time`` and ``tlast_over_time``), one value per series, however many."""
        window = f"[{max(1, int(q.end - q.start))}s]"
        values = self._instant(f"last_over_time({selector}{window})", q.end)
        # one keeps the metric's name and the other drops it: join on the other labels
        times = {
            tuple(sorted((k, v) for k, v in item["metric"].items() if k != "__name__")):
                float(item["value"][1])
            for item in self._instant(f"tlast_over_time({selector}{window})", q.end)
        }  # fmt: skip
        out = []
        for item in values:
            labels = {k: v for k, v in item["metric"].items() if k != "__name__"}
            when = times.get(tuple(sorted(labels.items())))
            if when is None:
                continue
            out.append(Series(q.metric, labels, [(when, float(item["value"][1]))]))
        return sorted(out, key=lambda s: sorted(s.labels.items()))

    def _export(self, selector: str, q: RangeQuery) -> list[Series]:
        body = self._get(
            "/api/v1/export",
            {"match[]": selector, "start": f"{q.start:.3f}", "end": f"{q.end:.3f}"},
        )
        merged: dict[tuple[tuple[str, str], ...], Series] = {}
        for line in body.splitlines():
            if not line.strip():
                continue
            item: dict[str, Any] = orjson.loads(line)
            labels = dict(item["metric"])
            name = labels.pop("__name__", self.mapping.victoria_name(q.metric))
            key = tuple(sorted(labels.items()))
            series = merged.setdefault(
                key, Series(self.mapping.metric_from_victoria(name), labels, [])
            )
            series.points.extend(
                (t / 1000, float(v))
                for t, v in zip(item["timestamps"], item["values"], strict=True)
            )
        for s in merged.values():
            s.points.sort()
        return sorted(merged.values(), key=lambda s: sorted(s.labels.items()))
