"""Backtests replay stored series through the evaluator's engine: same for, hysteresis, no-data."""

from __future__ import annotations

from alerting.backtest import backtest
from alerting.evaluator.engine import Engine
from kemi_stats.model import Sample, SampleBatch, Source
from kemi_stats.registry.models import Rule
from kemi_stats.tsdb.series import Series

T0 = 1_700_000_000.0
RULE = Rule.model_validate({
    "metric": "cpu_usage_pct", "match": ["site=pangyo"], "condition": {"op": ">", "threshold": 90},
    "for": "2m", "clear": {"op": "<", "threshold": 80}, "clear_for": "1m", "severity": "critical",
})  # fmt: skip
# every 30 s for 30 minutes: above 90 from minute 5 to 15 (85, inside the band, at minute 12)
VALUES = [95.0 if 10 <= i < 30 and i != 24 else 85.0 if i == 24 else 50.0 for i in range(60)]


def _series(resource: str, values: list[float], site: str = "pangyo") -> Series:
    points = [(T0 + 30 * i, v) for i, v in enumerate(values)]
    return Series("cpu_usage_pct", {"resource": resource, "site": site}, points)


def test_a_backtest_finds_what_the_live_engine_emits() -> None:
    series = [_series("host:web-1", VALUES), _series("host:web-2", [50.0] * 60),
              _series("host:db-1", VALUES, site="seoul")]  # fmt: skip
    result = backtest("cpu-high", RULE, series, int(T0 * 1000), int((T0 + 3600) * 1000))
    [episode] = result.episodes
    assert episode.resource == "host:web-1"
    assert episode.fired_ms == int((T0 + 30 * 14) * 1000)  # above from i=10, `for` 2m
    assert episode.resolved_ms == int((T0 + 30 * 32) * 1000)  # below 80 from i=30, 1m
    assert episode.labels == {"site": "pangyo"}
    assert result.series == 3 and result.samples == 180
    assert result.summary() == (
        "rule cpu-high: 1 firing(s) on 1 of 3 series (180 samples), 0 still firing at the end"
    )

    # the live engine, fed the same samples as batches, emits the same transitions
    live = Engine()
    live.set_rules({"cpu-high": RULE})
    events = []
    for i, v in enumerate(VALUES):
        batch = SampleBatch("host:web-1", int((T0 + 30 * i) * 1000), Source.PUSH,
                            [Sample("cpu_usage_pct", v)], {"site": "pangyo"})  # fmt: skip
        events += live.process(batch)
    live_times = [(e.status, e.event_time_ms) for e in events]
    assert live_times == [(e.status, e.event_time_ms) for e in result.transitions]


def test_no_data_fires_when_the_series_stops() -> None:
    rule = Rule.model_validate({"metric": "snmp_up", "no_data": "3m", "severity": "warning"})
    points = [(T0 + 60 * i, 1.0) for i in range(10)]
    series = [Series("snmp_up", {"resource": "net:sw-1"}, points)]
    result = backtest("sw-silent", rule, series, int(T0 * 1000), int((T0 + 1800) * 1000))
    [episode] = result.episodes
    assert (episode.kind, episode.resolved_ms) == ("no_data", 0)
    assert episode.fired_ms == int((T0 + 60 * 9 + 180) * 1000)
    assert "1 still firing at the end" in result.summary()


def test_points_outside_the_window_are_not_replayed() -> None:
    result = backtest("cpu-high", RULE, [_series("host:web-1", VALUES)],
                      int((T0 + 600) * 1000), int((T0 + 900) * 1000))  # fmt: skip
    assert result.samples == 11
