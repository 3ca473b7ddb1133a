"""One scrape of a Prometheus /metrics target -> its SampleBatch, or a PollError.

Every batch of a scrape target carries ``up`` (1 or 0), ``scrape_duration_seconds``
and ``scrape_samples`` (samples the page exposed); a failed scrape carries
``scrape_error{reason}=1`` and no values of the page, never part of one. The reasons:

    timeout        no complete answer within the target's deadline
    connection     the connection was refused or broke (the exporter is down)
    tls            the TLS handshake failed (wrong CA, wrong name)
    http_status    the endpoint answered, but not 200 (401 for a wrong token)
    too_large      the page is larger than the worker's body limit
    parse          the page is not Prometheus exposition text
    sample_limit   the page has more samples than the target's ``sample_limit``
    config         a credential file named by the target cannot be read

Bearer token and basic-auth password are read from their files at each scrape (a
rotated secret needs no registry change); a private CA comes from ``ca_file``.
"""

from __future__ import annotations

import ssl
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from kemi_stats.codec import encode_batch
from kemi_stats.model import Sample, SampleBatch, Source
from kemi_stats.registry.models import Target
from poller.errors import PollError
from poller.exposition import ExpositionError, PageReader

__all__ = ["SCRAPE_REASONS", "ScrapedBatch", "Scraper", "scrape_failure_batch"]

SCRAPE_REASONS = (
    "timeout", "connection", "tls", "http_status", "too_large", "parse", "sample_limit", "config",
)  # fmt: skip

_ACCEPT = (
    "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.4,*/*;q=0.1"
)


def _batch(
    name: str, target: Target, time_ms: int, revision: int, samples: list[Sample]
) -> SampleBatch:
    return SampleBatch(
        resource_id=target.resource(name),
        time_ms=time_ms,
        source=Source.SCRAPE,
        labels=target.batch_labels(name),
        config_revision=revision,
        samples=samples,
    )


def scrape_failure_batch(
    name: str, target: Target, reason: str, duration: float, time_ms: int, revision: int
) -> SampleBatch:
    """``up=0`` and the reason, for a scrape that failed."""
    return _batch(name, target, time_ms, revision, [
        Sample("up", 0),
        Sample("scrape_error", 1, {"reason": reason}),
        Sample("scrape_duration_seconds", round(duration, 6)),
        Sample("scrape_samples", 0),
    ])  # fmt: skip


@dataclass(slots=True)
class ScrapedBatch:
    """A successful scrape: its SampleBatch, encoded, and what the page held."""

    key: bytes
    value: bytes
    #: samples the page exposed, and those left out of the batch by reason
    exposed: int
    dropped: dict[str, int]


class Scraper:
    """Scrapes targets over one HTTP connection pool; pages are bounded in bytes.

    Each target has a :class:`PageReader`, so a page like the last one is read line by
    line, not parsed in full again.
    """

    def __init__(self, max_body_bytes: int = 64 * 1024 * 1024) -> None:
        self.max_body_bytes = max_body_bytes
        self._session: aiohttp.ClientSession | None = None
        self._ssl: dict[str, ssl.SSLContext] = {}
        self._readers: dict[str, tuple[Target, PageReader]] = {}

    def forget(self, name: str) -> None:
        """Drop what is kept about a removed target."""
        self._readers.pop(name, None)

    def _reader(self, name: str, target: Target) -> PageReader:
        kept = self._readers.get(name)
        if kept is None or kept[0] is not target:  # a changed target starts afresh
            kept = self._readers[name] = (target, PageReader())
        return kept[1]

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0, ttl_dns_cache=60),
                auto_decompress=True,
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    def _ssl_context(self, name: str, ca_file: str) -> ssl.SSLContext:
        context = self._ssl.get(ca_file)
        if context is None:
            try:
                context = ssl.create_default_context(cafile=ca_file)
            except (OSError, ssl.SSLError) as exc:
                raise PollError(name, "config", f"ca_file {ca_file}: {exc}") from None
            self._ssl[ca_file] = context
        return context

    def _headers(self, name: str, target: Target) -> dict[str, str]:
        headers = {"Accept": _ACCEPT}
        try:
            if target.bearer_token_file:
                token = Path(target.bearer_token_file).read_text().strip()
                headers["Authorization"] = f"Bearer {token}"
            elif target.basic_user and target.basic_password_file:
                password = Path(target.basic_password_file).read_text().strip()
                auth = aiohttp.BasicAuth(target.basic_user, password)
                headers["Authorization"] = auth.encode()
        except OSError as exc:
            raise PollError(name, "config", f"{exc.filename}: {exc.strerror}") from None
        return headers

    async def scrape(self, name: str, target: Target, time_ms: int, revision: int) -> ScrapedBatch:
        """The target's page as an encoded batch; PollError with a reason from
        SCRAPE_REASONS. The caller bounds the whole scrape by the target's deadline."""
        url = target.scrape_url
        assert url is not None
        started = time.monotonic()
        headers = self._headers(name, target)
        context = self._ssl_context(name, target.ca_file) if target.ca_file else None
        try:
            async with self._client().get(url, headers=headers, ssl=context or True) as resp:
                if resp.status != 200:
                    raise PollError(name, "http_status", f"{url} answered {resp.status}")
                if (resp.content_length or 0) > self.max_body_bytes:
                    raise PollError(name, "too_large", f"{url}: {resp.content_length} bytes")
                chunks: list[bytes] = []
                size = 0
                async for chunk in resp.content.iter_any():  # to the end, never part of it
                    size += len(chunk)
                    if size > self.max_body_bytes:
                        raise PollError(
                            name, "too_large", f"{url}: over {self.max_body_bytes} bytes"
                        )
                    chunks.append(chunk)
                body = b"".join(chunks)
                content_type = resp.headers.get("Content-Type", "text/plain")
        except aiohttp.ClientSSLError as exc:
            raise PollError(name, "tls", f"{url}: {exc}") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise PollError(name, "connection", f"{url}: {exc}") from None
        try:
            page = self._reader(name, target).read(
                body.decode("utf-8", "replace"), content_type, target.samples_allowed
            )
        except ExpositionError as exc:
            raise PollError(name, exc.reason, f"{url}: {exc}") from None
        head = _batch(name, target, time_ms, revision, [
            Sample("up", 1),
            Sample("scrape_duration_seconds", round(time.monotonic() - started, 6)),
            Sample("scrape_samples", page.exposed),
        ])  # fmt: skip
        # two encoded messages one after the other are one message with both's fields:
        # the page's samples join the head's
        value = encode_batch(head) + b"".join(page.parts)
        return ScrapedBatch(head.key, value, page.exposed, page.dropped)
