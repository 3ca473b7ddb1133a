"""The webhook receiver of the demo and the tests: checks signatures, records every request.

``python -m demo.receiver --port 9190 --secret-file F`` prints one line per alert, answers
401 to a bad signature (204 otherwise): Standard Webhooks' ``webhook-signature`` over
``webhook-id.webhook-timestamp.body``, with a timestamp within 5 minutes, as
:func:`kemi_stats.webhook.check` verifies it (the deprecated ``X-Kemi-Signature`` is
ignored) and serves ``GET /received`` (every payload it
got, for the live view) and ``GET /healthz``. Tests embed :class:`RecordingReceiver`
on a free port and script its answers with ``respond``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import orjson
from aiohttp import web
from multidict import CIMultiDict

from kemi_stats.private_file import read_secret
from kemi_stats.webhook import IDEMPOTENCY_HEADER, WebhookVerificationError, check

__all__ = ["Received", "RecordingReceiver", "Responder", "main", "printing"]


@dataclass(slots=True)
class Received:
    """One request as the receiver saw it, and what it answered."""

    at: float
    path: str
    headers: Mapping[str, str]
    body: bytes
    signature_ok: bool
    status: int = 200
    #: why the signature was refused ("" if it was not)
    signature_problem: str = ""
    received_at: float = field(default_factory=time.time)

    @property
    def json(self) -> Any:
        """The body parsed as JSON (raises if it is not)."""
        return orjson.loads(self.body)

    @property
    def is_json(self) -> bool:
        """Whether the body parses as JSON."""
        try:
            orjson.loads(self.body)
        except orjson.JSONDecodeError:
            return False
        return True

    @property
    def idempotency_key(self) -> str:
        return self.headers.get(IDEMPOTENCY_HEADER, "")

    def summary(self) -> dict[str, Any]:
        """How ``GET /received`` lists it."""
        return {
            "received_at": self.received_at,
            "signature_ok": self.signature_ok,
            "signature_problem": self.signature_problem,
            "idempotency_key": self.idempotency_key,
            "payload": self.json,
        }


Responder = Callable[[Received], Awaitable[int] | int]


@dataclass
class RecordingReceiver:
    """An aiohttp server; ``respond`` decides each answer (default 200); port 0 picks one."""

    secret: str = ""
    port: int = 0
    respond: Responder | None = None
    host: str = "127.0.0.1"
    requests: list[Received] = field(default_factory=list)
    _runner: web.AppRunner | None = None
    _arrived: asyncio.Condition | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/hook"

    @property
    def accepted(self) -> list[Received]:
        """Requests answered with 2xx."""
        return [r for r in self.requests if 200 <= r.status < 300]

    async def start(self) -> RecordingReceiver:
        """Listen; with port 0 the OS picks a free port, read back into ``port``."""
        self._arrived = asyncio.Condition()
        app = web.Application()
        app.router.add_get("/received", self._list_received)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_post("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()
        self.port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        problem = _signature_problem(self.secret, request.headers, body)
        rec = Received(
            at=time.monotonic(),
            path=request.path,
            headers=CIMultiDict(request.headers),
            body=body,
            signature_ok=not problem,
            signature_problem=problem,
        )
        rec.status = await self._status(rec)
        self.requests.append(rec)
        assert self._arrived is not None
        async with self._arrived:
            self._arrived.notify_all()
        return _reply(rec)

    async def _status(self, rec: Received) -> int:
        if self.respond is None:
            return 200
        answer = self.respond(rec)
        return answer if isinstance(answer, int) else await answer

    async def _list_received(self, request: web.Request) -> web.Response:
        # only JSON bodies: the demo refuses the others before looking at them
        doc = [r.summary() for r in self.requests if r.is_json]
        return web.Response(body=orjson.dumps(doc), content_type="application/json")

    async def _healthz(self, request: web.Request) -> web.Response:
        received = sum(1 for r in self.requests if r.is_json)
        return web.json_response({"status": "ok", "received": received})

    async def wait_for(self, check: Callable[[list[Received]], bool], within: float) -> bool:
        """Wait until ``check(requests)`` holds; False after ``within`` seconds."""
        assert self._arrived is not None
        try:
            async with asyncio.timeout(within), self._arrived:
                await self._arrived.wait_for(lambda: check(self.requests))
            return True
        except TimeoutError:
            return check(self.requests)


def _signature_problem(secret: str, headers: Mapping[str, str], body: bytes) -> str:
    """Why the request's signature is refused, "" if it is good (``GET /received`` lists
    it: a stale timestamp and a wrong secret call for different fixes)."""
    try:
        check(secret, headers, body)
    except WebhookVerificationError as exc:
        return str(exc)
    return ""


def _reply(rec: Received) -> web.Response:
    """No body for 204; a refusal names what was wrong with the request, if anything."""
    if rec.status == 204:
        return web.Response(status=204)
    ok = 200 <= rec.status < 300
    problem = "" if ok else _problem(rec)
    doc = {"error": problem} if problem else {"ok": ok}
    return web.json_response(doc, status=rec.status)


def _problem(rec: Received) -> str:
    if not rec.is_json:
        return "body is not JSON"
    return "" if rec.signature_ok else "bad signature"


def printing(out: TextIO) -> Responder:
    """The demo's answers: print each alert; 400 if not JSON, 401 if badly signed, else 204."""

    def answer(rec: Received) -> int:
        if not rec.is_json:
            return 400
        sig = "ok" if rec.signature_ok else "BAD"
        for line in _describe(rec.json):
            print(f"{time.strftime('%H:%M:%S')} {line} (signature {sig})", file=out, flush=True)
        return 204 if rec.signature_ok else 401

    return answer


def _describe(payload: Any) -> list[str]:
    alerts = payload.get("alerts") if isinstance(payload, dict) else None
    if not isinstance(alerts, list):
        alerts = [payload]
    lines = []
    for a in alerts:
        if not isinstance(a, dict):
            continue
        labels = a.get("labels") or {}
        resource = a.get("resource_id") or labels.get("resource", "")
        lines.append(
            f"ALERT {str(a.get('status', '?')).upper():<8} {a.get('severity', '')} {a.get('rule', '')} "
            f"{resource} value={a.get('value', '')}"
        )
    return lines or ["ALERT (empty payload)"]


async def _serve(host: str, port: int, secret: str) -> None:
    receiver = RecordingReceiver(secret=secret, port=port, host=host, respond=printing(sys.stdout))
    await receiver.start()
    print(f"demo receiver listening on http://{host}:{receiver.port}/", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await receiver.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=9190)
    source = ap.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--secret-file", type=Path, help="File holding the signing secret (kept out of argv)."
    )
    source.add_argument("--secret", help="The signing secret (visible in ps; prefer a file).")
    args = ap.parse_args()
    secret = read_secret(args.secret_file) if args.secret_file else args.secret
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args.host, args.port, secret))


if __name__ == "__main__":
    main()
