"""The query clients: PromQL and Flux text, Flux result parsing, the CLI sparkline."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from kemi_stats.cli.query_cmd import sparkline
from kemi_stats.tsdb import RangeQuery, SeriesMapping
from kemi_stats.tsdb.influx import FluxQuery, flux_query, flux_string
from kemi_stats.tsdb.victoria import promql_selector


def test_promql_selector_escapes_and_includes_resource() -> None:
    q = RangeQuery("ifHCInOctets", 0, 60, resource='host:"a"', labels={"ifName": "Gi0\\1"})
    assert promql_selector("ifHCInOctets", q.matchers()) == (
        '{__name__="ifHCInOctets",ifName="Gi0\\\\1",resource="host:\\"a\\""}'
    )


def test_series_mapping_names() -> None:
    assert SeriesMapping("").victoria_name("cpu") == "cpu"
    assert SeriesMapping("kemi").victoria_name("cpu") == "kemi_cpu"
    assert SeriesMapping("kemi").metric_from_victoria("kemi_cpu") == "cpu"


def test_flux_program() -> None:
    q = RangeQuery("cpu", 0, 3600, step=60, resource="host:a", labels={"site": 'x"${y}'})
    text = flux_query("kemi", "kemi", q)
    assert 'from(bucket: "kemi")' in text
    assert "range(start: 1970-01-01T00:00:00.000000Z, stop: 1970-01-01T01:00:00.000000Z)" in text
    assert 'r._measurement == "kemi" and r._field == "cpu"' in text
    assert 'r["resource"] == "host:a"' in text
    assert 'r["site"] == "x\\"\\${y}"' in text
    assert "aggregateWindow(every: 60000ms, fn: last, createEmpty: false)" in text
    assert "aggregateWindow" not in flux_query("kemi", "kemi", RangeQuery("cpu", 0, 1, raw=True))
    latest = flux_query("kemi", "kemi", RangeQuery("cpu", 0, 1, latest=True))
    assert latest.endswith("|> last()") and "aggregateWindow" not in latest
    assert flux_string("a\\b") == '"a\\\\b"'


def test_flux_tables_become_series() -> None:
    def rec(t: int, v: float, res: str) -> Any:
        return SimpleNamespace(
            values={
                "result": "_result", "table": 0, "_start": None, "_stop": None,
                "_time": datetime.fromtimestamp(t, UTC), "_value": v, "_field": "cpu",
                "_measurement": "kemi", "resource": res, "site": "x",
            }
        )  # fmt: skip

    tables = [
        SimpleNamespace(records=[rec(120, 2.0, "host:a"), rec(60, 1.0, "host:a")]),
        SimpleNamespace(records=[rec(60, 5.0, "host:b")]),
    ]
    seen: list[str] = []

    class FakeClient:
        def query_api(self) -> Any:
            return SimpleNamespace(query=lambda flux, org: seen.append(flux) or tables)

    client = FluxQuery("http://x", "t", "o", "kemi", SeriesMapping("kemi"), client=FakeClient())
    series = client.query_range(RangeQuery("cpu", 0, 200))
    assert [(s.labels["resource"], s.points) for s in series] == [
        ("host:a", [(60.0, 1.0), (120.0, 2.0)]),
        ("host:b", [(60.0, 5.0)]),
    ]
    assert series[0].labels == {"resource": "host:a", "site": "x"}
    assert seen and "r._field ==" in seen[0]


def test_sparkline() -> None:
    assert sparkline([]) == ""
    assert sparkline([1, 1, 1]) == "▁▁▁"
    assert sparkline([0, 7]) == "▁█"
    assert len(sparkline(list(range(1000)), width=40)) == 40
