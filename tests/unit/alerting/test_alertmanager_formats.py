"""Alertmanager's formats, and the requests a receiver of each kind gets."""

from __future__ import annotations

import asyncio
import base64
import time

import orjson
import pytest
from pydantic import ValidationError

from alerting.notifier.payload import notification
from alerting.notifier.pipeline import _first_success
from alerting.notifier.retry import Outcome
from kemi_stats.alertmanager import Links, generator_url, group_key, webhook_payload
from kemi_stats.model import AlertEvent
from kemi_stats.registry.models import Receiver
from kemi_stats.webhook import SIGNATURE_HEADER, verify

LINKS = Links("http://kemi:9104", "http://vm:8428/vmui/#/?g0.expr={query}")


def ev(status: str, fp: str = "f1", resource: str = "host:web-01", **kw: object) -> AlertEvent:
    return AlertEvent(
        fingerprint=fp, rule="cpu-high", status=status, severity="critical", resource_id=resource,
        metric="cpu_usage_pct", labels={"site": "pangyo", "role": "web"},
        annotations={"summary": f"{resource} hot"}, starts_at_ms=1_700_000_000_000, **kw,  # type: ignore[arg-type]
    )  # fmt: skip


def test_webhook_payload_common_labels_and_zero_end_time() -> None:
    body = webhook_payload(
        "ops", {"alertname": "cpu-high"},
        [ev("firing"), ev("resolved", "f2", "host:web-02", ends_at_ms=1_700_000_060_000)],
        LINKS.external_url, LINKS.generator,
    )  # fmt: skip
    assert body["status"] == "firing"
    assert body["groupKey"] == '{}:{alertname="cpu-high"}'
    assert body["commonLabels"] == {
        "site": "pangyo", "role": "web", "alertname": "cpu-high", "severity": "critical"
    }  # fmt: skip
    assert body["commonAnnotations"] == {}
    firing, resolved = body["alerts"]
    assert firing["endsAt"] == "0001-01-01T00:00:00Z"
    assert resolved["endsAt"] == "2023-11-14T22:14:20.000Z"
    assert firing["generatorURL"] == (
        "http://vm:8428/vmui/#/?g0.expr=cpu_usage_pct%7Bresource%3D%22host%3Aweb-01%22%7D"
    )


def test_generator_url_escapes_quotes_and_group_key_sorts() -> None:
    url = generator_url(ev("firing", resource='a"b'), "{query}|{rule}|{resource}")
    assert url == "cpu_usage_pct%7Bresource%3D%22a%5C%22b%22%7D|cpu-high|a%22b"
    assert group_key({"b": "2", "a": "1"}) == '{}:{a="1",b="2"}'


def test_an_alertmanager_receiver_posts_to_every_url_with_auth() -> None:
    rcv = Receiver(alertmanager_urls=["http://am-1:9093/", "http://am-2:9093"],
                   basic_user="kemi", basic_password="pw", resend_interval=30)  # fmt: skip
    notice = notification("am", rcv, "cpu-high{}", {}, [ev("firing")], LINKS)
    assert [r.url for r in notice.requests] == [
        "http://am-1:9093/api/v2/alerts", "http://am-2:9093/api/v2/alerts"
    ]  # fmt: skip
    request = notice.requests[0]
    assert request.headers["Authorization"] == "Basic " + base64.b64encode(b"kemi:pw").decode()
    [alert] = orjson.loads(request.body)
    assert set(alert) == {"labels", "annotations", "startsAt", "endsAt", "generatorURL"}
    assert alert["labels"]["alertname"] == "cpu-high"
    assert alert["labels"]["resource"] == "host:web-01"
    assert alert["endsAt"] > alert["startsAt"], "valid for 4 resend intervals"


def test_a_webhook_in_alertmanager_format_is_signed_and_keyed() -> None:
    rcv = Receiver(url="http://hook/x", format="alertmanager", secret="S3CRET",
                   bearer_token="tok", headers={"X-Team": "ops"})  # fmt: skip
    notice = notification("ops", rcv, "cpu-high{site=pangyo}", {"site": "pangyo"}, [ev("firing")], LINKS)  # fmt: skip
    [request] = notice.requests
    body = orjson.loads(request.body)
    assert body["version"] == "4"
    assert body["groupLabels"] == {"alertname": "cpu-high", "site": "pangyo"}
    assert body["externalURL"] == "http://kemi:9104"
    assert verify("S3CRET", request.body, request.headers[SIGNATURE_HEADER])
    assert request.headers["Authorization"] == "Bearer tok"
    assert request.headers["X-Team"] == "ops"
    assert request.headers["Idempotency-Key"] == notice.idempotency_key


def test_the_kemi_format_is_unchanged_by_default() -> None:
    notice = notification("ops", Receiver(url="http://hook/x", secret="s"), "g{}", {}, [ev("firing")], LINKS)  # fmt: skip
    assert orjson.loads(notice.requests[0].body)["version"] == "1"


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({}, "either url"),
        ({"url": "http://h/x", "alertmanager_urls": ["http://am:9093"]}, "either url"),
        ({"alertmanager_urls": ["am:9093"]}, "alertmanager URL 'am:9093'"),
        ({"url": "http://h/x", "bearer_token": "t", "basic_user": "u"}, "exclude each other"),
        ({"url": "http://h/x", "format": "prometheus"}, "format"),
    ],
)
def test_bad_receivers_name_the_field(fields: dict[str, object], words: str) -> None:
    with pytest.raises(ValidationError) as err:
        Receiver.model_validate(fields)
    assert words in str(err.value)


async def test_one_alertmanager_down_does_not_hold_the_notification() -> None:
    async def ok() -> Outcome:
        await asyncio.sleep(0.01)
        return Outcome(True, 1, 0.01)

    async def retrying_forever() -> Outcome:
        await asyncio.sleep(60)
        return Outcome(False, 9, 60.0, reason="down")

    async def refused() -> Outcome:
        return Outcome(False, 1, 0.0, reason="HTTP 400")

    started = time.monotonic()
    outcomes = await _first_success(
        [asyncio.create_task(ok()), asyncio.create_task(retrying_forever())], 0.2
    )
    assert time.monotonic() - started < 1.0
    assert [o.ok for o in outcomes] == [True, False]
    assert "another destination took it" in outcomes[1].reason
    both_bad = await _first_success([asyncio.create_task(refused()), asyncio.create_task(refused())], 0.2)  # fmt: skip
    assert [o.reason for o in both_bad] == ["HTTP 400", "HTTP 400"]
