"""The poll path as real processes for integration tests: a scheduler and workers on
their own topics, consumer group and registry prefix, and a reader of what they publish."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from kemi_stats.codec import decode_batch
from kemi_stats.kafka import make_consumer
from kemi_stats.model import SampleBatch
from kemi_stats.registry.builtin import load_builtin_profiles
from kemi_stats.registry.store import Registry
from kemi_stats.settings import Settings
from kemi_stats.topics import TopicSpec, ensure_topics
from tests.servers import RunningServer, ServiceProcess, service_env

__all__ = ["Pipeline", "pipeline", "reason_of", "up_of"]


@dataclass
class Pipeline:
    """Topics, env and the processes of one test."""

    settings: Settings
    registry: Registry
    tmp: Path
    jobs_topic: str
    raw_topic: str
    env: dict[str, str]
    procs: list[ServiceProcess] = field(default_factory=list)
    batches: list[tuple[float, SampleBatch]] = field(default_factory=list)

    def start(self, module: str, name: str) -> ServiceProcess:
        proc = ServiceProcess(module, self.env, self.tmp / f"{name}.log").start()
        self.procs.append(proc)
        return proc

    def of(self, target: str, since: float = 0.0) -> list[SampleBatch]:
        return [b for t, b in self.batches if b.resource_id == target and t >= since]

    async def wait_for(self, check: object, within: float, what: str) -> None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if check():  # type: ignore[operator]
                return
            await asyncio.sleep(0.2)
        logs = "\n".join(f"--- {p.module}\n{p.log_tail(1500)}" for p in self.procs)
        raise AssertionError(f"timed out after {within:.0f} s waiting for {what}\n{logs}")


def up_of(batch: SampleBatch) -> int | float:
    return next(s.value for s in batch.samples if s.metric == "snmp_up")


def reason_of(batch: SampleBatch) -> str:
    return next((s.labels["reason"] for s in batch.samples if s.metric == "snmp_poll_error"), "")


@pytest.fixture
async def pipeline(
    settings: Settings, registry: Registry, kafka: RunningServer, tmp_path: Path
) -> AsyncIterator[Pipeline]:
    suffix = uuid.uuid4().hex[:8]
    jobs, raw = f"test.jobs.{suffix}", f"test.raw.{suffix}"
    ensure_topics(kafka.address, (TopicSpec(jobs, 6), TopicSpec(raw, 3)))
    env = service_env(
        kafka_bootstrap=settings.kafka_bootstrap,
        etcd_endpoint=settings.etcd_endpoint,
        etcd_prefix=settings.etcd_prefix,
        kafka_session_timeout_ms="6000",
        poller_jobs_topic=jobs,
        poller_raw_topic=raw,
        poller_group_id=f"pollers-{suffix}",
        poller_lease_ttl="3",
        log_level="INFO",
    )
    p = Pipeline(settings, registry, tmp_path, jobs, raw, env)
    for name, profile in load_builtin_profiles().items():
        registry.put("profile", name, profile)
    consumer = make_consumer(settings, raw, group_id=f"reader-{suffix}")
    await consumer.start()

    async def read() -> None:
        while True:
            records = await consumer.getmany(timeout_ms=200)
            for recs in records.values():
                p.batches.extend((time.monotonic(), decode_batch(r.value)) for r in recs)

    reader = asyncio.create_task(read())
    try:
        yield p
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        await consumer.stop()
        for proc in p.procs:
            proc.stop()
