"""Alertmanager's formats: alerts posted to its API, and its webhook payload (version 4).

A receiver with ``alertmanager_urls`` sends alerts to Alertmanager's
``POST /api/v2/alerts`` as Prometheus does; a webhook receiver with
``format: alertmanager`` sends exactly the JSON an Alertmanager webhook receiver gets,
so receivers written for Alertmanager work unchanged. Field by field:

```json
{
  "version": "4",
  "groupKey": "{}:{alertname=\\"cpu-high\\"}",   // the group's labels, as Alertmanager writes them
  "truncatedAlerts": 0,
  "status": "firing",                          // firing if any alert fires, else resolved
  "receiver": "ops-hook",
  "groupLabels": {"alertname": "cpu-high"},
  "commonLabels": {...},                       // labels every alert of the group has
  "commonAnnotations": {...},                  // annotations every alert has, same value
  "externalURL": "http://127.0.0.1:9104",      // KEMI_ALERTING_EXTERNAL_URL
  "alerts": [{
    "status": "firing",
    "labels": {"alertname": "cpu-high", "severity": "critical", "resource": "host:web-01", ...},
    "annotations": {"summary": "..."},
    "startsAt": "2024-05-01T10:00:00.000Z",
    "endsAt": "0001-01-01T00:00:00Z",          // Alertmanager's zero time while firing
    "generatorURL": "http://127.0.0.1:8428/vmui/#/?g0.expr=...",
    "fingerprint": "9a1b2c3d4e5f6071"
  }]
}
```

Every alert's labels carry ``alertname`` (the rule), ``severity`` and ``resource``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from kemi_stats.model import AlertEvent
from kemi_stats.webhook import rfc3339

__all__ = [
    "WEBHOOK_VERSION",
    "ZERO_TIME",
    "Links",
    "alert_labels",
    "generator_url",
    "group_key",
    "postable_alert",
    "webhook_payload",
]

WEBHOOK_VERSION = "4"
#: what Alertmanager's webhook gives as ``endsAt`` of an alert still firing
ZERO_TIME = "0001-01-01T00:00:00Z"


@dataclass(frozen=True, slots=True)
class Links:
    """What Alertmanager's formats link to: ``externalURL`` and each alert's ``generatorURL``
    template (see :func:`generator_url`)."""

    external_url: str
    generator: str


def alert_labels(event: AlertEvent) -> dict[str, str]:
    """The alert's labels as Alertmanager sees them: ``alertname``, ``severity``, ``resource``."""
    labels = dict(event.labels)
    labels["alertname"] = event.rule
    if event.severity:
        labels["severity"] = event.severity
    if event.resource_id:
        labels["resource"] = event.resource_id
    return labels


def generator_url(event: AlertEvent, template: str) -> str:
    """Where to see the series: ``template`` with ``{query}`` (URL-encoded), ``{rule}``,
    ``{fingerprint}`` and ``{resource}`` filled in."""
    selector = event.metric
    if event.resource_id:
        escaped = event.resource_id.replace("\\", "\\\\").replace('"', '\\"')
        selector += f'{{resource="{escaped}"}}'
    return template.format_map({
        "query": quote(selector, safe=""), "rule": quote(event.rule, safe=""),
        "fingerprint": event.fingerprint, "resource": quote(event.resource_id, safe=""),
    })  # fmt: skip


def postable_alert(
    event: AlertEvent, generator: str, valid_for: float, now: float | None = None
) -> dict[str, Any]:
    """One alert for ``POST /api/v2/alerts``.

    A firing alert is valid for ``valid_for`` seconds (``endsAt`` that far ahead, as
    Prometheus sends 4 resend intervals): Alertmanager resolves it by itself if the
    re-sends stop. A resolved one ends when it resolved.
    """
    now_ms = int((now if now is not None else time.time()) * 1000)
    if event.status == "resolved":
        ends_ms = event.ends_at_ms or now_ms
    else:
        ends_ms = now_ms + int(valid_for * 1000)
    return {
        "labels": alert_labels(event),
        "annotations": dict(event.annotations),
        "startsAt": rfc3339(event.starts_at_ms or event.event_time_ms),
        "endsAt": rfc3339(ends_ms),
        "generatorURL": generator_url(event, generator),
    }


def group_key(group_labels: Mapping[str, str]) -> str:
    """A group's key as Alertmanager writes it: ``{}:{name="value",...}``."""
    inner = ",".join(f'{k}="{v}"'.replace("\n", "\\n") for k, v in sorted(group_labels.items()))
    return "{}:{" + inner + "}"


def _common(maps: Iterable[Mapping[str, str]]) -> dict[str, str]:
    items = iter(maps)
    first = next(items, None)
    if first is None:
        return {}
    common = dict(first)
    for m in items:
        common = {k: v for k, v in common.items() if m.get(k) == v}
    return common


def webhook_payload(
    receiver: str,
    group_labels: Mapping[str, str],
    events: list[AlertEvent],
    external_url: str,
    generator: str,
) -> dict[str, Any]:
    """Alertmanager's webhook JSON (version 4) for a notification of ``events``."""
    alerts: list[dict[str, Any]] = []
    for e in events:
        resolved = e.status == "resolved"
        alerts.append({
            "status": "resolved" if resolved else "firing",
            "labels": alert_labels(e),
            "annotations": dict(e.annotations),
            "startsAt": rfc3339(e.starts_at_ms or e.event_time_ms) or ZERO_TIME,
            "endsAt": (rfc3339(e.ends_at_ms) or ZERO_TIME) if resolved else ZERO_TIME,
            "generatorURL": generator_url(e, generator),
            "fingerprint": e.fingerprint,
        })  # fmt: skip
    labels = dict(group_labels)
    return {
        "version": WEBHOOK_VERSION,
        "groupKey": group_key(labels),
        "truncatedAlerts": 0,
        "status": "firing" if any(a["status"] == "firing" for a in alerts) else "resolved",
        "receiver": receiver,
        "groupLabels": labels,
        "commonLabels": _common(a["labels"] for a in alerts),
        "commonAnnotations": _common(a["annotations"] for a in alerts),
        "externalURL": external_url,
        "alerts": alerts,
    }
