"""The send stage: one POST to one receiver, and whether a failure is worth retrying.

Errors name the receiver and its URL redacted to scheme, host and port: they end up in
logs and in dead letters' ``reason``, and a webhook URL's path or userinfo is often its
credential (aiohttp quotes the full URL in some of its errors: those are redacted too)."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping

import aiohttp

from kemi_stats.errors import KemiError
from kemi_stats.redact import redact_url, redact_urls

__all__ = ["DeliveryError", "WebhookSender"]


class DeliveryError(KemiError):
    """A POST that did not succeed; ``retryable`` for timeouts, connection errors, 5xx and 429."""

    def __init__(
        self, message: str, *, retryable: bool, status: int = 0, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.status = status
        self.retry_after = retry_after


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff


class WebhookSender:
    """POSTs bodies with one shared HTTP client session."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self.session = session
        self._contexts: dict[str, ssl.SSLContext] = {}

    def _ssl(self, name: str, ca_file: str) -> ssl.SSLContext | bool:
        if not ca_file:
            return True
        context = self._contexts.get(ca_file)
        if context is None:
            try:
                context = ssl.create_default_context(cafile=ca_file)
            except (OSError, ssl.SSLError) as exc:
                raise DeliveryError(
                    f"receiver {name}: cannot read CA file {ca_file}: {exc}", retryable=False
                ) from None
            self._contexts[ca_file] = context
        return context

    async def send(
        self,
        name: str,
        url: str,
        body: bytes,
        headers: Mapping[str, str],
        limit_s: float,
        ca_file: str = "",
    ) -> int:
        """POST once; return the 2xx status or raise :class:`DeliveryError`."""
        context = self._ssl(name, ca_file)
        where = redact_url(url)
        try:
            async with self.session.post(
                url,
                data=body,
                headers=dict(headers),
                timeout=aiohttp.ClientTimeout(total=limit_s),
                allow_redirects=False,
                ssl=context,
            ) as resp:
                await resp.content.read(64 * 1024)
                status = resp.status
                retry_after = _retry_after(resp.headers.get("Retry-After"))
        except TimeoutError:
            raise DeliveryError(
                f"receiver {name}: no answer from {where} within {limit_s:g} s", retryable=True
            ) from None
        except aiohttp.ClientError as exc:
            why = redact_urls((str(exc) or type(exc).__name__).replace(url, where))
            raise DeliveryError(
                f"receiver {name}: cannot reach {where}: {why}", retryable=True
            ) from None
        except asyncio.CancelledError:
            raise
        if 200 <= status < 300:
            return status
        retryable = status >= 500 or status == 429
        raise DeliveryError(
            f"receiver {name}: {where} answered HTTP {status}"
            + ("" if retryable else " (not retried: a 4xx other than 429 is final)"),
            retryable=retryable,
            status=status,
            retry_after=retry_after,
        )
