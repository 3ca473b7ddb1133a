"""Standard Webhooks signing and verification, secret strength, and URL redaction."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

import click
import pytest
from click.testing import CliRunner

from alerting.notifier.payload import HttpRequest, notification
from kemi_stats.alertmanager import Links
from kemi_stats.cli.output import print_entries
from kemi_stats.cli.registry_cmd import _keep_stored_urls, check_secret
from kemi_stats.errors import ValidationError
from kemi_stats.model import AlertEvent
from kemi_stats.redact import is_redacted, redact_url, redact_urls
from kemi_stats.registry.models import Receiver
from kemi_stats.registry.store import Entry
from kemi_stats.webhook import (
    ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WEBHOOK_SIGNATURE_HEADER,
    WebhookVerificationError,
    check,
    secret_key,
    secret_problem,
    sign,
    signature,
    signature_headers,
    verify,
    verify_legacy,
)

BODY = b'{"version":"1","alerts":[]}'
SECRET = "a-secret-of-32-characters-long!!"
RAW_KEY = bytes(range(32))
WHSEC = "whsec_" + base64.b64encode(RAW_KEY).decode()
NOW = 1_700_000_000.0


def headers(
    secret: str | list[str] = SECRET, body: bytes = BODY, at: float = NOW
) -> dict[str, str]:
    return signature_headers(secret, "msg-1", body, at)


def test_round_trip_and_the_exact_signed_content() -> None:
    h = headers()
    assert h[ID_HEADER] == "msg-1" and h[TIMESTAMP_HEADER] == str(int(NOW))
    expected = hmac.new(SECRET.encode(), b"msg-1.1700000000." + BODY, hashlib.sha256).digest()
    assert h[WEBHOOK_SIGNATURE_HEADER] == "v1," + base64.b64encode(expected).decode()
    assert verify(SECRET, h, BODY, now=NOW)
    check(SECRET, h, BODY, now=NOW + 299)  # inside the 5 minutes: no exception


def test_header_names_are_case_insensitive() -> None:
    h = {k.upper(): v for k, v in headers().items()}
    assert verify(SECRET, h, BODY, now=NOW)


def test_whsec_secret_is_base64_decoded_into_the_key() -> None:
    assert secret_key(WHSEC) == RAW_KEY
    assert secret_key(SECRET) == SECRET.encode()
    h = headers(WHSEC)
    content = f"msg-1.{int(NOW)}.".encode() + BODY
    expected = base64.b64encode(hmac.new(RAW_KEY, content, hashlib.sha256).digest()).decode()
    assert h[WEBHOOK_SIGNATURE_HEADER] == f"v1,{expected}"
    assert verify(WHSEC, h, BODY, now=NOW)
    assert not verify(WHSEC.removeprefix("whsec_"), h, BODY, now=NOW)  # not the same key


def test_several_signatures_during_a_rotation() -> None:
    old, new = "the-old-secret-of-the-receiver", "the-new-secret-of-the-receiver"
    h = headers([new, old])
    assert len(h[WEBHOOK_SIGNATURE_HEADER].split()) == 2
    assert verify(new, h, BODY, now=NOW) and verify(old, h, BODY, now=NOW)
    assert verify(["unrelated-secret-here", old], h, BODY, now=NOW)  # receiver holds several
    assert not verify("unrelated-secret-here", h, BODY, now=NOW)
    # the deprecated header carries the current secret's signature only
    assert verify_legacy(new, BODY, h[SIGNATURE_HEADER])
    # unknown versions are skipped, a matching v1 among them still counts
    mixed = {**h, WEBHOOK_SIGNATURE_HEADER: "v1a,AAAA v2,BBBB " + h[WEBHOOK_SIGNATURE_HEADER]}
    assert verify(old, mixed, BODY, now=NOW)


def test_a_timestamp_ten_minutes_old_or_ahead_is_rejected() -> None:
    h = headers()
    with pytest.raises(WebhookVerificationError, match="600 s old"):
        check(SECRET, h, BODY, now=NOW + 600)
    with pytest.raises(WebhookVerificationError, match="600 s in the future"):
        check(SECRET, h, BODY, now=NOW - 600)
    assert not verify(SECRET, h, BODY, now=NOW + 600)
    assert verify(SECRET, h, BODY, tolerance=900, now=NOW + 600)


def test_a_refreshed_timestamp_does_not_carry_the_old_signature() -> None:
    h = {**headers(), TIMESTAMP_HEADER: str(int(NOW) + 600)}
    assert not verify(SECRET, h, BODY, now=NOW + 600)


def test_tampered_body_wrong_secret_and_garbage_are_rejected() -> None:
    h = headers()
    assert not verify(SECRET, h, BODY.replace(b"[]", b"[{}]"), now=NOW)
    assert not verify(SECRET, h, BODY + b" ", now=NOW)
    assert not verify("another-secret-of-some-length", h, BODY, now=NOW)
    assert not verify(SECRET, {**h, ID_HEADER: "msg-2"}, BODY, now=NOW)
    assert not verify(SECRET, {**h, WEBHOOK_SIGNATURE_HEADER: "v1,\u00e9t\u00e9"}, BODY, now=NOW)
    assert not verify(SECRET, {**h, TIMESTAMP_HEADER: "yesterday"}, BODY, now=NOW)
    assert not verify(SECRET, {}, BODY, now=NOW)
    assert not verify("", headers(""), BODY, now=NOW)  # no secret: nothing is proven


def test_the_clock_is_the_default_now() -> None:
    assert verify(SECRET, signature_headers(SECRET, "m", BODY), BODY)
    assert not verify(SECRET, signature_headers(SECRET, "m", BODY, time.time() - 600), BODY)


def test_the_old_names_keep_working() -> None:
    legacy = sign(SECRET, BODY)
    assert legacy.startswith("sha256=")
    assert verify(SECRET, BODY, legacy)  # the deprecated form: bytes second
    assert not verify(SECRET, BODY + b"x", legacy)
    assert signature(SECRET, "msg-1", int(NOW), BODY) == headers()[WEBHOOK_SIGNATURE_HEADER]


def test_secret_strength() -> None:
    assert secret_problem(SECRET) is None and secret_problem(WHSEC) is None
    assert secret_problem("S3CRET") == "must have at least 16 bytes, this one has 6"
    assert secret_problem("x" * 16) is None
    # whsec_ counts decoded bytes: 12 bytes of key, although 22 characters
    assert "has 12" in (secret_problem("whsec_" + base64.b64encode(b"k" * 12).decode()) or "")
    assert secret_problem("whsec_not base64!") == "must be base64 after whsec_"


def test_receiver_weak_secret_only_where_it_signs() -> None:
    assert Receiver(url="http://h/x", secret="S3CRET").weak_secret  # still loads
    assert Receiver(url="http://h/x").weak_secret
    assert not Receiver(url="http://h/x", secret=SECRET).weak_secret
    assert not Receiver(url="http://h/x", format="alertmanager").weak_secret  # unsigned
    assert Receiver(url="http://h/x", format="alertmanager", secret="short").weak_secret
    assert not Receiver(alertmanager_urls=["http://am:9093"]).weak_secret


def test_cli_refuses_a_weak_secret_on_write_naming_the_option() -> None:
    with pytest.raises(ValidationError, match=r"^receiver r: --secret must have at least 16"):
        check_secret("receiver", "r", Receiver(url="http://h/x", secret="S3CRET"))
    with pytest.raises(
        ValidationError, match=r"stored secret is weak \(.*\): give a new one with --secret$"
    ):
        check_secret("receiver", "r", Receiver(url="http://h/x", secret="S3CRET"), stored=True)
    check_secret("receiver", "r", Receiver(url="http://h/x", secret=SECRET))


def _event() -> AlertEvent:
    return AlertEvent(fingerprint="f" * 16, rule="r", status="firing", starts_at_ms=1000)


def test_notifications_carry_both_schemes_and_are_signed_again_per_attempt() -> None:
    rcv = Receiver(url="http://h/x", secret=SECRET, previous_secret="the-old-secret-0123")
    (request,) = notification("hook", rcv, "g{}", {}, [_event()], Links("", "")).requests
    assert request.headers[ID_HEADER] == request.headers["Idempotency-Key"]
    assert verify(SECRET, request.headers, request.body)
    assert verify("the-old-secret-0123", request.headers, request.body)
    assert verify_legacy(SECRET, request.body, request.headers[SIGNATURE_HEADER])
    later = request.headers_at(time.time() + 3600)
    assert later[ID_HEADER] == request.headers[ID_HEADER]
    assert int(later[TIMESTAMP_HEADER]) >= int(request.headers[TIMESTAMP_HEADER]) + 3600
    assert verify(SECRET, later, request.body, now=time.time() + 3600)
    assert SECRET not in repr(request)


def test_alertmanager_format_is_signed_only_with_a_secret() -> None:
    signed = Receiver(url="http://h/x", format="alertmanager", secret=SECRET)
    (req,) = notification("am", signed, "g{}", {}, [_event()], Links("", "")).requests
    assert verify(SECRET, req.headers, req.body)
    plain = Receiver(url="http://h/x", format="alertmanager")
    (req,) = notification("am", plain, "g{}", {}, [_event()], Links("", "")).requests
    assert WEBHOOK_SIGNATURE_HEADER not in req.headers and SIGNATURE_HEADER not in req.headers
    assert req.headers_at() == req.headers
    api = Receiver(alertmanager_urls=["http://am:9093"])
    (req,) = notification("am", api, "g{}", {}, [_event()], Links("", "")).requests
    assert isinstance(req, HttpRequest) and ID_HEADER not in req.headers


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://user:pw@hooks.example.com/services/T000/B000/XXXX?token=abc",
         "https://hooks.example.com/…"),
        ("https://hooks.example.com:8443/x", "https://hooks.example.com:8443/…"),
        ("http://127.0.0.1:9190/alerts", "http://127.0.0.1:9190/…"),
        ("https://hooks.example.com/?token=abc", "https://hooks.example.com/…"),
        ("https://hooks.example.com#frag", "https://hooks.example.com/…"),
        ("http://am-1:9093", "http://am-1:9093"),
        ("http://am-1:9093/", "http://am-1:9093/"),
        ("http://u:p@am-1:9093", "http://am-1:9093/…"),
        ("http://[::1]:8080/secret", "http://[::1]:8080/…"),
        ("not a url", "…"),
        ("", ""),
    ],
)  # fmt: skip
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_redact_urls_in_error_text() -> None:
    text = (
        "Cannot connect to host hooks.example.com:443 ssl:default [refused]; "
        "400, message='Bad Request', url='https://u:p@hooks.example.com/services/T0/B0/XX?t=1'"
    )
    out = redact_urls(text)
    assert "services" not in out and "u:p" not in out and "t=1" not in out
    assert "url='https://hooks.example.com/…'" in out
    assert "hooks.example.com:443" in out  # a bare host:port is not a secret
    assert is_redacted(redact_url("https://h/x")) and not is_redacted("https://h/x")


def _printed(entries: list[Entry], output: str) -> str:
    @click.command()
    def show() -> None:
        print_entries("receiver", entries, output)

    result = CliRunner().invoke(show)
    assert result.exit_code == 0, result.output
    return result.output


def test_receiver_list_and_show_redact_urls_and_mark_weak_secrets() -> None:
    entries = [
        Entry("receiver", "weak", Receiver(url="https://u:p@hooks.example.com/T0/B0/XX",
                                            secret="S3CRET")),
        Entry("receiver", "good", Receiver(url="https://hooks.example.com/hook?token=t",
                                            secret=SECRET)),
        Entry("receiver", "am", Receiver(alertmanager_urls=["http://am:9093/sub/path"])),
    ]  # fmt: skip
    for output in ("table", "yaml", "json"):
        text = _printed(entries, output)
        for leak in ("u:p", "T0/B0", "token=t", "sub/path", "S3CRET", SECRET):
            assert leak not in text, (output, leak)
        assert "https://hooks.example.com/…" in text and "http://am:9093/…" in text
    table = _printed(entries, "table")
    (weak_line,) = [line for line in table.splitlines() if line.startswith("weak")]
    assert "weak secret" in weak_line
    assert "weak secret" not in next(ln for ln in table.splitlines() if ln.startswith("good"))


def test_update_from_show_output_keeps_the_stored_urls() -> None:
    stored = Receiver(url="https://hooks.example.com/T0/B0/XX", alertmanager_urls=[])
    raw = {"url": "https://hooks.example.com/…", "timeout": 3}
    _keep_stored_urls("receiver", "r", raw, stored)
    assert raw["url"] == "https://hooks.example.com/T0/B0/XX"
    with pytest.raises(ValidationError, match="redacted"):
        _keep_stored_urls("receiver", "r", {"url": "https://other.example.com/…"}, stored)
    with pytest.raises(ValidationError, match="redacted"):
        _keep_stored_urls("receiver", "r", {"url": "https://hooks.example.com/…"}, None)


def test_an_empty_key_never_verifies() -> None:
    """A bare ``whsec_`` decodes to no key at all: anyone could sign with it."""
    headers = signature_headers("whsec_", "id-1", b"{}")
    assert not verify("whsec_", headers, b"{}")
    assert not verify("", headers, b"{}")


@pytest.mark.parametrize("stamp", ["1_700_000_000", " 17e8", "+1700000000", "\uff11\uff17"])
def test_only_digits_are_a_timestamp(stamp: str) -> None:
    headers = dict(signature_headers(SECRET, "id-1", b"{}"))
    headers["webhook-timestamp"] = stamp
    with pytest.raises(WebhookVerificationError, match="is not unix seconds"):
        check(SECRET, headers, b"{}")


def test_redact_urls_in_text_covers_ipv6_hosts_and_parentheses() -> None:
    text = "failed http://[::1]:9/s3cr3t?token=x and https://h.example/a(x)/b"
    assert redact_urls(text) == "failed http://[::1]:9/… and https://h.example/…"
