"""Making just-written samples searchable at once on single-node VictoriaMetrics.

VictoriaMetrics 1.79 (Debian's) makes rows searchable only when it flushes its buffers:
measured here, a new sample of an existing series shows up in queries 1.4-2 s after the
write, and the first sample of a new series after 3-10 s. ``GET /internal/force_flush``
makes them searchable at once (measured: <10 ms, then visible). After a write is
accepted the forwarder calls it, at most once per ``visibility_flush`` seconds (default
1 s, the cadence of VictoriaMetrics' own flush, so the extra cost is small). On anything
but a single node (vminsert has no such page: 404) or when the page wants an auth key,
the first refusal turns it off with one log line. ``KEMI_FORWARDER_VISIBILITY_FLUSH=0``
turns it off; it is never used for InfluxDB.
"""

from __future__ import annotations

import asyncio
import logging
import urllib.error
import urllib.request

__all__ = ["VisibilityFlusher"]

log = logging.getLogger(__name__)


class VisibilityFlusher:
    """Calls ``/internal/force_flush`` after writes, rate-limited; runs as a task."""

    def __init__(self, url: str, interval: float) -> None:
        self.url = url.rstrip("/") + "/internal/force_flush"
        self.interval = interval
        self.enabled = interval > 0
        self._wanted = asyncio.Event()
        self.flushes = 0

    def written(self) -> None:
        """Note that a write was accepted (called on the event loop)."""
        if self.enabled:
            self._wanted.set()

    def _flush(self) -> None:
        try:
            with urllib.request.urlopen(self.url, timeout=5) as resp:
                resp.read()
            self.flushes += 1
        except urllib.error.HTTPError as exc:
            self.enabled = False
            log.info("%s answered HTTP %s: visibility flush off", self.url, exc.code)
        except OSError as exc:
            log.debug("%s: %s", self.url, exc)

    async def run(self) -> None:
        """Flush after writes, at most once per interval, until cancelled or disabled."""
        while self.enabled:
            await self._wanted.wait()
            self._wanted.clear()
            await asyncio.to_thread(self._flush)
            await asyncio.sleep(self.interval)
