"""The webhook contract: signatures, the payload shape and the headers sent with it."""

from __future__ import annotations

import orjson

from kemi_stats.model import AlertEvent
from kemi_stats.webhook import (
    IDEMPOTENCY_HEADER,
    SIGNATURE_HEADER,
    VERSION_HEADER,
    encode,
    sign,
    verify,
    webhook_alert,
    webhook_payload,
)

BODY = b'{"version":"1","alerts":[]}'


def test_sign_verify_round_trip() -> None:
    header = sign("S3CRET", BODY)
    assert header.startswith("sha256=") and len(header) == len("sha256=") + 64
    assert verify("S3CRET", BODY, header)
    assert verify("S3CRET", BODY, f"  {header}\n")
    assert verify("S3CRET", BODY, header.removeprefix("sha256="))  # bare hex, as the demo took


def test_tampered_body_does_not_verify() -> None:
    header = sign("S3CRET", BODY)
    assert not verify("S3CRET", BODY.replace(b"[]", b"[{}]"), header)
    assert not verify("S3CRET", BODY + b" ", header)


def test_wrong_secret_or_garbage_header_does_not_verify() -> None:
    header = sign("S3CRET", BODY)
    assert not verify("other", BODY, header)
    assert not verify("S3CRET", BODY, "")
    assert not verify("S3CRET", BODY, "sha256=not-hex-\u00e9")


def test_empty_secret_never_verifies() -> None:
    assert not verify("", BODY, sign("", BODY))
    assert not verify("", BODY, "")


def test_payload_status_and_alert_shape() -> None:
    firing = AlertEvent(fingerprint="f1", rule="r", status="firing", starts_at_ms=1000)
    repeat = AlertEvent(fingerprint="f2", rule="r", status="repeat", starts_at_ms=1000)
    resolved = AlertEvent(fingerprint="f3", rule="r", status="resolved", starts_at_ms=1000,
                          ends_at_ms=61_000)  # fmt: skip
    alerts = [webhook_alert(e) for e in (firing, repeat, resolved)]
    assert [(a["status"], a["repeat"]) for a in alerts] == [
        ("firing", False), ("firing", True), ("resolved", False),
    ]  # fmt: skip
    assert alerts[0]["startsAt"] == "1970-01-01T00:00:01.000Z" and alerts[0]["endsAt"] is None
    assert alerts[2]["endsAt"] == "1970-01-01T00:01:01.000Z"
    doc = webhook_payload("hook", "r{}", {"site": "a"}, alerts, "k1")
    assert doc["version"] == "1" and doc["status"] == "firing" and "test" not in doc
    gone = webhook_payload("hook", "r{}", {}, alerts[2:], "k2", test=True)
    assert gone["status"] == "resolved" and gone["test"] is True


def test_encode_signs_the_exact_body_and_keeps_contract_headers() -> None:
    doc = webhook_payload("hook", "r{}", {}, [], "k1")
    extra = {"X-Team": "ops", SIGNATURE_HEADER: "forged", IDEMPOTENCY_HEADER: "forged"}
    body, headers = encode(doc, "S3CRET", "tester/1", extra)
    assert orjson.loads(body) == doc
    assert verify("S3CRET", body, headers[SIGNATURE_HEADER])
    assert headers[IDEMPOTENCY_HEADER] == "k1" and headers[VERSION_HEADER] == "1"
    assert headers["User-Agent"] == "tester/1" and headers["X-Team"] == "ops"
    assert headers["Content-Type"] == "application/json"
