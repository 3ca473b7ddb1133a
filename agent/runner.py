"""The push agent's loop: collect every interval, send oldest first, retry what may be retried.

Collected payloads wait in a bounded backlog (``max_backlog`` intervals) while
the aggregator answers 429/503 or cannot be reached; the agent waits as long as
``Retry-After`` asks (else exponential backoff with jitter) and then sends the
same payload again. A 4xx other than 429 will not get better by retrying: that
payload is dropped and logged. When the backlog is full the oldest payload is
dropped and counted.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import random
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from agent.procfs import ProcReader
from agent.pusher import Pusher, PushResult

__all__ = ["Agent", "AgentStats", "default_resource_id"]

log = logging.getLogger(__name__)

Payload = list[dict[str, Any]]


def default_resource_id() -> str:
    return f"host:{socket.gethostname()}"


@dataclass
class AgentStats:
    """What the agent did so far."""

    collected: int = 0
    delivered: int = 0
    attempts: int = 0
    retries: int = 0
    dropped: int = 0
    statuses: collections.Counter[int] = field(default_factory=collections.Counter)
    last_error: str = ""


class Agent:
    """Collects with ``collect()`` every ``interval`` seconds and pushes through ``pusher``."""

    def __init__(
        self,
        pusher: Pusher,
        resource_id: str | None = None,
        interval: float = 10.0,
        labels: dict[str, str] | None = None,
        collect: Callable[[], list[dict[str, Any]]] | None = None,
        max_backlog: int = 360,
        max_wait: float = 300.0,
        on_result: Callable[[Payload, PushResult], None] | None = None,
    ) -> None:
        self.pusher = pusher
        self.resource_id = resource_id or default_resource_id()
        self.interval = interval
        self.labels = labels or {}
        self.collect = collect or ProcReader().collect
        self.max_backlog = max_backlog
        self.max_wait = max_wait
        self.on_result = on_result
        self.backlog: collections.deque[Payload] = collections.deque()
        self.stats = AgentStats()
        self._wake = asyncio.Event()
        self._emptied = asyncio.Event()

    def collect_payload(self, now: float | None = None) -> Payload:
        """One interval's push objects, stamped with the resource id, time and agent labels."""
        time_ms = int((now if now is not None else time.time()) * 1000)
        payload = []
        for obj in self.collect():
            labels = {**self.labels, **obj.get("labels", {})}
            item: dict[str, Any] = {
                "resource_id": self.resource_id,
                "time": time_ms,
                "metrics": obj["metrics"],
            }
            if labels:
                item["labels"] = labels
            payload.append(item)
        return payload

    def enqueue(self, payload: Payload) -> None:
        if not payload:
            return
        self.stats.collected += 1
        self.backlog.append(payload)
        while len(self.backlog) > self.max_backlog:
            self.backlog.popleft()
            self.stats.dropped += 1
            log.warning("agent: backlog full (%d intervals): dropped the oldest", self.max_backlog)
        self._wake.set()

    async def push_once(self) -> PushResult:
        """Collect now and push once (no retry): for ``kemi-stats agent --once``."""
        payload = self.collect_payload()
        result = await self.pusher.push(payload)
        self._record(payload, result)
        return result

    def _record(self, payload: Payload, result: PushResult) -> None:
        self.stats.attempts += 1
        self.stats.statuses[result.status] += 1
        if not result.ok:
            self.stats.last_error = f"{result.status} {result.message}".strip()
        if self.on_result is not None:
            self.on_result(payload, result)

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Collect and send until ``stop`` is set (or the task is cancelled)."""
        stop = stop or asyncio.Event()
        sender = asyncio.create_task(self._send_loop(stop))
        try:
            # the first CPU reading only sets the baseline: take it now
            self.collect()
            next_at = time.monotonic()
            while not stop.is_set():
                next_at += self.interval
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), max(0.0, next_at - time.monotonic()))
                if stop.is_set():
                    break
                self.enqueue(self.collect_payload())
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender

    async def drain(self, within: float) -> bool:
        """Send what is in the backlog (with retries) for up to ``within`` s; True if empty."""
        stop = asyncio.Event()
        task = asyncio.create_task(self._send_loop(stop))
        try:
            if self.backlog:
                self._emptied.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(within):
                        await self._emptied.wait()
        finally:
            stop.set()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        return not self.backlog

    async def _send_loop(self, stop: asyncio.Event) -> None:
        failures = 0
        while not stop.is_set():
            if not self.backlog:
                self._wake.clear()
                await self._wake.wait()
                continue
            payload = self.backlog[0]
            result = await self.pusher.push(payload)
            self._record(payload, result)
            if result.ok:
                failures = 0
                self.stats.delivered += 1
                self._pop(payload)
                continue
            if not result.retryable:
                log.error("agent: push refused, dropping it: %s %s", result.status, result.message)
                self.stats.dropped += 1
                self._pop(payload)
                continue
            failures += 1
            self.stats.retries += 1
            wait = result.retry_after
            if wait is None:
                wait = min(self.max_wait, 2 ** min(failures, 8)) * random.uniform(0.5, 1.0)
            wait = min(wait, self.max_wait)
            log.warning(
                "agent: push answered %s; retrying in %.1f s", result.status or result.message, wait
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), wait)

    def _pop(self, payload: Payload) -> None:
        if self.backlog and self.backlog[0] is payload:
            self.backlog.popleft()
        if not self.backlog:
            self._emptied.set()
