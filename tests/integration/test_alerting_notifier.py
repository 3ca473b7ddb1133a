"""The notifier as a real process: a recording aiohttp webhook in the test, alert events
produced straight to a topic of the test's own.

"500 for one minute" is scaled down to 3 s (with backoff bounds to match) so the
suite stays fast; the behaviour under test does not depend on the length.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import orjson
import pytest

from demo.receiver import Received, RecordingReceiver
from kemi_stats.codec import encode_alert
from kemi_stats.kafka import make_producer
from kemi_stats.model import AlertEvent
from kemi_stats.registry.models import Receiver
from kemi_stats.registry.store import Registry
from kemi_stats.settings import Settings
from kemi_stats.webhook import verify
from tests.integration.alerting_support import Alerts, running
from tests.servers import ServiceProcess

pytestmark = pytest.mark.integration

SECRET = "S3CRET"


@pytest.fixture
def notifier(alerting_env: dict[str, str], tmp_path: Path) -> Iterator[ServiceProcess]:
    yield from running("alerting.notifier", alerting_env, tmp_path / "notifier.log")


@pytest.fixture
async def produce(settings: Settings, topics: dict[str, str]) -> AsyncIterator:  # type: ignore[type-arg]
    producer = make_producer(settings)
    await producer.start()

    async def send(*events: AlertEvent) -> None:
        for e in events:
            await producer.send_and_wait(topics["alerts"], encode_alert(e), key=e.key)

    yield send
    await producer.stop()


@pytest.fixture
async def dead(settings: Settings, topics: dict[str, str]) -> AsyncIterator[Alerts]:
    a = await Alerts(settings, topics["dead"]).start()
    yield a
    await a.stop()


async def receiver(
    registry: Registry, name: str, respond=None, **policy: object
) -> RecordingReceiver:  # type: ignore[no-untyped-def]
    rcv = await RecordingReceiver(secret=SECRET, respond=respond).start()
    doc = {"url": rcv.url, "secret": SECRET, "timeout": 2, "backoff_initial": 0.2,
           "backoff_max": 1.0, "max_elapsed": 60, "max_retries": 50, **policy}  # fmt: skip
    registry.put("receiver", name, Receiver.model_validate(doc))
    return rcv


def alert(status: str, receivers: list[str], fp: str | None = None, **kw: object) -> AlertEvent:
    return AlertEvent(
        fingerprint=fp or uuid.uuid4().hex[:16], rule="cpu-high", status=status, severity="critical",
        resource_id="host:web-01", metric="cpu_usage_pct", value=95.0, threshold=90.0,
        labels={"alertname": "cpu-high", "resource": "host:web-01", "site": "pangyo"},
        annotations={"summary": "hot"}, starts_at_ms=1_700_000_000_000,
        event_time_ms=1_700_000_000_000, receivers=receivers, **kw,  # type: ignore[arg-type]
    )  # fmt: skip


async def wait_consuming(notifier: ServiceProcess, produce, registry: Registry) -> None:  # type: ignore[no-untyped-def]
    """Round-trip one notification through a throwaway receiver: the notifier is consuming."""
    probe = await receiver(registry, "probe")
    try:
        await produce(alert("firing", ["probe"]))
        assert await probe.wait_for(lambda rs: len(rs) >= 1, 30), notifier.log_tail()
    finally:
        await probe.stop()


async def test_500_for_a_while_then_delivered_once_with_the_same_key(
    registry: Registry, notifier: ServiceProcess, produce
) -> None:  # type: ignore[no-untyped-def]
    recover_at = 0.0

    def respond(rec: Received) -> int:
        return 500 if time.monotonic() < recover_at else 200

    flaky = await receiver(registry, "flaky", respond)
    try:
        await wait_consuming(notifier, produce, registry)
        recover_at = time.monotonic() + 3.0
        await produce(alert("firing", ["flaky"]))
        assert await flaky.wait_for(lambda rs: any(r.status == 200 for r in rs), 30)
        await asyncio.sleep(1.5)  # nothing more arrives
        assert len(flaky.accepted) == 1
        assert len(flaky.requests) >= 3 and all(r.status == 500 for r in flaky.requests[:-1])
        assert len({r.idempotency_key for r in flaky.requests}) == 1
        assert all(r.signature_ok for r in flaky.requests)
        assert flaky.accepted[0].at >= recover_at
        body = flaky.accepted[0].json
        assert body["version"] == "1" and body["status"] == "firing"
        assert body["alerts"][0]["rule"] == "cpu-high"
    finally:
        await flaky.stop()


async def test_dead_receiver_is_dead_lettered_and_does_not_delay_another(
    registry: Registry, notifier: ServiceProcess, produce, dead: Alerts
) -> None:  # type: ignore[no-untyped-def]
    async def hang(rec: Received) -> int:
        await asyncio.sleep(2.0)
        return 200

    slow = await receiver(registry, "slow", hang, timeout=0.3, max_retries=2, backoff_initial=0.1)
    rejecting = await receiver(registry, "rejecting", lambda rec: 403)
    fast = await receiver(registry, "fast")
    try:
        await wait_consuming(notifier, produce, registry)
        sent = time.monotonic()
        event = alert("firing", ["slow", "rejecting", "fast"])
        await produce(event)
        assert await fast.wait_for(lambda rs: len(rs) == 1, 10)
        assert fast.requests[0].at - sent < 1.5, "the fast receiver waited for the slow one"
        assert await dead.wait(lambda evs: len(evs) >= 2, 20)
        by_receiver = {e.receivers[0]: e for e in dead.events}
        assert set(by_receiver) == {"slow", "rejecting"}
        assert by_receiver["slow"].fingerprint == event.fingerprint
        assert "no answer" in by_receiver["slow"].reason
        assert "gave up after 3 attempt(s)" in by_receiver["slow"].reason
        assert "HTTP 403" in by_receiver["rejecting"].reason
        assert "gave up after 1 attempt(s)" in by_receiver["rejecting"].reason
        assert len(rejecting.requests) == 1
        assert fast.requests[0].at < time.monotonic() - 0.5  # served well before the slow gave up
    finally:
        for r in (slow, rejecting, fast):
            await r.stop()


async def test_dedup_resolved_silenced_and_grouping(
    registry: Registry, notifier: ServiceProcess, produce
) -> None:  # type: ignore[no-untyped-def]
    hook = await receiver(registry, "hook")
    try:
        await wait_consuming(notifier, produce, registry)
        a, b = alert("firing", ["hook"], "a" * 16), alert("firing", ["hook"], "b" * 16)
        quiet = alert("firing", ["hook"], "c" * 16, silenced=True)
        await produce(a, b, a, quiet)  # `a` twice, as an evaluator replay would send it
        assert await hook.wait_for(lambda rs: len(rs) >= 1, 10)
        await asyncio.sleep(0.8)
        assert len(hook.requests) == 1, "one group, one notification"
        assert sorted(x["fingerprint"] for x in hook.requests[0].json["alerts"]) == [
            "a" * 16,
            "b" * 16,
        ]

        await produce(a)  # duplicate after delivery
        await produce(alert("resolved", ["hook"], "a" * 16, ends_at_ms=1_700_000_600_000))
        await produce(alert("resolved", ["hook"], "c" * 16, ends_at_ms=1_700_000_600_000))
        assert await hook.wait_for(lambda rs: len(rs) >= 2, 10)
        await asyncio.sleep(0.8)
        assert len(hook.requests) == 2
        body = hook.requests[1].json
        assert body["status"] == "resolved" and [x["fingerprint"] for x in body["alerts"]] == [
            "a" * 16
        ]
        assert body["alerts"][0]["endsAt"].endswith("Z")
    finally:
        await hook.stop()


# --- Standard Webhooks, as a receiver in another language would check them ---------------------

WHSEC = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()


def stdlib_verify(secret: str, headers: Mapping[str, str], body: bytes, now: float) -> bool:
    """Standard Webhooks verification with nothing but the standard library (the README's)."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    msg_id, ts = headers["webhook-id"], headers["webhook-timestamp"]
    content = f"{msg_id}.{ts}.".encode() + body
    expected = base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode()
    fresh = abs(now - int(ts)) <= 300
    sigs = [s.partition(",")[2] for s in headers["webhook-signature"].split()]
    return fresh and any(hmac.compare_digest(expected, s) for s in sigs)


class StdlibReceiver:
    """http.server in a thread: answers 204 to a verified request, 401 otherwise."""

    def __init__(self, secret: str) -> None:
        self.received: list[tuple[dict[str, str], bytes, bool]] = []
        self.arrived = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                headers = {k.lower(): v for k, v in self.headers.items()}
                ok = stdlib_verify(secret, headers, body, time.time())
                outer.received.append((headers, body, ok))
                self.send_response(204 if ok else 401)
                self.end_headers()
                outer.arrived.set()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/std"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


async def test_a_stdlib_receiver_verifies_and_a_replay_ten_minutes_later_is_refused(
    registry: Registry, notifier: ServiceProcess, produce
) -> None:  # type: ignore[no-untyped-def]
    std = StdlibReceiver(WHSEC)
    try:
        registry.put("receiver", "std", Receiver(url=std.url, secret=WHSEC, timeout=2.0))
        await wait_consuming(notifier, produce, registry)
        await produce(alert("firing", ["std"]))
        assert await asyncio.to_thread(std.arrived.wait, 30), notifier.log_tail()
        headers, body, ok = std.received[0]
        assert ok, headers
        assert (
            headers["webhook-id"]
            == headers["idempotency-key"]
            == orjson.loads(body)["idempotencyKey"]
        )
        assert abs(int(headers["webhook-timestamp"]) - time.time()) < 60
        assert headers["x-kemi-signature"].startswith("sha256=")  # deprecated, still sent
        assert verify(WHSEC, headers, body)
        # the same request replayed with its original timestamp 10 minutes later
        later = time.time() + 600
        assert not verify(WHSEC, headers, body, now=later)
        assert not stdlib_verify(WHSEC, headers, body, later)
    finally:
        std.stop()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_dead_letters_and_logs_do_not_show_the_secret_url(
    registry: Registry, notifier: ServiceProcess, produce, dead: Alerts
) -> None:  # type: ignore[no-untyped-def]
    secret_part = "/services/T000/B000/XXXXSECRETPATH?token=TOPSECRETTOKEN"
    rejecting = await RecordingReceiver(respond=lambda rec: 403).start()
    urls = {
        "refused": f"http://hookuser:hookpass@127.0.0.1:{closed_port()}{secret_part}",
        "forbidden": f"http://hookuser:hookpass@127.0.0.1:{rejecting.port}{secret_part}",
    }
    try:
        for name, url in urls.items():
            doc = Receiver(url=url, secret=SECRET, timeout=1.0, max_retries=1,
                           backoff_initial=0.1, backoff_max=0.2)  # fmt: skip
            registry.put("receiver", name, doc)
        await wait_consuming(notifier, produce, registry)
        await produce(alert("firing", ["refused", "forbidden"]))
        assert await dead.wait(lambda evs: len(evs) >= 2, 30), notifier.log_tail()
        reasons = {e.receivers[0]: e.reason for e in dead.events}
        assert "cannot reach http://127.0.0.1:" in reasons["refused"]
        assert "answered HTTP 403" in reasons["forbidden"]
        await asyncio.sleep(0.5)  # the notifier logs after publishing
        log = notifier.log_tail(100_000)
        assert "dead-lettered" in log
        for text in [*reasons.values(), log]:
            for leak in ("hookuser", "hookpass", "XXXXSECRETPATH", "TOPSECRETTOKEN", "/services/"):
                assert leak not in text, (leak, text[-2000:])
            assert "/…" in text
    finally:
        await rejecting.stop()
