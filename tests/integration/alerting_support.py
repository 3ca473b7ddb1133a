"""What the alerting integration tests share: topics of their own, the alerting services'
environment and processes, a producer of samples, a collector of transitions."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import aiohttp

from kemi_stats.codec import decode_alert, encode_batch
from kemi_stats.kafka import make_consumer, make_producer
from kemi_stats.model import AlertEvent, Sample, SampleBatch, Source
from kemi_stats.settings import Settings
from tests.alerting_rules import cpu_rule
from tests.servers import ServiceProcess, service_env


def service_env_for(settings: Settings, **alerting: str) -> dict[str, str]:
    """The environment of an alerting service pointed at the test's servers and topics."""
    env = service_env(
        kafka_bootstrap=settings.kafka_bootstrap,
        etcd_endpoint=settings.etcd_endpoint,
        etcd_prefix=settings.etcd_prefix,
        data_dir=str(settings.data_dir),
        kafka_session_timeout_ms="3000",
    )
    env.update({f"KEMI_ALERTING_{k.upper()}": v for k, v in alerting.items()})
    return env


def running(module: str, env: dict[str, str], log: Path) -> Iterator[ServiceProcess]:
    """A service process for the length of a fixture."""
    proc = ServiceProcess(module, env, log).start()
    yield proc
    proc.stop()


CPU_RULE = cpu_rule("2m", "1m")


class Alerts:
    """Collects every transition on the alerts topic in the background."""

    def __init__(self, settings: Settings, topic: str) -> None:
        self.events: list[AlertEvent] = []
        self._consumer = make_consumer(settings, topic, group_id=f"t-{uuid.uuid4().hex[:8]}")
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> Alerts:
        await self._consumer.start()
        self._task = asyncio.create_task(self._run())
        return self

    async def _run(self) -> None:
        while True:
            records = await self._consumer.getmany(timeout_ms=100)
            for recs in records.values():
                self.events.extend(decode_alert(r.value) for r in recs)

    async def stop(self) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        await self._consumer.stop()

    def statuses(self, resource: str | None = None) -> list[str]:
        return [e.status for e in self.events if resource is None or e.resource_id == resource]

    async def wait(self, pred, within: float = 20.0) -> bool:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if pred(self.events):
                return True
            await asyncio.sleep(0.05)
        return bool(pred(self.events))


class Samples:
    def __init__(self, settings: Settings, topic: str) -> None:
        self.producer = make_producer(settings)
        self.topic = topic

    async def send(self, resource: str, t_ms: int, **metrics: float) -> None:
        batch = SampleBatch(
            resource,
            t_ms,
            Source.PUSH,
            [Sample(k, v) for k, v in metrics.items()],
            {"site": "pangyo"},
        )
        await self.producer.send_and_wait(self.topic, encode_batch(batch), key=batch.key)


async def wait_ready(
    evaluator: ServiceProcess, rules: int | None = None, revision: int | None = None
) -> None:
    """The consumer has its partitions and, if given, that many rules are loaded and the
    registry's changes up to ``revision`` are in force.

    A sample that arrives before its rule (or silence) is loaded matches nothing, by design.
    """
    want = ["partitions [0, 1, 2]"] + ([] if rules is None else [f'"{rules} rules'])
    deadline = time.monotonic() + 30
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            try:
                async with session.get(evaluator.url + "/healthz") as r:
                    text = await r.text()
                    applied = re.search(r"at revision (\d+)", text)
                    if all(w in text for w in want) and (
                        revision is None or (applied is not None and int(applied[1]) >= revision)
                    ):
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError(
        f"evaluator never got its partitions, rules or revision {revision}:\n"
        + evaluator.log_tail()
    )


MIN = 60_000
