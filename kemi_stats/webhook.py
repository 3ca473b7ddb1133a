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

Headers: ``Content-Type: application/json``, ``Idempotency-Key``,
``X-Kemi-Payload-Version: 1``, a ``User-Agent`` naming the sender, the receiver's own
``headers``, and the signature headers of Standard Webhooks
(https://www.standardwebhooks.com):

* ``webhook-id``: the idempotency key, the same on every retry (a receiver drops a
  replay of an id it has seen);
* ``webhook-timestamp``: unix seconds at each attempt (a retry is signed again);
* ``webhook-signature``: ``v1,<base64 HMAC-SHA256>`` of ``{id}.{timestamp}.{body}``,
  several space-separated while a secret is rotated (the current one first).

The key is the secret's bytes: ``whsec_<base64>`` is base64-decoded, any other secret
is used as its UTF-8. A receiver accepts the request if one ``v1`` signature matches and
the timestamp is within 5 minutes of its clock (either way). In Python, :func:`verify`
answers a bool (for a receiver that only answers 401) and :func:`check` raises
:class:`WebhookVerificationError` saying why (for one that logs it); both take several
secrets, for a receiver in the middle of a rotation. The README shows the same check
in six lines of standard library. A new secret has at least :data:`MIN_SECRET_BYTES`
key bytes (:func:`secret_problem`; older, shorter ones still sign).

Deprecated, sent for one more release: ``X-Kemi-Signature: sha256=<hex HMAC-SHA256 of
the body>``, keyed with the secret's UTF-8 bytes as before. It signs neither the time nor
the id, so a captured request can be replayed for ever: receivers must move to
``webhook-signature``.

Answer 2xx to accept; 5xx, 429 and timeouts are retried with backoff; any other status
is final.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import NotRequired, TypedDict, overload

import orjson

from kemi_stats.model import AlertEvent

__all__ = [
    "DEFAULT_TOLERANCE",
    "IDEMPOTENCY_HEADER",
    "ID_HEADER",
    "MIN_SECRET_BYTES",
    "PAYLOAD_VERSION",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "VERSION_HEADER",
    "WEBHOOK_SIGNATURE_HEADER",
    "WebhookAlert",
    "WebhookPayload",
    "WebhookVerificationError",
    "check",
    "encode",
    "rfc3339",
    "secret_key",
    "secret_problem",
    "sign",
    "signature",
    "signature_headers",
    "verify",
    "verify_legacy",
    "webhook_alert",
    "webhook_payload",
]

PAYLOAD_VERSION = "1"
IDEMPOTENCY_HEADER = "Idempotency-Key"
VERSION_HEADER = "X-Kemi-Payload-Version"
#: Standard Webhooks
ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
WEBHOOK_SIGNATURE_HEADER = "webhook-signature"
#: deprecated: HMAC of the body alone, sent for one more release
SIGNATURE_HEADER = "X-Kemi-Signature"
#: how far a timestamp may be from the receiver's clock, in seconds (Standard Webhooks' 5 min)
DEFAULT_TOLERANCE = 300.0
#: the shortest key a new signing secret may have: shorter ones are guessable offline
#: from one captured request
MIN_SECRET_BYTES = 16
_SCHEME = "sha256="
_VERSION = "v1"
_WHSEC = "whsec_"


class WebhookVerificationError(ValueError):
    """A request that does not prove it comes from the sender now; the message says why."""


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
    secret: str | Sequence[str],
    user_agent: str,
    extra_headers: Mapping[str, str] | None = None,
    *,
    now: float | None = None,
) -> tuple[bytes, dict[str, str]]:
    """The exact body bytes and the headers to POST them with, signed at ``now``.

    ``secret`` is the receiver's secret, or several (the current one first) while it is
    rotated: one signature per secret."""
    body = orjson.dumps(payload)
    # the receiver's own headers go first so they cannot replace the contract's
    headers = {**(extra_headers or {})}
    headers.update(
        {
            "Content-Type": "application/json",
            "User-Agent": user_agent,
            VERSION_HEADER: PAYLOAD_VERSION,
            IDEMPOTENCY_HEADER: payload["idempotencyKey"],
            **signature_headers(secret, payload["idempotencyKey"], body, now),
        }
    )
    return body, headers


def _secrets(secret: str | Sequence[str]) -> list[str]:
    return [secret] if isinstance(secret, str) else list(secret)


def secret_key(secret: str) -> bytes:
    """The HMAC key of ``secret``: ``whsec_<base64>`` decoded, else its UTF-8 bytes.

    A ``whsec_`` value that is not base64 is taken as UTF-8 as a whole rather than
    failing every delivery; the CLI refuses such a secret (:func:`secret_problem`)."""
    if secret.startswith(_WHSEC):
        try:
            return base64.b64decode(secret[len(_WHSEC) :], validate=True)
        except (binascii.Error, ValueError):
            pass
    return secret.encode()


def secret_problem(secret: str) -> str | None:
    """Why ``secret`` is too weak to be given to a receiver now (None if it is fine)."""
    if secret.startswith(_WHSEC):
        try:
            base64.b64decode(secret[len(_WHSEC) :], validate=True)
        except (binascii.Error, ValueError):
            return "must be base64 after whsec_"
    size = len(secret_key(secret))
    if size < MIN_SECRET_BYTES:
        return f"must have at least {MIN_SECRET_BYTES} bytes, this one has {size}"
    return None


def signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """One Standard Webhooks signature, ``v1,<base64 HMAC-SHA256 of id.timestamp.body>``."""
    content = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), content, hashlib.sha256).digest()
    return f"{_VERSION},{base64.b64encode(digest).decode()}"


