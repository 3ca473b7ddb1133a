"""The platform page's throughput and lag: parsing /metrics and the metric names it reads."""

from __future__ import annotations

import importlib
import time
from typing import Any

import orjson
import pytest
from prometheus_client import REGISTRY

from console.platform_status import LAG, THROUGHPUT, PlatformStatus, ServiceStatus, _sum_samples

EXPOSITION = """\
# HELP kemi_poller_polls_total Target polls finished, by result
# TYPE kemi_poller_polls_total counter
kemi_poller_polls_total{result="ok"} 10.0
kemi_poller_polls_total{result="timeout"} 2.5
kemi_poller_polls_total{result="auth"} 0.5
# HELP kemi_poller_polls_created Created
# TYPE kemi_poller_polls_created gauge
kemi_poller_polls_created{result="ok"} 1.7e9
# HELP kemi_forwarder_lag_records Records behind
# TYPE kemi_forwarder_lag_records gauge
kemi_forwarder_lag_records{partition="0"} 3.0
kemi_forwarder_lag_records{partition="1"} 4.0
# HELP other_total Other
# TYPE other_total counter
other_total 99.0
"""


def test_sum_samples_sums_across_label_sets() -> None:
    names = {"kemi_poller_polls_total", "kemi_forwarder_lag_records", "absent_total"}
    assert _sum_samples(EXPOSITION, names) == {
        "kemi_poller_polls_total": 13.0,
        "kemi_forwarder_lag_records": 7.0,
    }
    assert _sum_samples(EXPOSITION, set()) == {}
    assert _sum_samples("", {"kemi_poller_polls_total"}) == {}


# the modules whose metrics THROUGHPUT and LAG name (the notifier counts deliveries in
# its pipeline module)
_METRIC_MODULES = (
    "poller.worker.metrics",
    "poller.scheduler.metrics",
    "aggregator.metrics",
    "calculator.metrics",
    "alerting.evaluator.metrics",
    "alerting.notifier.metrics",
    "alerting.notifier.pipeline",
    "forwarder.metrics",
)


@pytest.fixture(scope="module")
def collectors() -> dict[str, Any]:
    for name in _METRIC_MODULES:
        importlib.import_module(name)
    return dict(REGISTRY._names_to_collectors)


@pytest.mark.parametrize(("service", "sample"), [(k, v[0]) for k, v in THROUGHPUT.items()])
def test_throughput_names_a_registered_counter(
    collectors: dict[str, Any], service: str, sample: str
) -> None:
    # a renamed metric would silently blank the platform page's throughput column
    assert sample.endswith("_total"), sample
    collector = collectors.get(sample.removesuffix("_total"))
    assert collector is not None, f"{service}: no metric {sample}"
    assert collector._type == "counter", f"{service}: {sample} is a {collector._type}"


@pytest.mark.parametrize(("service", "sample"), [(k, v[0]) for k, v in LAG.items()])
def test_lag_names_a_registered_gauge(
    collectors: dict[str, Any], service: str, sample: str
) -> None:
    collector = collectors.get(sample)
    assert collector is not None, f"{service}: no metric {sample}"
    assert collector._type == "gauge", f"{service}: {sample} is a {collector._type}"


class _Resp:
    def __init__(self, status: int, body: bytes) -> None:
        self.status, self._body = status, body

    async def read(self) -> bytes:
        return self._body

    async def __aenter__(self) -> _Resp:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None


class _FakeHttp:
    """Answers /healthz and /metrics of one service from memory (no server)."""

    def __init__(self) -> None:
        self.health: dict[str, Any] = {"status": "ok", "uptime_seconds": 12.0, "checks": {}}
        self.metrics = ""

    def get(self, url: str) -> _Resp:
        if url.endswith("/healthz"):
            return _Resp(200, orjson.dumps(self.health))
        return _Resp(200, self.metrics.encode())


def _polls(ok: float, timeout: float) -> str:
    return (
        "# TYPE kemi_poller_polls_total counter\n"
        f'kemi_poller_polls_total{{result="ok"}} {ok}\n'
        f'kemi_poller_polls_total{{result="timeout"}} {timeout}\n'
    )


async def test_throughput_is_the_counter_rate_between_two_reads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    status = PlatformStatus({"poller": "http://127.0.0.1:1"}, interval=15, timeout=1)
    st = status.services["poller"]
    http = _FakeHttp()

    http.metrics = _polls(100, 20)
    await status._read_one(http, st)  # type: ignore[arg-type]
    assert st.healthy is True and st.detail == "ok" and st.uptime_s == 12.0
    assert st.throughput is None  # one read: no rate yet
    assert st.throughput_unit == "polls/s"

    clock[0] += 10
    http.metrics = _polls(130, 40)
    await status._read_one(http, st)  # type: ignore[arg-type]
    assert st.throughput == pytest.approx(5.0)  # (170 - 120) / 10 s


async def test_lag_and_failed_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    st = ServiceStatus("forwarder", "http://127.0.0.1:1")
    http = _FakeHttp()
    http.health["checks"] = {"kafka": {"ok": False, "detail": "no broker"}, "tsdb": {"ok": True}}
    http.metrics = (
        "# TYPE kemi_forwarder_lag_records gauge\n"
        'kemi_forwarder_lag_records{partition="0"} 3\n'
        'kemi_forwarder_lag_records{partition="1"} 4\n'
    )
    await PlatformStatus({}, 15, 1)._read_one(http, st)  # type: ignore[arg-type]
    assert st.healthy is True
    assert st.detail == "kafka: no broker"
    assert (st.lag, st.lag_unit) == (7.0, "records")
