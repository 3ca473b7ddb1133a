"""The demo's live terminal view: components, samples/s per stage, lag, firing alerts.

Everything shown is read from the services' own ``/metrics`` endpoints and the demo
receiver, so the view shows what an operator's Prometheus would see.
"""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field

import orjson
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table

from kemi_stats.stack.launcher import Supervisor
from kemi_stats.stack.process import pid_alive

__all__ = ["STAGES", "Scrape", "run_live_view", "scrape"]

#: stage -> sample names (counters) whose sum over services is that stage's throughput;
#: ``name|label=value`` counts only the samples with that label
STAGES: dict[str, tuple[str, ...]] = {
    "polled (raw)": ("kemi_poller_values_total",),
    "pushed (raw)": ("kemi_aggregator_samples_accepted_total",),
    "derived": ("kemi_calculator_derived_samples_total",),
    "stored": ("kemi_forwarder_points_written_total",),
    "alert transitions": ("kemi_alert_evaluator_transitions_total",),
    "webhooks delivered": ("kemi_notifier_notifications_total|outcome=delivered",),
}
#: the samples counted per label value as well (``name|label=value`` in STAGES)
_BY_LABEL = frozenset(n.split("|", 1)[0] for names in STAGES.values() for n in names if "|" in n)


@dataclass
class Scrape:
    """Sample values by (sample name, labels) from one round over every service."""

    at: float
    values: dict[str, float] = field(default_factory=dict)
    lags: dict[str, float] = field(default_factory=dict)
    last_polls: list[float] = field(default_factory=list)


def _get(url: str, timeout: float = 1.0) -> bytes | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return bytes(resp.read())
    except Exception:
        return None


def scrape(metrics_urls: Iterable[tuple[str, str]]) -> Scrape:
    """Sum the stage counters and collect lag gauges from every service's /metrics."""
    out = Scrape(at=time.time())
    for service, url in metrics_urls:
        body = _get(url)
        if body is None:
            continue
        for family in text_string_to_metric_families(body.decode(errors="replace")):
            for sample in family.samples:
                name = sample.name
                value = float(sample.value)
                out.values[name] = out.values.get(name, 0.0) + value
                if name in _BY_LABEL:
                    for k, v in sample.labels.items():
                        key = f"{name}|{k}={v}"
                        out.values[key] = out.values.get(key, 0.0) + value
                if "lag" in name and not name.endswith(("_bucket", "_count", "_sum", "_created")):
                    # one row per group: records behind add up over partitions, seconds do not
                    what = name.removeprefix("kemi_").removeprefix(service.replace("-", "_") + "_")
                    key = f"{service}: {what.replace('_', ' ')}"
                    if name.endswith("_seconds"):
                        out.lags[key] = max(out.lags.get(key, 0.0), value)
                    else:
                        out.lags[key] = out.lags.get(key, 0.0) + value
                if name == "kemi_poller_target_last_poll_timestamp_seconds":
                    out.last_polls.append(float(sample.value))
    return out


def _rate(prev: Scrape, cur: Scrape, names: tuple[str, ...]) -> float | None:
    seen = [n for n in names if n in cur.values]
    if not seen or cur.at <= prev.at:
        return None
    delta = sum(cur.values[n] - prev.values.get(n, 0.0) for n in seen)
    return max(delta, 0.0) / (cur.at - prev.at)


def _render(sup: Supervisor, prev: Scrape, cur: Scrape, alerts: list[dict[str, object]]) -> Group:
    comps = Table(title="components", box=None, header_style="bold")
    for col in ("name", "status", "pid", "restarts", "address"):
        comps.add_column(col)
    for c in sup.state.components:
        alive = c.pid is not None and pid_alive(c.pid)
        status = c.status if alive else "down"
        colour = (
            "green"
            if status == "up"
            else "yellow"
            if status in ("starting", "restarting")
            else "red"
        )
        comps.add_row(
            c.name, f"[{colour}]{status}[/]", str(c.pid or "-"), str(c.restarts), c.address
        )
    stages = Table(title="pipeline", box=None, header_style="bold")
    stages.add_column("stage")
    stages.add_column("per second", justify="right")
    stages.add_column("total", justify="right")
    for stage, names in STAGES.items():
        rate = _rate(prev, cur, names)
        total = sum(cur.values.get(n, 0.0) for n in names)
        stages.add_row(stage, "-" if rate is None else f"{rate:,.1f}", f"{total:,.0f}")
    recent = sum(1 for t in cur.last_polls if t > cur.at - 20)
    stages.add_row("targets polled (last 20 s)", str(recent), str(len(cur.last_polls)))
    lag = Table(title="consumer lag", box=None, header_style="bold")
    lag.add_column("consumer group")
    lag.add_column("lag", justify="right")
    for key, value in sorted(cur.lags.items())[:12]:
        lag.add_row(key, f"{value:,.1f}")
    firing = Table(
        title="alerts received by the demo webhook (latest)", box=None, header_style="bold"
    )
    for col in ("time", "status", "rule", "resource", "value"):
        firing.add_column(col)
    for a in alerts[-8:]:
        firing.add_row(
            *(str(a.get(k, "")) for k in ("time", "status", "rule", "resource", "value"))
        )
    return Group(
        Panel.fit(comps), Panel.fit(stages), Panel.fit(lag), Panel.fit(firing),
        "[dim]Ctrl-C stops everything. Graphs: http://127.0.0.1:"
        f"{sup.config.vm_port}/vmui  ·  logs: {sup.config.data_dir}/logs[/]",
    )  # fmt: skip


def _alerts(receiver_url: str) -> list[dict[str, object]]:
    body = _get(receiver_url)
    if not body:
        return []
    out = []
    for item in orjson.loads(body):
        payload = item.get("payload") or {}
        for a in payload.get("alerts", [payload]) if isinstance(payload, dict) else []:
            out.append({
                "time": time.strftime("%H:%M:%S", time.localtime(item.get("received_at", 0))),
                "status": a.get("status", ""), "rule": a.get("rule", ""),
                "resource": a.get("resource_id") or (a.get("labels") or {}).get("resource", ""),
                "value": a.get("value", ""),
            })  # fmt: skip
    return out


def run_live_view(sup: Supervisor, refresh: float = 2.0) -> None:
    """Redraw the view every ``refresh`` seconds until the supervisor stops."""
    urls = [
        (c.name, c.health_url.replace("/healthz", "/metrics"))
        for c in sup.state.components
        if c.kind == "service" and c.health_url
    ]
    receiver = next((c for c in sup.state.components if c.name == "demo-receiver"), None)
    receiver_url = (
        receiver.health_url.replace("/healthz", "/received")
        if receiver and receiver.health_url
        else ""
    )
    prev = scrape(urls)
    with Live(refresh_per_second=1, screen=False, transient=True) as live:
        while not sup.stop_event.wait(refresh):
            cur = scrape(urls)
            live.update(_render(sup, prev, cur, _alerts(receiver_url) if receiver_url else []))
            prev = cur
