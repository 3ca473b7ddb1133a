"""The shared ServiceRuntime, with aiohttp's automatic request decompression turned off.

aiohttp would gunzip request bodies itself, but it accepts a truncated gzip
stream as a shorter body; the aggregator must refuse those (a cut line can still
parse, e.g. ``v=12`` cut to ``v=1``), so it reads the raw bytes and gunzips them
in :mod:`aggregator.body`, where the end of the stream is checked.
"""

from __future__ import annotations

import logging

from aiohttp import web

from kemi_stats.errors import KemiError
from kemi_stats.service import ServiceRuntime

__all__ = ["AggregatorRuntime"]

log = logging.getLogger(__name__)


class AggregatorRuntime(ServiceRuntime):
    """ServiceRuntime (/healthz, /metrics, signals) serving raw request bodies."""

    async def start_http(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=None, auto_decompress=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.settings.http_host, self.port, reuse_address=True)
        try:
            await site.start()
        except OSError as exc:
            raise KemiError(
                f"{self.name}: cannot listen on {self.settings.http_host}:{self.port}: {exc.strerror}"
            ) from exc
        log.info("%s: http on %s:%s", self.name, self.settings.http_host, self.port)
