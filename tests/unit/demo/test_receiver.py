"""The demo's and the tests' webhook receiver: recording, scripted answers, the demo's mode."""

from __future__ import annotations

import io

import aiohttp
import orjson

from demo.receiver import RecordingReceiver, printing
from kemi_stats.model import AlertEvent
from kemi_stats.webhook import encode, webhook_alert, webhook_payload

SECRET = "S3CRET"


def signed(secret: str = SECRET) -> tuple[bytes, dict[str, str]]:
    event = AlertEvent(fingerprint="f1", rule="cpu-high", status="firing", severity="critical",
                       resource_id="host:a", labels={"resource": "host:a"}, value=93.0)  # fmt: skip
    doc = webhook_payload("hook", "cpu-high{}", {}, [webhook_alert(event)], "key-1")
    return encode(doc, secret, "test/1")


async def test_records_verifies_and_answers_as_scripted() -> None:
    rcv = await RecordingReceiver(secret=SECRET).start()
    try:
        assert rcv.port and rcv.url.endswith(f":{rcv.port}/hook")
        async with aiohttp.ClientSession() as session:
            body, headers = signed()
            async with session.post(rcv.url, data=body, headers=headers) as r:
                assert r.status == 200
            rcv.respond = lambda rec: 503
            body, headers = signed("other")
            async with session.post(rcv.url, data=body, headers=headers) as r:
                assert r.status == 503
        assert await rcv.wait_for(lambda rs: len(rs) == 2, 1)
        first, second = rcv.requests
        assert first.signature_ok and not second.signature_ok
        assert first.idempotency_key == "key-1" and first.json["alerts"][0]["rule"] == "cpu-high"
        assert rcv.accepted == [first]
        assert not await rcv.wait_for(lambda rs: len(rs) == 3, 0.05)
    finally:
        await rcv.stop()


async def test_demo_mode_prints_refuses_bad_signatures_and_lists_received() -> None:
    out = io.StringIO()
    rcv = await RecordingReceiver(secret=SECRET, respond=printing(out)).start()
    base = f"http://127.0.0.1:{rcv.port}"
    try:
        async with aiohttp.ClientSession() as session:
            body, headers = signed()
            async with session.post(base + "/alerts", data=body, headers=headers) as r:
                assert r.status == 204
            body, headers = signed("other")
            async with session.post(base + "/alerts", data=body, headers=headers) as r:
                assert r.status == 401 and (await r.json()) == {"error": "bad signature"}
            async with session.post(base + "/alerts", data=b"not json") as r:
                assert r.status == 400
            async with session.get(base + "/received") as r:
                received = orjson.loads(await r.read())
            async with session.get(base + "/healthz") as r:
                assert (await r.json()) == {"status": "ok", "received": 2}
    finally:
        await rcv.stop()
    assert [(x["signature_ok"], x["idempotency_key"]) for x in received] == [
        (True, "key-1"), (False, "key-1"),
    ]  # fmt: skip
    assert received[0]["payload"]["alerts"][0]["resource"] == "host:a"
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert "ALERT FIRING   critical cpu-high host:a value=93.0 (signature ok)" in lines[0]
    assert lines[1].endswith("(signature BAD)")


async def test_no_secret_means_no_signature_is_ok() -> None:
    rcv = await RecordingReceiver().start()
    try:
        body, headers = signed("")
        async with (
            aiohttp.ClientSession() as session,
            session.post(rcv.url, data=body, headers=headers) as r,
        ):
            assert r.status == 200
        assert not rcv.requests[0].signature_ok
    finally:
        await rcv.stop()
