"""Notifier stages with plain data: payload and signature, dedup, grouping, commits, retry."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from alerting.notifier.dedup import NotificationLog, to_send
from alerting.notifier.group import Grouper, Job
from alerting.notifier.payload import build_payload, request_parts
from alerting.notifier.retry import RetryPolicy, deliver
from alerting.notifier.send import DeliveryError
from kemi_stats.model import AlertEvent
from kemi_stats.webhook import verify


def ev(status: str, fp: str = "f1", starts: int = 1000, at: int = 1000, **kw: object) -> AlertEvent:
    return AlertEvent(fingerprint=fp, rule="r", status=status, starts_at_ms=starts,
                      event_time_ms=at, labels={"site": "a"}, **kw)  # type: ignore[arg-type]  # fmt: skip


def test_payload_is_signed_and_keyed_stably() -> None:
    p1 = build_payload("hook", "r{}", {}, [ev("firing"), ev("firing", "f2")])
    p2 = build_payload("hook", "r{}", {}, [ev("firing", "f2"), ev("firing")])
    assert p1 == p2 and p1["version"] == "1" and p1["status"] == "firing"
    assert p1["alerts"][0]["startsAt"] == "1970-01-01T00:00:01.000Z"
    body, headers = request_parts(p1, "S3CRET", {"X-Team": "ops"})
    assert verify("S3CRET", body, headers["X-Kemi-Signature"])
    assert not verify("other", body, headers["X-Kemi-Signature"])
    assert headers["Idempotency-Key"] == p1["idempotencyKey"] and headers["X-Team"] == "ops"
    resolved = build_payload("hook", "r{}", {}, [ev("resolved", ends_at_ms=5000)])
    assert resolved["status"] == "resolved" and resolved["alerts"][0]["endsAt"]


def test_dedup_firing_once_resolved_only_after_firing(tmp_path: Path) -> None:
    log = NotificationLog(tmp_path / "n.sqlite")
    assert to_send(log, "h", [ev("resolved")])[0] == []
    send, keys = to_send(log, "h", [ev("firing")])
    assert len(send) == 1
    log.record("h", keys)
    assert to_send(log, "h", [ev("firing")])[0] == []
    assert len(to_send(log, "h", [ev("repeat", at=9000)])[0]) == 1
    assert to_send(log, "other", [ev("resolved")])[0] == []
    send, keys = to_send(log, "h", [ev("resolved")])
    log.record("h", keys)
    log.close()
    log = NotificationLog(tmp_path / "n.sqlite")  # persisted
    assert to_send(log, "h", [ev("resolved")])[0] == []
    assert to_send(log, "h", [ev("firing")])[0] == []


def test_grouping_keeps_latest_per_alert() -> None:
    g = Grouper()
    ack = lambda: None  # noqa: E731
    g.add(Job(ev("firing", group_by=["site"]), ack), 0.0, 2.0)
    g.add(Job(ev("resolved", group_by=["site"]), ack), 1.0, 2.0)
    g.add(Job(ev("firing", "f2", group_by=["site"]), ack), 1.0, 2.0)
    assert g.due(1.9) == []
    (group,) = g.due(2.0)
    assert group.key == "r{site=a}" and len(group.jobs) == 3
    assert sorted((e.fingerprint, e.status) for e in group.events()) == [
        ("f1", "resolved"),
        ("f2", "firing"),
    ]


async def test_retry_only_retryable_with_backoff() -> None:
    calls: list[float] = []

    async def flaky() -> int:
        calls.append(time.monotonic())
        if len(calls) < 3:
            raise DeliveryError("500", retryable=True, status=500)
        return 200

    out = await deliver(flaky, RetryPolicy(max_retries=5, initial=0.01, maximum=0.05))
    assert out.ok and out.attempts == 3

    async def bad_request() -> int:
        raise DeliveryError("400", retryable=False, status=400)

    out = await deliver(bad_request, RetryPolicy(max_retries=5, initial=0.01))
    assert not out.ok and out.attempts == 1 and "400" in out.reason

    async def down() -> int:
        raise DeliveryError("timeout", retryable=True)

    out = await deliver(down, RetryPolicy(max_retries=3, initial=0.01, maximum=0.02))
    assert not out.ok and out.attempts == 4 and "gave up after 4" in out.reason


@pytest.mark.parametrize("status, retryable", [(500, True), (503, True), (429, True), (404, False)])
async def test_sender_classifies_http_answers(status: int, retryable: bool) -> None:
    import aiohttp

    from alerting.notifier.send import WebhookSender
    from demo.receiver import RecordingReceiver

    rcv = await RecordingReceiver(secret="s", respond=lambda r: status).start()
    try:
        async with aiohttp.ClientSession() as session:
            with pytest.raises(DeliveryError) as info:
                await WebhookSender(session).send("hook", rcv.url, b"{}", {}, 2.0)
            assert info.value.retryable is retryable and info.value.status == status
            rcv.respond = None
            assert await WebhookSender(session).send("hook", rcv.url, b"{}", {}, 2.0) == 200
    finally:
        await rcv.stop()
