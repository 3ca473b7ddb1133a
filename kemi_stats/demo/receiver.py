"""A webhook receiver that checks each notification's signature and prints it.

``python -m kemi_stats.demo.receiver --port 9190 --secret S`` prints one line per
alert; ``GET /received`` returns every payload it got (for tests and the live view).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import sys
import time
from typing import Any

import orjson
from aiohttp import web

__all__ = ["Receiver", "main", "verify_signature"]


def verify_signature(secret: str, body: bytes, header: str) -> bool:
    """Whether ``header`` (``sha256=<hex>`` or ``<hex>``) is the HMAC-SHA256 of ``body``."""
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    given = header.split("=", 1)[1] if header.startswith("sha256=") else header
    return hmac.compare_digest(expected, given.strip())


class Receiver:
    """Records every POST; answers 401 to a bad signature."""

    def __init__(self, secret: str, out: Any = sys.stdout) -> None:
        self.secret = secret
        self.received: list[dict[str, Any]] = []
        self.out = out
        self.app = web.Application()
        self.app.router.add_post("/{tail:.*}", self.handle)
        self.app.router.add_get("/received", self.list_received)
        self.app.router.add_get("/healthz", self.healthz)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        signature = request.headers.get("X-Kemi-Signature", "")
        ok = bool(self.secret) and verify_signature(self.secret, body, signature)
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            return web.json_response({"error": "body is not JSON"}, status=400)
        self.received.append({
            "received_at": time.time(),
            "signature_ok": ok,
            "idempotency_key": request.headers.get("Idempotency-Key", ""),
            "payload": payload,
        })  # fmt: skip
        for line in _describe(payload):
            print(f"{time.strftime('%H:%M:%S')} {line} (signature {'ok' if ok else 'BAD'})",
                  file=self.out, flush=True)  # fmt: skip
        if not ok:
            return web.json_response({"error": "bad signature"}, status=401)
        return web.Response(status=204)

    async def list_received(self, request: web.Request) -> web.Response:
        return web.Response(body=orjson.dumps(self.received), content_type="application/json")

    async def healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "received": len(self.received)})


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
    runner = web.AppRunner(Receiver(secret).app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    print(f"demo receiver listening on http://{host}:{port}/", flush=True)
    await asyncio.Event().wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=9190)
    ap.add_argument("--secret", required=True)
    args = ap.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args.host, args.port, args.secret))


if __name__ == "__main__":
    main()
