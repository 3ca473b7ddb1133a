"""The webhook contract: the versioned payload, its headers and its signature.

The notifier sends it, ``kemi-stats receiver test`` sends a test one, the demo
receiver checks it. Version 1 is one JSON document per notification (a group of alerts):

```json
{
  "version": "1",
  "receiver": "ops-hook",
  "status": "firing",                 // "firing" if any alert in it fires, else "resolved"
  "groupKey": "cpu-high{site=pangyo}",
  "groupLabels": {"site": "pangyo"},
  "idempotencyKey": "3f0c...",        // also the Idempotency-Key header; same on every retry
  "test": true,                       // only in a `kemi-stats receiver test` payload
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
(HMAC-SHA256 of the exact body with the receiver's secret), ``Idempotency-Key``,
``X-Kemi-Payload-Version: 1``, a ``User-Agent`` naming the sender and the receiver's
own ``headers``. Answer 2xx to accept; 5xx, 429 and timeouts are retried with
backoff; any other status is final.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import NotRequired, TypedDict

import orjson

from kemi_stats.model import AlertEvent

__all__ = [
    "IDEMPOTENCY_HEADER",
    "PAYLOAD_VERSION",
    "SIGNATURE_HEADER",
    "VERSION_HEADER",
    "WebhookAlert",
    "WebhookPayload",
    "encode",
    "rfc3339",
    "sign",
    "verify",
    "webhook_alert",
    "webhook_payload",
]

PAYLOAD_VERSION = "1"
SIGNATURE_HEADER = "X-Kemi-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
VERSION_HEADER = "X-Kemi-Payload-Version"
_SCHEME = "sha256="


class WebhookAlert(TypedDict):
    """One alert of a notification, as sent."""

    status: str
    repeat: bool
    fingerprint: str
    rule: str
    severity: str
    resource: str
    metric: str
    labels: dict[str, str]
    annotations: dict[str, str]
    value: float
    threshold: float
    reason: str
    startsAt: str | None
    endsAt: str | None


class WebhookPayload(TypedDict):
    """One notification (a group of alerts), as sent."""

    version: str
    receiver: str
    status: str
    groupKey: str
    groupLabels: dict[str, str]
    idempotencyKey: str
    test: NotRequired[bool]
    alerts: list[WebhookAlert]


def rfc3339(ms: int) -> str | None:
    """Milliseconds since the epoch as RFC 3339 UTC, or None for 0."""
    if not ms:
        return None
    return (
        datetime.fromtimestamp(ms / 1000, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def webhook_alert(event: AlertEvent) -> WebhookAlert:
    """How one alert event reads in a payload (a repeat is a firing alert marked ``repeat``)."""
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


def webhook_payload(
    receiver: str,
    group_key: str,
    group_labels: Mapping[str, str],
    alerts: list[WebhookAlert],
    idempotency_key: str,
    *,
    test: bool = False,
) -> WebhookPayload:
    """The payload carrying ``alerts`` to ``receiver``; ``test`` marks a test notification."""
    payload: WebhookPayload = {
        "version": PAYLOAD_VERSION,
        "receiver": receiver,
        "status": "firing" if any(a["status"] == "firing" for a in alerts) else "resolved",
        "groupKey": group_key,
        "groupLabels": dict(group_labels),
        "idempotencyKey": idempotency_key,
        "alerts": alerts,
    }
    if test:
        payload["test"] = True
    return payload


def encode(
    payload: WebhookPayload,
    secret: str,
    user_agent: str,
    extra_headers: Mapping[str, str] | None = None,
) -> tuple[bytes, dict[str, str]]:
    """The exact body bytes and the headers to POST them with."""
    body = orjson.dumps(payload)
    # the receiver's own headers go first so they cannot replace the contract's
    headers = {**(extra_headers or {})}
    headers.update(
        {
            "Content-Type": "application/json",
            "User-Agent": user_agent,
            VERSION_HEADER: PAYLOAD_VERSION,
            IDEMPOTENCY_HEADER: payload["idempotencyKey"],
            SIGNATURE_HEADER: sign(secret, body),
        }
    )
    return body, headers


def sign(secret: str, body: bytes) -> str:
    """The ``X-Kemi-Signature`` value for ``body``: ``sha256=<hex HMAC-SHA256>``."""
    return _SCHEME + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str) -> bool:
    """Whether ``header`` (``sha256=<hex>`` or bare ``<hex>``) signs ``body`` with ``secret``."""
    if not secret:
        return False  # a receiver without a secret cannot tell a forged body from a real one
    given = header.strip().removeprefix(_SCHEME)
    expected = sign(secret, body).removeprefix(_SCHEME)
    # bytes, because compare_digest refuses non-ASCII str and a header may carry any
    return hmac.compare_digest(expected.encode(), given.encode())
