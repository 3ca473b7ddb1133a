"""The fleet's last poll results, from a fake TSDB client."""

from __future__ import annotations

from console.fleet import FleetStatus, PollResult
from kemi_stats.tsdb import RangeQuery, Series, TsdbError

NOW = 1_700_000_000.0


class FakeClient:
    """query_range by metric name; raises ``error`` when set."""

    def __init__(self, series: list[Series]) -> None:
        self.series = series
        self.error: TsdbError | None = None
        self.queries: list[RangeQuery] = []

    def query_range(self, q: RangeQuery) -> list[Series]:
        self.queries.append(q)
        if self.error is not None:
            raise self.error
        return [s for s in self.series if s.metric == q.metric]


def _s(metric: str, resource: str, points: list[tuple[float, float]], **labels: str) -> Series:
    return Series(metric, {"resource": resource, **labels}, points)


def _fleet() -> FakeClient:
    return FakeClient(
        [
            # an SNMP device that is down: its newest poll error says why
            _s("snmp_up", "net:sw-dead", [(NOW - 60, 1.0), (NOW - 30, 0.0)]),
            _s("snmp_poll_error", "net:sw-dead", [(NOW - 300, 1.0)], reason="auth"),
            _s("snmp_poll_error", "net:sw-dead", [(NOW - 30, 1.0)], reason="timeout"),
            # an SNMP device that is up, with an old error left over
            _s("snmp_up", "net:sw-ok", [(NOW - 30, 1.0)]),
            _s("snmp_poll_error", "net:sw-ok", [(NOW - 500, 1.0)], reason="timeout"),
            # two series of one resource: the newest point wins
            _s("snmp_up", "net:sw-flap", [(NOW - 90, 1.0)], worker="a"),
            _s("snmp_up", "net:sw-flap", [(NOW - 20, 0.0)], worker="b"),
            _s("snmp_up", "net:sw-flap", [(NOW - 200, 1.0)], worker="c"),
            _s("snmp_poll_error", "net:sw-flap", [(NOW - 20, 1.0)], reason="unreachable"),
            # series without points or without a resource are ignored
            _s("snmp_up", "net:sw-empty", []),
            Series("snmp_up", {}, [(NOW, 0.0)]),
            # scrape targets
            _s("up", "app:web-1", [(NOW - 15, 1.0)]),
            _s("up", "app:web-2", [(NOW - 15, 0.0)]),
            _s("scrape_error", "app:web-2", [(NOW - 15, 1.0)], reason="http_503"),
        ]
    )


def test_read_joins_up_and_error_series() -> None:
    client = _fleet()
    results = FleetStatus(client, interval=15).read(now=NOW)
    assert results == {
        "net:sw-dead": PollResult(False, NOW - 30, "timeout"),
        "net:sw-ok": PollResult(True, NOW - 30, ""),
        "net:sw-flap": PollResult(False, NOW - 20, "unreachable"),
        "app:web-1": PollResult(True, NOW - 15, ""),
        "app:web-2": PollResult(False, NOW - 15, "http_503"),
    }
    assert {q.metric for q in client.queries} == {
        "snmp_up",
        "snmp_poll_error",
        "up",
        "scrape_error",
    }
    assert all(q.end == NOW and q.start < NOW for q in client.queries)


def test_newest_point_wins_whichever_series_comes_first() -> None:
    client = FakeClient(
        [
            _s("snmp_up", "net:r", [(NOW - 10, 1.0)], worker="b"),
            _s("snmp_up", "net:r", [(NOW - 50, 0.0)], worker="a"),
        ]
    )
    assert FleetStatus(client, 15).read(now=NOW) == {"net:r": PollResult(True, NOW - 10, "")}


def test_down_without_an_error_series_has_an_empty_reason() -> None:
    client = FakeClient([_s("snmp_up", "net:r", [(NOW - 10, 0.0)])])
    assert FleetStatus(client, 15).read(now=NOW) == {"net:r": PollResult(False, NOW - 10, "")}


async def test_refresh_keeps_the_last_good_results_on_a_tsdb_error() -> None:
    client = _fleet()
    fleet = FleetStatus(client, interval=15)
    await fleet.refresh()
    assert fleet.error is None
    assert fleet.read_at is not None
    good, read_at = fleet.results, fleet.read_at
    assert fleet.get("app:web-2") is not None and fleet.get("app:web-2").up is False
    assert fleet.get("nope") is None

    client.error = TsdbError("victoriametrics at http://127.0.0.1:8428: connection refused")
    await fleet.refresh()
    assert fleet.error is not None and "connection refused" in fleet.error
    assert fleet.results == good
    assert fleet.read_at == read_at

    client.error = None
    await fleet.refresh()
    assert fleet.error is None
    assert fleet.results == good