def signature_headers(
    secret: str | Sequence[str], msg_id: str, body: bytes, now: float | None = None
) -> dict[str, str]:
    """The signature headers of one attempt at ``now`` (default: the clock): Standard
    Webhooks' three, one signature per secret, and the deprecated ``X-Kemi-Signature``
    (with the first secret, which is the current one)."""
    keys = _secrets(secret)
    timestamp = int(time.time() if now is None else now)
    return {
        ID_HEADER: msg_id,
        TIMESTAMP_HEADER: str(timestamp),
        WEBHOOK_SIGNATURE_HEADER: " ".join(signature(k, msg_id, timestamp, body) for k in keys),
        SIGNATURE_HEADER: sign(keys[0] if keys else "", body),
    }


def _header(headers: Mapping[str, str], name: str) -> str:
    """A header by name, whatever case the server or the caller's dict spelled it in."""
    value = headers.get(name)
    if value is None:
        wanted = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == wanted), "")
    return value.strip()


def _timestamp(value: str, tolerance: float, now: float | None) -> int:
    # digits only: int() would also take "1_700_000_000", " +17e2"-like forms a signer never sends
    if not value.isascii() or not value.isdigit() or len(value) > 15:
        raise WebhookVerificationError(f"{TIMESTAMP_HEADER} {value[:20]!r} is not unix seconds")
    timestamp = int(value)
    skew = (time.time() if now is None else now) - timestamp
    if skew > tolerance:
        raise WebhookVerificationError(f"{TIMESTAMP_HEADER} is {skew:.0f} s old (a replay?)")
    if skew < -tolerance:
        raise WebhookVerificationError(f"{TIMESTAMP_HEADER} is {-skew:.0f} s in the future")
    return timestamp


def _v1_signatures(value: str) -> Iterable[bytes]:
    """The ``v1`` signatures of a header value; other versions (``v1a``, ...) are skipped."""
    for part in value.split():
        version, _, sig = part.partition(",")
        if version == _VERSION:
            yield sig.encode()


def check(
    secret: str | Sequence[str],
    headers: Mapping[str, str],
    body: bytes,
    tolerance: float = DEFAULT_TOLERANCE,
    *,
    now: float | None = None,
) -> None:
    """Raise :class:`WebhookVerificationError` unless the request is signed by one of the
    ``secret`` (several while a rotation is under way) and its timestamp is within
    ``tolerance`` seconds of ``now`` (default: the clock) either way.

    The timestamp is signed, so an old request cannot be refreshed: a capture replayed
    later fails here. Replays inside the window have the same ``webhook-id``: drop ids
    you have seen. Signatures are compared in constant time."""
    # a secret whose key is empty ("" or a bare "whsec_") would let anyone sign
    keys = [k for k in _secrets(secret) if secret_key(k)]
    if not keys:
        raise WebhookVerificationError("no secret: an unsigned receiver cannot tell forgeries")
    msg_id = _header(headers, ID_HEADER)
    if not msg_id:
        raise WebhookVerificationError(f"no {ID_HEADER} header")
    timestamp = _timestamp(_header(headers, TIMESTAMP_HEADER), tolerance, now)
    given = list(_v1_signatures(_header(headers, WEBHOOK_SIGNATURE_HEADER)))
    for key in keys:
        expected = signature(key, msg_id, timestamp, body).partition(",")[2].encode()
        # every pair is compared (a list, not any()): the time taken tells nothing
        if True in [hmac.compare_digest(expected, sig) for sig in given]:
            return
    raise WebhookVerificationError(f"no {WEBHOOK_SIGNATURE_HEADER} matches the body")


@overload
def verify(
    secret: str | Sequence[str],
    headers: Mapping[str, str],
    body: bytes,
    tolerance: float = DEFAULT_TOLERANCE,
    *,
    now: float | None = None,
) -> bool: ...


@overload
def verify(secret: str, headers: bytes, body: str) -> bool: ...


def verify(
    secret: str | Sequence[str],
    headers: Mapping[str, str] | bytes,
    body: bytes | str,
    tolerance: float = DEFAULT_TOLERANCE,
    *,
    now: float | None = None,
) -> bool:
    """Whether a request is signed by ``secret`` (or one of several) at a time within
    ``tolerance`` seconds of ``now``: :func:`check` as a bool, for receivers that only
    answer 401. Use :func:`check` to log why.

    Deprecated form, kept for one release: ``verify(secret, body, x_kemi_signature)``
    (bytes second) checks the old header, see :func:`verify_legacy`."""
    if isinstance(headers, bytes):
        if not isinstance(secret, str) or not isinstance(body, str):
            raise TypeError("verify(secret, body, x_kemi_signature): secret and header are str")
        return verify_legacy(secret, headers, body)
    if not isinstance(body, bytes):
        raise TypeError("verify(secret, headers, body): body is the raw request bytes")
    try:
        check(secret, headers, body, tolerance, now=now)
    except WebhookVerificationError:
        return False
    return True


def sign(secret: str, body: bytes) -> str:
    """Deprecated: the ``X-Kemi-Signature`` value, ``sha256=<hex HMAC-SHA256 of body>``."""
    return _SCHEME + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_legacy(secret: str, body: bytes, header: str) -> bool:
    """Deprecated: whether ``X-Kemi-Signature`` (``sha256=<hex>`` or bare ``<hex>``) signs
    ``body``. It does not sign a time: a captured request passes it for ever."""
    if not secret:
        return False  # a receiver without a secret cannot tell a forged body from a real one
    given = header.strip().removeprefix(_SCHEME)
    expected = sign(secret, body).removeprefix(_SCHEME)
    # bytes, because compare_digest refuses non-ASCII str and a header may carry any
    return hmac.compare_digest(expected.encode(), given.encode())
