"""What goes into a notification: which alerts, in which order, under which idempotency key.

The payload's shape, headers and signature are the webhook contract in
:mod:`kemi_stats.webhook`; this module only decides the notifier's content.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping

from kemi_stats.model import AlertEvent
from kemi_stats.webhook import WebhookPayload, encode, webhook_alert, webhook_payload

__all__ = ["USER_AGENT", "alert_key", "build_payload", "idempotency_key", "request_parts"]

USER_AGENT = "kemi-stats-notifier/1"


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


def build_payload(
    receiver: str, group_key: str, group_labels: Mapping[str, str], events: list[AlertEvent]
) -> WebhookPayload:
    """The payload for a notification of ``events`` (already deduplicated) to ``receiver``."""
    ordered = sorted(events, key=lambda e: (e.starts_at_ms, e.fingerprint))
    alerts = [webhook_alert(e) for e in ordered]
    return webhook_payload(
        receiver, group_key, group_labels, alerts, idempotency_key(receiver, events)
    )


def request_parts(
    payload: WebhookPayload, secret: str, extra_headers: Mapping[str, str] | None = None
) -> tuple[bytes, dict[str, str]]:
    """The exact body bytes and the headers (signature, idempotency key) to POST."""
    return encode(payload, secret, USER_AGENT, extra_headers)
