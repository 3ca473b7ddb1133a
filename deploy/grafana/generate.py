"""Writes dashboards/*.json (run after editing; the JSON files are what Grafana loads).

    python deploy/grafana/generate.py

Every query is PromQL against the kemi series as the forwarder names them in
VictoriaMetrics: the metric name, with ``resource`` and the batch/sample labels as labels.
Rates are computed from the raw counters here, so the dashboards work without any derived
metric defined in the calculator.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

DS = {"type": "prometheus", "uid": "kemi-victoriametrics"}
OUT = Path(__file__).parent / "dashboards"


def target(expr: str, legend: str = "", ref: str = "A", instant: bool = False) -> dict[str, Any]:
    t: dict[str, Any] = {"datasource": DS, "expr": expr, "legendFormat": legend, "refId": ref}
    if instant:
        t.update(instant=True, range=False, format="table")
    return t


def panel(
    kind: str, title: str, targets: list[dict[str, Any]], x: int, y: int, w: int = 12,
    h: int = 8, unit: str = "short", **extra: Any,
) -> dict[str, Any]:  # fmt: skip
    p: dict[str, Any] = {
        "type": kind, "title": title, "datasource": DS, "targets": targets,
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {},
    }  # fmt: skip
    p.update(extra)
    return p


def variable(name: str, query: str, multi: bool = False) -> dict[str, Any]:
    return {
        "name": name, "label": name, "type": "query", "datasource": DS,
        "query": {"query": query, "refId": name}, "definition": query, "refresh": 2,
        "multi": multi, "includeAll": multi, "sort": 1,
        **({"allValue": ".*"} if multi else {}),
    }  # fmt: skip


def dashboard(uid: str, title: str, panels: list[dict[str, Any]], variables: list[Any]) -> Any:
    for i, p in enumerate(panels, 1):
        p["id"] = i
    return {
        "uid": uid, "title": title, "tags": ["kemi-stats"], "timezone": "browser",
        "schemaVersion": 39, "version": 1, "editable": False, "refresh": "1m",
        "time": {"from": "now-6h", "to": "now"}, "panels": panels,
        "templating": {"list": variables}, "annotations": {"list": []},
        "links": [{"type": "dashboards", "tags": ["kemi-stats"], "title": "kemi-stats",
                   "asDropdown": True}],
    }  # fmt: skip


#: a count that should be zero: green at 0, red from 1
RED_FROM_ONE = {
    "defaults": {"unit": "short", "thresholds": {"mode": "absolute", "steps": [
        {"color": "green", "value": None}, {"color": "red", "value": 1}]}},
    "overrides": [],
}  # fmt: skip

SITE = 'site=~"$site"'

fleet = dashboard(
    "kemi-fleet", "kemi-stats / Fleet overview",
    [
        panel("stat", "Resources reporting (last 5 m)",
              [target(f'count(count by (resource) (last_over_time({{resource!="",{SITE}}}[5m])))')],
              0, 0, 6, 4),
        panel("stat", "SNMP targets down",
              [target(f"count(snmp_up{{{SITE}}} == 0) or vector(0)")], 6, 0, 6, 4,
              fieldConfig=RED_FROM_ONE),
        panel("stat", "SNMP poll duration p95",
              [target(f"quantile(0.95, snmp_poll_duration_seconds{{{SITE}}})")], 12, 0, 6, 4,
              unit="s"),
        panel("stat", "Interface traffic in (all)",
              [target(f"sum(rate(ifHCInOctets{{{SITE}}}[$__rate_interval])) * 8")], 18, 0, 6, 4,
              unit="bps"),
        panel("timeseries", "Interface traffic in by site",
              [target(f"sum by (site) (rate(ifHCInOctets{{{SITE}}}[$__rate_interval])) * 8",
                      "{{site}} in"),
               target(f"sum by (site) (rate(ifHCOutOctets{{{SITE}}}[$__rate_interval])) * 8",
                      "{{site}} out", "B")],
              0, 4, 12, 8, unit="bps"),
        panel("timeseries", "Top 10 CPU load (hrProcessorLoad, avg per resource)",
              [target(f"topk(10, avg by (resource) (hrProcessorLoad{{{SITE}}}))", "{{resource}}")],
              12, 4, 12, 8, unit="percent"),
        panel("timeseries", "Resources reporting per site",
              [target(f'count by (site) (count by (site, resource) ({{resource!="",{SITE}}}))',
                      "{{site}}")],
              0, 12, 12, 8),
        panel("table", "SNMP targets down now",
              [target(f"snmp_up{{{SITE}}} == 0", instant=True)], 12, 12, 12, 8),
    ],
    [variable("site", "label_values(site)", multi=True)],
)  # fmt: skip

RES = 'resource="$resource"'
host = dashboard(
    "kemi-host", "kemi-stats / One host",
    [
        panel("stat", "SNMP up", [target(f"last_over_time(snmp_up{{{RES}}}[5m])")], 0, 0, 6, 4),
        panel("stat", "Uptime", [target(f"last_over_time(sysUpTime{{{RES}}}[5m]) / 100")],
              6, 0, 6, 4, unit="s"),
        panel("stat", "Poll duration",
              [target(f"last_over_time(snmp_poll_duration_seconds{{{RES}}}[5m])")],
              12, 0, 6, 4, unit="s"),
        panel("stat", "Series stored for this resource",
              [target(f'count(last_over_time({{{RES}}}[5m]))')], 18, 0, 6, 4),
        panel("timeseries", "CPU load per processor (hrProcessorLoad)",
              [target(f"hrProcessorLoad{{{RES}}}", "{{hrDeviceIndex}}{{index}}")],
              0, 4, 12, 8, unit="percent"),
        panel("timeseries", "Load average (UCD laLoad)",
              [target(f"laLoad{{{RES}}}", "{{laNames}}{{index}}")], 12, 4, 12, 8),
        panel("timeseries", "Memory used",
              [target(f"100 * (memTotalReal{{{RES}}} - memAvailReal{{{RES}}}) "
                      f"/ memTotalReal{{{RES}}}", "used %")],
              0, 12, 12, 8, unit="percent"),
        panel("timeseries", "Traffic (all interfaces)",
              [target(f"sum(rate(ifHCInOctets{{{RES}}}[$__rate_interval])) * 8", "in"),
               target(f"sum(rate(ifHCOutOctets{{{RES}}}[$__rate_interval])) * 8", "out", "B")],
              12, 12, 12, 8, unit="bps"),
    ],
    [variable("resource", 'label_values({resource!=""}, resource)')],
)  # fmt: skip

IF = 'resource="$resource",ifName=~"$ifName"'
interfaces = dashboard(
    "kemi-interfaces", "kemi-stats / Interfaces",
    [
        panel("timeseries", "In (bits/s)",
              [target(f"rate(ifHCInOctets{{{IF}}}[$__rate_interval]) * 8", "{{ifName}}")],
              0, 0, 12, 8, unit="bps"),
        panel("timeseries", "Out (bits/s)",
              [target(f"rate(ifHCOutOctets{{{IF}}}[$__rate_interval]) * 8", "{{ifName}}")],
              12, 0, 12, 8, unit="bps"),
        panel("timeseries", "Errors (per second)",
              [target(f"rate(ifInErrors{{{IF}}}[$__rate_interval])", "{{ifName}} in"),
               target(f"rate(ifOutErrors{{{IF}}}[$__rate_interval])", "{{ifName}} out", "B")],
              0, 8, 12, 8, unit="pps"),
        panel("timeseries", "Discards (per second)",
              [target(f"rate(ifInDiscards{{{IF}}}[$__rate_interval])", "{{ifName}} in"),
               target(f"rate(ifOutDiscards{{{IF}}}[$__rate_interval])", "{{ifName}} out", "B")],
              12, 8, 12, 8, unit="pps"),
        panel("state-timeline", "Oper status (1 up, 2 down)",
              [target(f"ifOperStatus{{{IF}}}", "{{ifName}}")], 0, 16, 24, 6),
        panel("table", "Busiest interfaces now (in, bits/s)",
              [target('topk(20, rate(ifHCInOctets{resource="$resource"}[5m]) * 8)',
                      instant=True)], 0, 22, 24, 8),
    ],
    [variable("resource", "label_values(ifHCInOctets, resource)"),
     variable("ifName", 'label_values(ifHCInOctets{resource="$resource"}, ifName)', multi=True)],
)  # fmt: skip


# the platform's own services, scraped by its poll workers (kemi-stats up registers them)
SELF = 'platform="kemi-stats"'
RATE = "[$__rate_interval]"
health = dashboard(
    "kemi-platform-health", "kemi-stats / Platform health",
    [
        panel("stat", "Services answering their scrape",
              [target(f"count(up{{{SELF}}} == 1) or vector(0)")], 0, 0, 6, 4),
        panel("stat", "Services not answering",
              [target(f"count(up{{{SELF}}} == 0) or vector(0)")], 6, 0, 6, 4,
              fieldConfig=RED_FROM_ONE),
        panel("stat", "Forwarder lag",
              [target(f"max(kemi_forwarder_lag_seconds{{{SELF}}})")], 12, 0, 6, 4, unit="s"),
        panel("stat", "Alerts active",
              [target(f"sum(kemi_alert_evaluator_active_alerts{{{SELF}}})")], 18, 0, 6, 4),
        panel("timeseries", "Samples per second, by stage",
              [target(f"sum(rate(kemi_poller_values_total{{{SELF}}}{RATE}))", "polled"),
               target(f"sum(rate(kemi_aggregator_samples_accepted_total{{{SELF}}}{RATE}))",
                      "pushed", "B"),
               target(f"sum(rate(kemi_calculator_derived_samples_total{{{SELF}}}{RATE}))",
                      "derived", "C"),
               target(f"sum(rate(kemi_forwarder_points_written_total{{{SELF}}}{RATE}))",
                      "stored", "D")],
              0, 4, 12, 8),
        panel("timeseries", "Errors per second, by component and reason",
              [target(f"sum by (component, reason) "
                      f"(rate(kemi_poller_errors_total{{{SELF}}}{RATE}))",
                      "{{component}} {{reason}}"),
               target(f"sum by (component, reason) "
                      f"(rate(kemi_aggregator_requests_rejected_total{{{SELF}}}{RATE}))",
                      "{{component}} {{reason}}", "B"),
               target(f"sum by (component) "
                      f"(rate(kemi_forwarder_write_errors_total{{{SELF}}}{RATE}))",
                      "{{component}}", "C")],
              12, 4, 12, 8),
        panel("timeseries", "Scrape duration of each service",
              [target(f"scrape_duration_seconds{{{SELF}}}", "{{component}}")],
              0, 12, 12, 8, unit="s"),
        panel("timeseries", "Poll jobs dropped per second, by reason",
              [target(f"sum by (reason) (rate(kemi_poller_jobs_dropped_total{{{SELF}}}{RATE}))",
                      "{{reason}}")],
              12, 12, 12, 8),
        panel("table", "Services not answering now",
              [target(f"up{{{SELF}}} == 0", instant=True)], 0, 20, 24, 6),
    ],
    [],
)  # fmt: skip


# the alert states the forwarder writes from kemi.alerts (forwarder/alert_series.py)
FIRING, PENDING = 'ALERTS{alertstate="firing"}', 'ALERTS{alertstate="pending"}'
alerts = dashboard(
    "kemi-alerts", "kemi-stats / Alerts",
    [
        panel("stat", "Firing now", [target(f"count({FIRING}) or vector(0)")], 0, 0, 6, 4,
              fieldConfig=RED_FROM_ONE),
        panel("stat", "Pending now", [target(f"count({PENDING}) or vector(0)")], 6, 0, 6, 4),
        panel("stat", "Resources with a firing alert",
              [target(f"count(count by (resource) ({FIRING})) or vector(0)")], 12, 0, 6, 4),
        panel("stat", "Critical firing",
              [target('count(ALERTS{alertstate="firing",severity="critical"}) or vector(0)')],
              18, 0, 6, 4, fieldConfig=RED_FROM_ONE),
        panel("timeseries", "Firing alerts by rule",
              [target(f"count by (alertname) ({FIRING})", "{{alertname}}")], 0, 4, 12, 8),
        panel("timeseries", "Firing alerts by severity",
              [target(f"count by (severity) ({FIRING})", "{{severity}}")], 12, 4, 12, 8),
        panel("table", "Firing and pending now",
              [target('ALERTS{alertstate=~"firing|pending"}', instant=True)], 0, 12, 24, 10),
    ],
    [],
)  # fmt: skip


def main() -> None:
    OUT.mkdir(exist_ok=True)
    for name, doc in (("fleet-overview", fleet), ("host", host), ("interfaces", interfaces),
                      ("platform-health", health), ("alerts", alerts)):  # fmt: skip
        (OUT / f"{name}.json").write_text(json.dumps(doc, indent=2) + "\n")


if __name__ == "__main__":
    main()
