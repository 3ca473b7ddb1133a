"""The Grafana dashboards: every query is valid PromQL for VictoriaMetrics and finds data."""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from forwarder.alert_series import alerts_point
from forwarder.lineprotocol import BatchEncoder, EncodeStats
from forwarder.settings import ForwarderSettings
from forwarder.writer import Origin, TsdbWriter
from kemi_stats.model import AlertEvent, MetricKind, Sample, SampleBatch, Source
from kemi_stats.settings import Settings
from tests.servers import RunningServer

pytestmark = pytest.mark.integration

GRAFANA = Path(__file__).resolve().parents[2] / "deploy" / "grafana"


def _targets(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [t for p in doc["panels"] for t in p["targets"]]


def _expand(expr: str, resource: str) -> str:
    return (
        expr.replace("$__rate_interval", "5m")
        .replace("$resource", resource)
        .replace("$ifName", ".*")
        .replace("$site", ".*")
    )


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return bytes(resp.read())


async def _seed(vm: RunningServer, resource: str) -> None:
    now = int(time.time() * 1000)
    batches = []
    for i in range(6):
        t = now - (5 - i) * 60_000
        batches.append(
            SampleBatch(
                resource, t, Source.SNMP, labels={"site": "pangyo"},
                samples=[
                    Sample("snmp_up", 1), Sample("snmp_poll_duration_seconds", 0.2),
                    Sample("sysUpTime", 100 * (1000 + 60 * i), kind=MetricKind.COUNTER32),
                    Sample("hrProcessorLoad", 20 + i, {"hrDeviceIndex": "196608"}),
                    Sample("laLoad", 0.5, {"laNames": "Load-1"}),
                    Sample("memTotalReal", 1000), Sample("memAvailReal", 400),
                    *[Sample(m, 10**9 + i * 60_000 * (k + 1), {"ifName": f"eth{k}"},
                             MetricKind.COUNTER64)
                      for k in range(2)
                      for m in ("ifHCInOctets", "ifHCOutOctets", "ifInErrors", "ifOutErrors",
                                "ifInDiscards", "ifOutDiscards")],
                    *[Sample("ifOperStatus", 1, {"ifName": f"eth{k}"}) for k in range(2)],
                ],
            )
        )  # fmt: skip
        # the platform's own services, as its scrape of them stores them
        grows = float(1000 * (i + 1))
        batches.append(
            SampleBatch(
                f"kemi:{resource}", t, Source.SCRAPE,
                labels={"platform": "kemi-stats", "component": "poller"},
                samples=[
                    Sample("up", 1), Sample("scrape_duration_seconds", 0.01),
                    Sample("kemi_forwarder_lag_seconds", 0.5),
                    Sample("kemi_alert_evaluator_active_alerts", 2),
                    *[Sample(m, grows, labels, MetricKind.FLOAT_COUNTER) for m, labels in (
                        ("kemi_poller_values_total", {}),
                        ("kemi_aggregator_samples_accepted_total", {}),
                        ("kemi_calculator_derived_samples_total", {"kind": "rate"}),
                        ("kemi_forwarder_points_written_total", {}),
                        ("kemi_poller_errors_total", {"reason": "timeout"}),
                        ("kemi_aggregator_requests_rejected_total", {"reason": "auth"}),
                        ("kemi_forwarder_write_errors_total", {}),
                        ("kemi_poller_jobs_dropped_total", {"reason": "late"}),
                    )],
                ],
            )
        )  # fmt: skip
        # alert states, as forwarder.alert_series writes them
        for state, severity in (("firing", "critical"), ("pending", "warning")):
            event = AlertEvent(f"fp-{state}", f"cpu-{state}", state, severity, resource,
                               "cpu_usage_pct", {"site": "pangyo"})  # fmt: skip
            batches.append(alerts_point(event, state, t))
    out: list[str] = []
    stats = EncodeStats()
    for b in batches:
        BatchEncoder("").encode(b, out, stats)
    writer = TsdbWriter(Settings(tsdb_url=f"http://{vm.address}"), ForwarderSettings())
    try:
        await writer.write(out, stats.points, Origin({}, "seed"))
    finally:
        writer.close()
    _get(f"http://{vm.address}/internal/force_flush")


def test_provisioning_points_dashboards_at_the_data_source() -> None:
    ds = yaml.safe_load((GRAFANA / "provisioning/datasources/victoriametrics.yaml").read_text())
    [source] = ds["datasources"]
    assert source["type"] == "prometheus"
    files = sorted((GRAFANA / "dashboards").glob("*.json"))
    assert [f.stem for f in files] == [
        "alerts", "fleet-overview", "host", "interfaces", "platform-health"
    ]  # fmt: skip
    for f in files:
        doc = json.loads(f.read_text())
        assert {t["datasource"]["uid"] for t in _targets(doc)} == {source["uid"]}
        assert len({p["id"] for p in doc["panels"]}) == len(doc["panels"])


async def test_every_dashboard_query_runs_and_returns_data(victoria: RunningServer) -> None:
    resource = f"net:dash-{uuid.uuid4().hex[:8]}"
    await _seed(victoria, resource)
    empty = []
    for f in sorted((GRAFANA / "dashboards").glob("*.json")):
        doc = json.loads(f.read_text())
        for t in _targets(doc):
            expr = _expand(t["expr"], resource)
            q = urllib.parse.urlencode({"query": expr, "time": f"{time.time():.3f}"})
            body = json.loads(_get(f"http://{victoria.address}/api/v1/query?{q}"))
            assert body["status"] == "success", (f.name, expr, body)
            if not body["data"]["result"] and "== 0" not in expr:
                empty.append((f.name, expr))
        for var in doc["templating"]["list"]:
            assert var["query"]["query"].startswith("label_values(")
    assert not empty, empty
