"""Several aggregator processes on one port (KEMI_AGGREGATOR_PROCESSES=2), against the real
broker and etcd: connections spread over both, one /metrics view, one rate limit per token,
and a worker that dies is started again while the other keeps answering."""

from __future__ import annotations

import asyncio
import os
import signal
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import orjson
import pytest

from kemi_stats.registry.models import Token
from kemi_stats.stack.process import wait_until
from tests.integration.test_aggregator_push import SECRET, Aggregator, _hash, running_aggregator
from tests.servers import RunningServer

pytestmark = pytest.mark.integration

LIMITED = "limited-secret-0123456789"
RATE = 2000


@pytest.fixture(scope="module")
def aggregator(
    kafka: RunningServer, etcd: RunningServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Aggregator]:
    with running_aggregator(
        kafka, etcd, tmp_path_factory.mktemp("aggregator-processes"), aggregator_processes="2"
    ) as agg:
        agg.registry.create(
            "token", "limited", Token(hash=_hash(LIMITED), resource_prefix="", rate_limit=RATE)
        )
        assert wait_until(lambda: len(_workers(agg)) == 2, 30), agg.proc.log_tail()
        # a worker process exists before it listens and is ready (slower on a cold machine)
        assert wait_until(lambda: _ready_workers(agg) == {0, 1}, 60), agg.proc.log_tail()
        yield agg


def _workers(agg: Aggregator) -> list[int]:
    """The supervisor's worker processes."""
    assert agg.proc.proc is not None
    pid = agg.proc.proc.pid
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _ready_workers(agg: Aggregator) -> set[object]:
    """The workers that answered /healthz with ok over a few new connections."""
    ready = set()
    for _ in range(20):
        try:
            health = _health(agg)
        except OSError:  # refused, or 503 while a worker is not ready yet
            continue
        if health.get("status") == "ok":
            ready.add(health["worker"])
    return ready


def _health(agg: Aggregator) -> dict[str, object]:
    """/healthz over a new connection: the kernel picks the worker that answers."""
    with urllib.request.urlopen(agg.url + "/healthz", timeout=5) as resp:
        return dict(orjson.loads(resp.read()))


def _metric(agg: Aggregator, name: str) -> float:
    with urllib.request.urlopen(agg.url + "/metrics", timeout=5) as resp:
        text = resp.read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name))  # fmt: skip


async def _push(agg: Aggregator, body: bytes, secret: str = SECRET, tries: int = 1) -> int:
    """One request over a connection of its own; a refused connection is tried again."""
    for attempt in range(tries):
        try:
            status, _, _ = await agg.post("/write?precision=s", body, token=secret)
            return status
        except aiohttp.ClientConnectionError:
            if attempt == tries - 1:
                raise
            await asyncio.sleep(0.1)
    raise AssertionError("unreachable")


def test_both_workers_answer_and_metrics_add_up_over_them(aggregator: Aggregator) -> None:
    seen = set()
    for _ in range(60):
        health = _health(aggregator)
        seen.add(health["worker"])
        if seen == {0, 1}:
            break
    assert seen == {0, 1}
    assert health["status"] == "ok"  # every worker shows the one instance's id
    assert health["instance"] == _health(aggregator)["instance"]
    host = f"mp-{uuid.uuid4().hex[:6]}"
    now = int(time.time())
    before = _metric(aggregator, 'kemi_aggregator_samples_accepted_total{token="ops"}')

    async def scenario() -> list[int]:
        bodies = [f"cpu,host={host}-{i} used={i}.5,idle=2.5 {now}".encode() for i in range(40)]
        return await asyncio.gather(*(_push(aggregator, body) for body in bodies))

    assert asyncio.run(scenario()) == [204] * 40
    batches = asyncio.run(aggregator.records({f"{host}-{i}" for i in range(40)}, want=40))
    assert len(batches) == 40 and all(len(b.samples) == 2 for b in batches)
    after = _metric(aggregator, 'kemi_aggregator_samples_accepted_total{token="ops"}')
    assert after - before == 80  # counted by whichever worker took each request


def test_a_tokens_rate_limit_holds_over_all_workers(aggregator: Aggregator) -> None:
    """With a bucket per process the two workers would admit about twice the rate."""
    body = "\n".join(f"cpu,host=rl-{i} used=1 {int(time.time())}" for i in range(1000)).encode()

    async def scenario() -> tuple[int, float]:
        admitted = 0
        started = time.monotonic()
        while time.monotonic() - started < 3.0:
            statuses = await asyncio.gather(*(_push(aggregator, body, LIMITED) for _ in range(4)))
            assert set(statuses) <= {204, 429}, statuses
            admitted += statuses.count(204)
        return admitted, time.monotonic() - started

    admitted, elapsed = asyncio.run(scenario())
    # one second of burst, the refill over the run, and one request in debt per round
    allowed = (RATE + RATE * elapsed) / 1000 + 4
    assert RATE * elapsed / 1000 / 2 <= admitted <= allowed, (admitted, elapsed)


def test_a_killed_worker_is_started_again_and_the_other_keeps_answering(
    aggregator: Aggregator,
) -> None:
    first, second = _workers(aggregator)
    os.kill(first, signal.SIGKILL)
    now = int(time.time())

    async def scenario() -> list[int]:
        bodies = [f"cpu,host=kill-{i} used=1 {now}".encode() for i in range(20)]
        return [await _push(aggregator, body, tries=20) for body in bodies]

    assert asyncio.run(scenario()) == [204] * 20
    # the killed one is a zombie until the supervisor reaps it, then a new one starts
    assert wait_until(
        lambda: first not in _workers(aggregator) and len(_workers(aggregator)) == 2, 30
    ), aggregator.proc.log_tail()
    assert second in _workers(aggregator)
    assert f"(pid {first}) exited with status -9" in aggregator.proc.log_tail(20000)
