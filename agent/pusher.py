"""One push of JSON objects to the aggregator, and what its answer means for a retry."""

from __future__ import annotations

import email.utils
import gzip
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

__all__ = ["PushResult", "Pusher", "push_url", "retry_after_seconds"]

_RETRY_STATUSES = frozenset({429, 502, 503, 504})
_GZIP_ABOVE = 4096


def push_url(url: str) -> str:
    """``http://host:port`` -> ``http://host:port/api/v1/push``; a full push URL is kept."""
    base = url.rstrip("/")
    return base if base.endswith("/api/v1/push") else base + "/api/v1/push"


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """The wait a Retry-After header asks for (seconds or an HTTP date); None if absent/invalid."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (now if now is not None else time.time()))


@dataclass(frozen=True, slots=True)
class PushResult:
    """The outcome of one attempt: ``status`` 0 means no HTTP answer at all."""

    status: int
    retry_after: float | None = None
    message: str = ""

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def retryable(self) -> bool:
        return self.status == 0 or self.status in _RETRY_STATUSES or self.status >= 500


class Pusher:
    """Posts JSON to the aggregator with a token; gzips bodies above 4 KiB."""

    def __init__(self, url: str, token: str, timeout: float = 30.0) -> None:
        self.url = push_url(url)
        self.token = token
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Pusher:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def push(self, objects: list[dict[str, Any]]) -> PushResult:
        """One attempt; never raises for network trouble (status 0 instead)."""
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self.timeout)
        body = orjson.dumps(objects)
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}
        if len(body) > _GZIP_ABOVE:
            body = gzip.compress(body, compresslevel=5)
            headers["Content-Encoding"] = "gzip"
        try:
            async with self._session.post(self.url, data=body, headers=headers) as resp:
                text = "" if resp.status == 204 else (await resp.text())[:500]
                return PushResult(
                    resp.status, retry_after_seconds(resp.headers.get("Retry-After")), text
                )
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            return PushResult(0, None, f"{type(exc).__name__}: {exc}")
