"""What goes into a notification: which alerts, in which order, under which idempotency key,
and the HTTP requests that carry it to a receiver of each kind.

The payloads' shapes are contracts kept elsewhere: kemi's webhook in
:mod:`kemi_stats.webhook`, Alertmanager's webhook and API in :mod:`kemi_stats.alertmanager`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import orjson

from kemi_stats import alertmanager
from kemi_stats.alertmanager import Links
from kemi_stats.model import AlertEvent
from kemi_stats.registry.models import Receiver
from kemi_stats.webhook import (
    IDEMPOTENCY_HEADER,
    WebhookPayload,
    encode,
    signature_headers,
    webhook_alert,
    webhook_payload,
)

__all__ = [
    "USER_AGENT",
    "HttpRequest",
    "Links",
    "Notification",
    "alert_key",
    "build_payload",
    "idempotency_key",
    "notification",
    "request_parts",
]

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
    receiver: str,
    group_key: str,
    group_labels: Mapping[str, str],
    events: list[AlertEvent],
    *,
    test: bool = False,
) -> WebhookPayload:
    """kemi's webhook payload for a notification of ``events`` (already deduplicated)."""
    ordered = sorted(events, key=lambda e: (e.starts_at_ms, e.fingerprint))
    alerts = [webhook_alert(e) for e in ordered]
    key = idempotency_key(receiver, events)
    return webhook_payload(receiver, group_key, group_labels, alerts, key, test=test)


def request_parts(
    payload: WebhookPayload,
    secret: str | Sequence[str],
    extra_headers: Mapping[str, str] | None = None,
) -> tuple[bytes, dict[str, str]]:
    """The exact body bytes and the headers (signatures, idempotency key) to POST now;
    ``secret`` may be several (current first) while a receiver's secret is rotated."""
    return encode(payload, secret, USER_AGENT, extra_headers)


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """One POST of a notification. ``headers`` are signed when it is built; a signed
    request is signed again at each attempt (:meth:`headers_at`), because a receiver
    refuses a timestamp older than a few minutes and retries can last longer."""

    #: a receiver URL may be a credential, headers carry Authorization: never in a repr
    url: str = field(repr=False)
    body: bytes = field(repr=False)
    headers: dict[str, str] = field(repr=False)
    #: the secrets it is signed with, current first; () for an unsigned request
    secrets: tuple[str, ...] = field(default=(), repr=False)

    def headers_at(self, now: float | None = None) -> dict[str, str]:
        """The headers of an attempt at ``now`` (default: the clock): a fresh
        ``webhook-timestamp`` and signatures, the same ``webhook-id``."""
        if not self.secrets:
            return self.headers
        msg_id = self.headers[IDEMPOTENCY_HEADER]
        return {**self.headers, **signature_headers(self.secrets, msg_id, self.body, now)}


@dataclass(frozen=True, slots=True)
class Notification:
    """A notification and the POSTs that carry it (one per Alertmanager of an HA set)."""

    idempotency_key: str
    status: str
    requests: list[HttpRequest]


def notification(
    name: str,
    receiver: Receiver,
    group_key: str,
    group_labels: Mapping[str, str],
    events: list[AlertEvent],
    links: Links,
    *,
    test: bool = False,
) -> Notification:
    """The requests that notify ``events`` (already deduplicated) to receiver ``name``."""
    ordered = sorted(events, key=lambda e: (e.starts_at_ms, e.fingerprint))
    key = idempotency_key(name, events)
    firing = any(e.status != "resolved" for e in ordered)
    status = "firing" if firing else "resolved"
    own = {**receiver.headers, **receiver.auth_headers()}
    if receiver.is_alertmanager:
        valid_for = 4 * receiver.resend_interval
        body = orjson.dumps(
            [alertmanager.postable_alert(e, links.generator, valid_for) for e in ordered]
        )
        headers = {**own, "Content-Type": "application/json", "User-Agent": USER_AGENT}
        requests = [
            HttpRequest(f"{u}/api/v2/alerts", body, headers) for u in receiver.alertmanager_urls
        ]
        return Notification(key, status, requests)
    if receiver.format == "alertmanager":
        labels = {"alertname": ordered[0].rule, **group_labels} if ordered else dict(group_labels)
        am = alertmanager.webhook_payload(
            name, labels, ordered, links.external_url, links.generator
        )
        body = orjson.dumps(am)
        headers = {**own, "Content-Type": "application/json", "User-Agent": USER_AGENT,
                   IDEMPOTENCY_HEADER: key}  # fmt: skip
        # signed only if it has a secret: Alertmanager's own webhooks are not
        secrets = tuple(receiver.signing_secrets()) if receiver.secret else ()
        request = HttpRequest(receiver.url, body, headers, secrets)
        return Notification(key, status, [replace(request, headers=request.headers_at())])
    payload = build_payload(name, group_key, group_labels, events, test=test)
    secrets = tuple(receiver.signing_secrets())
    body, headers = request_parts(payload, secrets, own)
    return Notification(key, status, [HttpRequest(receiver.url, body, headers, secrets)])
