"""Kafka goes away while an agent keeps pushing: 503 + Retry-After, and nothing 204'd is lost.

How Kafka "goes away" here, and why:

- The local broker (Tansu) keeps data in memory only, so restarting it would
  lose the very records the test must find afterwards. Stopping it with SIGSTOP
  and resuming it with SIGCONT keeps the same process and data: to the
  aggregator it is a broker that stops answering (a hung or partitioned
  broker), which is the harder case for a producer: connections stay open and
  requests simply get no answer. The aggregator's probe times out, new pushes
  get 503 without anything being sent, and pushes already handed to Kafka wait
  for their acks and get 204 once the broker answers again.
- A broker that refuses connections (really not there) is covered by starting
  the aggregator before the broker exists, then starting the broker.

Both use a broker of their own, never the session's shared one.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from agent import Agent, Pusher, PushResult
from kemi_stats.registry.models import Token
from kemi_stats.registry.store import Registry
from kemi_stats.stack.servers import broker_command, free_port
from kemi_stats.topics import TopicSpec, ensure_topics
from tests.servers import RunningServer, ServiceProcess, service_env, start_broker
from tests.topic_reader import read_batches

pytestmark = pytest.mark.integration

SECRET = "outage-" + uuid.uuid4().hex


def _registry(etcd: RunningServer) -> tuple[Registry, str]:
    prefix = f"/kemi-agg-out-{uuid.uuid4().hex[:8]}/"
    registry = Registry(etcd.address, prefix)
    registry.create(
        "token",
        "agent",
        Token(hash=hashlib.sha256(SECRET.encode()).hexdigest(), resource_prefix="host:"),
    )
    return registry, prefix


def _aggregator(
    kafka: str, etcd: str, prefix: str, topic: str, log: Path, delivery_timeout: str = "20"
) -> ServiceProcess:
    env = service_env(
        kafka_bootstrap=kafka,
        etcd_endpoint=etcd,
        etcd_prefix=prefix,
        aggregator_topic=topic,
        aggregator_probe_interval="0.3",
        aggregator_probe_timeout="1",
        aggregator_stall_after="2",
        aggregator_delivery_timeout=delivery_timeout,
        aggregator_retry_after_unavailable="1",
    )
    return ServiceProcess("aggregator", env, log).start()


async def test_hung_broker_503_then_every_204_sample_once(
    etcd: RunningServer, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    broker = start_broker(tmp_path)
    request.addfinalizer(broker.stop)  # also when the test fails before its own stop
    registry, prefix = _registry(etcd)
    topic = "test.agg.outage"
    ensure_topics(broker.address, (TopicSpec(topic, 3),))
    # a short delivery timeout so that the agent's push caught in flight is answered (503,
    # outcome unknown) while the broker is still stopped, and the agent's retries meet the
    # fast "nothing was written" 503 of an unavailable Kafka
    agg = _aggregator(
        broker.address,
        etcd.address,
        prefix,
        topic,
        tmp_path / "aggregator.log",
        delivery_timeout="3",
    )
    assert broker.proc is not None
    pid = broker.proc.pid
    results: list[
        tuple[int, int, float | None, str]
    ] = []  # (payload time, status, retry-after, body)
    seq = iter(range(1_000_000))

    def collect() -> list[dict[str, Any]]:
        return [{"metrics": {"seq": next(seq), "cpu_usage_pct": 1.5}},
                {"labels": {"device": "sda"}, "metrics": {"disk_reads": {"value": 7, "kind": "counter"}}}]  # fmt: skip

    def on_result(payload: list[dict[str, Any]], result: PushResult) -> None:
        results.append((payload[0]["time"], result.status, result.retry_after, result.message))

    stopped = False
    try:
        async with Pusher(agg.url, SECRET, timeout=60) as pusher:
            agent = Agent(pusher, "host:outage-01", 0.2, collect=collect, on_result=on_result)
            stop = asyncio.Event()
            task = asyncio.create_task(agent.run(stop))
            async with asyncio.timeout(30):
                while sum(r[1] == 204 for r in results) < 5:
                    await asyncio.sleep(0.1)
            os.kill(pid, signal.SIGSTOP)
            stopped = True
            async with asyncio.timeout(12):  # well inside the producer's 15 s request timeout
                while not any("nothing was written" in r[3] for r in results):
                    await asyncio.sleep(0.1)
            await asyncio.sleep(1.0)  # the agent keeps collecting and retrying meanwhile
            os.kill(pid, signal.SIGCONT)
            stopped = False
            resumed = len(results)
            async with asyncio.timeout(40):
                while sum(r[1] == 204 for r in results[resumed:]) < 5 or agent.backlog:
                    await asyncio.sleep(0.1)
            stop.set()
            await task
            assert await agent.drain(20)
    finally:
        if stopped:
            os.kill(pid, signal.SIGCONT)
        log_tail = agg.log_tail()
        agg.stop()
        registry.close()
    try:
        statuses = Counter(r[1] for r in results)
        assert set(statuses) <= {204, 503}, statuses
        unavailable = [r for r in results if r[1] == 503]
        assert unavailable and all(r[2] is not None and r[2] >= 1 for r in unavailable)
        accepted = {r[0] for r in results if r[1] == 204}
        batches = await read_batches(broker.address, topic, len(accepted))
    finally:
        broker.stop()
    # an "outcome unknown" 503 (records handed to Kafka, acks not in time) is the one answer
    # after which a sample may exist once more than the requests that got a 204
    unknown = Counter(r[0] for r in results if r[1] == 503 and "outcome unknown" in r[3])
    written = Counter(b.time_ms for b in batches)
    series = Counter(
        (b.time_ms, s.metric, tuple(sorted(s.labels.items()))) for b in batches for s in b.samples
    )
    assert set(written) >= accepted, "a 204'd push is missing from the topic"
    assert set(written) == accepted, "every push was accepted in the end (the backlog emptied)"
    for t, n in written.items():
        assert n <= 1 + unknown[t], (
            f"push at {t} written {n} times; its answers: {[r[:3] for r in results if r[0] == t]}"
            f"\n{log_tail}"
        )
    # within one written record, every series appears once
    assert all(n <= written[key[0]] for key, n in series.items())
    # nothing of a request answered "nothing was written" was written by that request
    clean = {t for t in accepted if not unknown[t]}
    assert all(written[t] == 1 for t in clean)


async def test_aggregator_started_before_the_broker(etcd: RunningServer, tmp_path: Path) -> None:
    port = free_port()
    registry, prefix = _registry(etcd)
    topic = "test.agg.late"
    agg = _aggregator(f"127.0.0.1:{port}", etcd.address, prefix, topic, tmp_path / "aggregator.log")
    broker: RunningServer | None = None
    body = orjson.dumps({"resource_id": "host:late-01", "metrics": {"up": 1}})
    headers = {"Authorization": f"Bearer {SECRET}", "Content-Type": "application/json"}
    try:
        async with aiohttp.ClientSession() as session:
            async with session.post(agg.url + "/api/v1/push", data=body, headers=headers) as resp:
                assert resp.status == 503
                assert int(resp.headers["Retry-After"]) >= 1
                assert "nothing was written" in (await resp.json())["message"]
            async with session.get(agg.url + "/healthz") as resp:
                health = await resp.json()
                assert "503" in health["checks"]["kafka"]["detail"]
            broker = RunningServer(broker_command(port), tmp_path / "broker.log").start()
            deadline = time.monotonic() + 30
            while True:
                async with session.post(
                    agg.url + "/api/v1/push", data=body, headers=headers
                ) as resp:
                    if resp.status == 204:
                        break
                    assert resp.status == 503, await resp.text()
                assert time.monotonic() < deadline, agg.log_tail()
                await asyncio.sleep(0.2)
        batches = await read_batches(broker.address, topic, 1)
        assert [b.resource_id for b in batches] == ["host:late-01"]
    finally:
        agg.stop()
        registry.close()
        if broker is not None:
            broker.stop()
