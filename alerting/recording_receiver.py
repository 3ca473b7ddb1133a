"""A webhook receiver that verifies signatures and records what it got (demo and tests).

``python -m alerting.recording_receiver --port 9900 --secret S3CRET`` prints one
line per notification; tests embed :class:`RecordingReceiver` and script its answers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from alerting.notifier.signature import HEADER, verify
from kemi_stats.stack.servers import free_port

__all__ = ["Received", "RecordingReceiver"]


@dataclass(slots=True)
class Received:
    """One request as the receiver saw it, and what it answered."""

    at: float
    path: str
    headers: dict[str, str]
    body: bytes
    signature_ok: bool
    status: int = 200

    @property
    def json(self) -> Any:
        return orjson.loads(self.body)

    @property
    def idempotency_key(self) -> str:
        return self.headers.get("Idempotency-Key", "")


Responder = Callable[[Received], Awaitable[int] | int]


@dataclass
class RecordingReceiver:
    """An aiohttp server on 127.0.0.1; ``respond`` decides each answer (default 200)."""

    secret: str = ""
    port: int = 0
    respond: Responder | None = None
    requests: list[Received] = field(default_factory=list)
    _runner: web.AppRunner | None = None
    _arrived: asyncio.Condition | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    @property
    def accepted(self) -> list[Received]:
        """Requests answered with 2xx."""
        return [r for r in self.requests if 200 <= r.status < 300]

    async def start(self) -> RecordingReceiver:
        self._arrived = asyncio.Condition()
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        if not self.port:
            self.port = free_port()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        rec = Received(
            at=time.monotonic(),
            path=request.path,
            headers=dict(request.headers),
            body=body,
            signature_ok=verify(self.secret, body, request.headers.get(HEADER, "")),
        )
        status = 200
        if self.respond is not None:
            answer = self.respond(rec)
            status = answer if isinstance(answer, int) else await answer
        rec.status = status
        self.requests.append(rec)
        assert self._arrived is not None
        async with self._arrived:
            self._arrived.notify_all()
        return web.json_response({"ok": 200 <= status < 300}, status=status)

    async def wait_for(self, check: Callable[[list[Received]], bool], within: float) -> bool:
        """Wait until ``check(requests)`` holds; False after ``within`` seconds."""
        assert self._arrived is not None
        try:
            async with asyncio.timeout(within), self._arrived:
                await self._arrived.wait_for(lambda: check(self.requests))
            return True
        except TimeoutError:
            return check(self.requests)


async def _serve(port: int, secret: str) -> None:
    def show(rec: Received) -> int:
        doc = rec.json
        alerts = ", ".join(f"{a['rule']}/{a['resource']}" for a in doc.get("alerts", []))
        sig = "ok" if rec.signature_ok else "BAD"
        print(
            f"{doc.get('status')} [{alerts}] signature {sig} key {rec.idempotency_key}", flush=True
        )
        return 200 if rec.signature_ok else 401

    receiver = await RecordingReceiver(secret=secret, port=port, respond=show).start()
    print(f"listening on {receiver.url}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await receiver.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=9900)
    parser.add_argument("--secret", default="")
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args.port, args.secret))


if __name__ == "__main__":
    main()
