"""The webhook payload, version 1: one JSON document per notification (a group of alerts).

```json
{
  "version": "1",
  "receiver": "ops-hook",
  "status": "firing",                 // "firing" if any alert in it fires, else "resolved"
  "groupKey": "cpu-high{site=pangyo}",
  "groupLabels": {"site": "pangyo"},
  "idempotencyKey": "3f0c...",        // also the Idempotency-Key header; same on every retry
  "alerts": [{
    "status": "firing",               // firing | resolved
    "repeat": false,                  // true for a reminder every repeat_interval
    "fingerprint": "9a1b2c3d4e5f6071",
    "rule": "cpu-high",
    "severity": "critical",
    "resource": "host:web-01",
    "metric": "cpu_usage_pct",
    "labels": {"alertname": "cpu-high", "site": "pangyo", "resource": "host:web-01", ...},
    "annotations": {"summary": "cpu-high: cpu_usage_pct on host:web-01 is 93 (> 90)"},
    "value": 93.0,
    "threshold": 90.0,
    "reason": "cpu_usage_pct 93 > 90",
    "startsAt": "2024-05-01T10:00:00.000Z",
    "endsAt": null                    // RFC 3339 once resolved
  }]
}
```

Headers: ``Content-Type: application/json``, ``X-Kemi-Signature: sha256=<hmac>``
(HMAC-SHA256 of the body with the receiver's secret), ``Idempotency-Key``,
``X-Kemi-Payload-Version: 1`` and the receiver's own ``headers``. Answer 2xx to
accept; 5xx, 429 and timeouts are retried with backoff; any other status is final.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

from alerting.notifier.signature import HEADER, sign
from kemi_stats.model import AlertEvent

__all__ = ["PAYLOAD_VERSION", "alert_key", "build_payload", "idempotency_key", "request_parts"]

PAYLOAD_VERSION = "1"
USER_AGENT = "kemi-stats-notifier/1"


def rfc3339(ms: int) -> str | None:
    """Milliseconds since the epoch as RFC 3339 UTC, or None for 0."""
    if not ms:
        return None
    return (
        datetime.fromtimestamp(ms / 1000, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def alert_key(event: AlertEvent) -> str:
    """What one notification of one alert is, for dedup and idempotency."""
    if event.status == "repeat":
        return f"{event.fingerprint}:repeat:{event.starts_at_ms}:{event.event_time_ms}"
    return f"{event.fingerprint}:{event.status}:{event.starts_at_ms}"


def idempotency_key(receiver: str, events: Iterable[AlertEvent]) -> str:
    """The same for the same receiver and the same alert notifications, on every retry."""
    h = hashlib.sha256(receiver.encode())
    for key in sorted(alert_key(e) for e in events):
        h.update(b"\n" + key.encode())
    return h.hexdigest()[:32]


def _alert(event: AlertEvent) -> dict[str, Any]:
    resolved = event.status == "resolved"
    return {
        "status": "resolved" if resolved else "firing",
        "repeat": event.status == "repeat",
        "fingerprint": event.fingerprint,
        "rule": event.rule,
        "severity": event.severity,
        "resource": event.resource_id,
        "metric": event.metric,
        "labels": event.labels,
        "annotations": event.annotations,
        "value": event.value,
        "threshold": event.threshold,
        "reason": event.reason,
        "startsAt": rfc3339(event.starts_at_ms),
        "endsAt": rfc3339(event.ends_at_ms) if resolved else None,
    }


def build_payload(
    receiver: str, group_key: str, group_labels: Mapping[str, str], events: list[AlertEvent]
) -> dict[str, Any]:
    """The payload for a notification of ``events`` (already deduplicated) to ``receiver``."""
    alerts = [_alert(e) for e in sorted(events, key=lambda e: (e.starts_at_ms, e.fingerprint))]
    return {
        "version": PAYLOAD_VERSION,
        "receiver": receiver,
        "status": "firing" if any(a["status"] == "firing" for a in alerts) else "resolved",
        "groupKey": group_key,
        "groupLabels": dict(group_labels),
        "idempotencyKey": idempotency_key(receiver, events),
        "alerts": alerts,
    }


def request_parts(
    payload: Mapping[str, Any], secret: str, extra_headers: Mapping[str, str] | None = None
) -> tuple[bytes, dict[str, str]]:
    """The exact body bytes and the headers (signature, idempotency key) to POST."""
    body = orjson.dumps(payload)
    headers = {**(extra_headers or {})}
    headers.update(
        {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-Kemi-Payload-Version": PAYLOAD_VERSION,
            "Idempotency-Key": str(payload["idempotencyKey"]),
            HEADER: sign(secret, body),
        }
    )
    return body, headers
