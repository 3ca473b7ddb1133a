"""The alert evaluator as a real process against the real broker and etcd.

Samples are produced straight to a topic of the test's own; transitions are read
back from another. Event time drives `for`/`clear_for`, so most of these tests do
not wait for wall-clock durations.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import orjson
import pytest
from click.testing import CliRunner

from kemi_stats.cli.main import cli
from kemi_stats.codec import decode_alert, encode_batch
from kemi_stats.kafka import make_consumer, make_producer
from kemi_stats.model import AlertEvent, Sample, SampleBatch, Source
from kemi_stats.registry.models import Rule
from kemi_stats.registry.store import Registry
from kemi_stats.settings import Settings
from kemi_stats.topics import TopicSpec, ensure_topics
from tests.servers import ServiceProcess, service_env

pytestmark = pytest.mark.integration

CPU_RULE = {
    "metric": "cpu_usage_pct",
    "match": ["site=pangyo"],
    "condition": {"op": ">", "threshold": 90},
    "for": "2m",
    "clear": {"op": "<", "threshold": 80},
    "clear_for": "1m",
    "severity": "critical",
    "receivers": ["ops-hook"],
}


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


@pytest.fixture
def topics(kafka) -> dict[str, str]:  # type: ignore[no-untyped-def]
    tag = uuid.uuid4().hex[:8]
    names = {"metrics": f"t.metrics.{tag}", "alerts": f"t.alerts.{tag}", "dead": f"t.dead.{tag}"}
    ensure_topics(kafka.address, tuple(TopicSpec(n, 3) for n in names.values()))
    return names


@pytest.fixture
def evaluator_env(settings: Settings, topics: dict[str, str]) -> dict[str, str]:
    env = service_env(
        kafka_bootstrap=settings.kafka_bootstrap,
        etcd_endpoint=settings.etcd_endpoint,
        etcd_prefix=settings.etcd_prefix,
        data_dir=str(settings.data_dir),
        kafka_session_timeout_ms="3000",
    )
    env.update(
        KEMI_ALERTING_METRICS_TOPIC=topics["metrics"],
        KEMI_ALERTING_ALERTS_TOPIC=topics["alerts"],
        KEMI_ALERTING_DEAD_TOPIC=topics["dead"],
        KEMI_ALERTING_EVALUATOR_GROUP=f"eval-{uuid.uuid4().hex[:8]}",
        KEMI_ALERTING_EVALUATION_TICK="0.2",
        KEMI_ALERTING_CHECKPOINT_INTERVAL="0.2",
    )
    return env


@pytest.fixture
def evaluator(evaluator_env: dict[str, str], tmp_path: Path) -> Iterator[ServiceProcess]:
    proc = ServiceProcess("alerting.evaluator", evaluator_env, tmp_path / "evaluator.log").start()
    yield proc
    proc.stop()


@pytest.fixture
async def alerts(settings: Settings, topics: dict[str, str]) -> AsyncIterator[Alerts]:
    a = await Alerts(settings, topics["alerts"]).start()
    yield a
    await a.stop()


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


@pytest.fixture
async def samples(settings: Settings, topics: dict[str, str]) -> AsyncIterator[Samples]:
    s = Samples(settings, topics["metrics"])
    await s.producer.start()
    yield s
    await s.producer.stop()


async def wait_ready(evaluator: ServiceProcess, rules: int | None = None) -> None:
    """The consumer has its partitions and, if given, that many rules are loaded.

    A sample that arrives before its rule is loaded matches nothing, by design.
    """
    want = ["partitions [0, 1, 2]"] + ([] if rules is None else [f'"{rules} rules'])
    deadline = time.monotonic() + 30
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            try:
                async with session.get(evaluator.url + "/healthz") as r:
                    text = await r.text()
                    if all(w in text for w in want):
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError("evaluator never got its partitions:\n" + evaluator.log_tail())


MIN = 60_000


async def test_fires_after_for_resolves_after_clear_for_with_hysteresis(
    registry: Registry, evaluator: ServiceProcess, samples: Samples, alerts: Alerts,
    evaluator_env: dict[str, str],
) -> None:  # fmt: skip
    registry.create("rule", "cpu-high", Rule.model_validate(CPU_RULE))
    await wait_ready(evaluator, rules=1)
    t0 = int(time.time() * 1000) - 10 * MIN
    r = f"host:web-{uuid.uuid4().hex[:6]}"
    for i, v in enumerate([95, 96, 97]):  # 0, 1m, 2m: fires at 2m
        await samples.send(r, t0 + i * MIN, cpu_usage_pct=v)
    assert await alerts.wait(lambda ev: "firing" in [e.status for e in ev])
    assert alerts.statuses(r) == ["pending", "firing"]
    fired = alerts.events[-1]
    assert fired.starts_at_ms == t0 + 2 * MIN and fired.receivers == ["ops-hook"]
    assert fired.labels["site"] == "pangyo" and fired.severity == "critical"

    # the CLI shows it as firing, since when
    result = CliRunner().invoke(cli, ["alerts", "--url", evaluator.url, "--json"])
    assert result.exit_code == 0, result.output
    (active,) = orjson.loads(result.output)
    assert active["status"] == "firing" and active["since_ms"] == t0 + 2 * MIN
    table = CliRunner().invoke(cli, ["alerts", "--url", evaluator.url])
    assert "firing" in table.output and "cpu-high" in table.output and r in table.output

    # inside the band (80..90] nothing happens; below 80 for 1m resolves, once
    for i, v in enumerate([85, 89, 91, 85, 79, 85, 79, 78, 70, 60]):
        await samples.send(r, t0 + (3 + i) * MIN, cpu_usage_pct=v)
    assert await alerts.wait(lambda ev: "resolved" in [e.status for e in ev])
    await asyncio.sleep(1.0)
    assert alerts.statuses(r) == ["pending", "firing", "resolved"]
    assert alerts.events[-1].event_time_ms == t0 + 10 * MIN  # 79@9m, 78@10m

    history = CliRunner().invoke(cli, ["alerts", "history", "--url", evaluator.url, "--json"])
    assert [e["status"] for e in orjson.loads(history.output)] == ["pending", "firing", "resolved"]


async def test_oscillating_value_never_fires(
    registry: Registry, evaluator: ServiceProcess, samples: Samples, alerts: Alerts
) -> None:
    registry.create("rule", "cpu-high", Rule.model_validate(CPU_RULE))
    await wait_ready(evaluator, rules=1)
    t0 = int(time.time() * 1000) - 30 * MIN
    r = "host:flappy"
    for i in range(20):
        await samples.send(r, t0 + i * MIN, cpu_usage_pct=92 if i % 2 == 0 else 88)
    await samples.send("host:marker", t0, cpu_usage_pct=99)  # proves the evaluator got this far
    assert await alerts.wait(lambda ev: any(e.resource_id == "host:marker" for e in ev))
    await asyncio.sleep(0.5)
    assert "firing" not in alerts.statuses(r)


async def test_restart_keeps_pending_time_and_does_not_refire(
    registry: Registry, evaluator_env: dict[str, str], samples: Samples, alerts: Alerts,
    tmp_path: Path,
) -> None:  # fmt: skip
    registry.create("rule", "cpu-high", Rule.model_validate(CPU_RULE))
    proc = ServiceProcess("alerting.evaluator", evaluator_env, tmp_path / "ev1.log").start()
    t0 = int(time.time() * 1000) - 20 * MIN
    r = "host:restarted"
    try:
        await wait_ready(proc, rules=1)
        await samples.send(r, t0, cpu_usage_pct=95)
        await samples.send(r, t0 + MIN, cpu_usage_pct=95)
        assert await alerts.wait(lambda ev: "pending" in [e.status for e in ev])
        await asyncio.sleep(0.8)  # a checkpoint has happened
        proc.kill()  # a crash, in the middle of the pending period

        proc = ServiceProcess("alerting.evaluator", evaluator_env, tmp_path / "ev2.log").start()
        await wait_ready(proc, rules=1)
        await samples.send(r, t0 + 2 * MIN, cpu_usage_pct=95)  # 2m after the first: fires now
        assert await alerts.wait(lambda ev: "firing" in [e.status for e in ev])
        assert alerts.statuses(r) == ["pending", "firing"]
        await asyncio.sleep(0.8)
        proc.stop()  # a clean restart while firing

        proc = ServiceProcess("alerting.evaluator", evaluator_env, tmp_path / "ev3.log").start()
        await wait_ready(proc, rules=1)
        for i in range(3, 6):
            await samples.send(r, t0 + i * MIN, cpu_usage_pct=97)
        api = CliRunner().invoke(cli, ["alerts", "--url", proc.url, "--json"])
        (active,) = orjson.loads(api.output)
        assert active["status"] == "firing" and active["since_ms"] == t0 + 2 * MIN
        await samples.send(r, t0 + 6 * MIN, cpu_usage_pct=50)
        await samples.send(r, t0 + 7 * MIN, cpu_usage_pct=50)
        assert await alerts.wait(lambda ev: "resolved" in [e.status for e in ev])
        assert alerts.statuses(r) == ["pending", "firing", "resolved"]
    finally:
        proc.stop()


async def test_rule_changes_apply_live_and_removal_resolves(
    registry: Registry, evaluator: ServiceProcess, samples: Samples, alerts: Alerts
) -> None:
    await wait_ready(evaluator)
    t0 = int(time.time() * 1000) - 5 * MIN
    await samples.send("host:live", t0, cpu_usage_pct=99)
    registry.create("rule", "cpu-now", Rule.model_validate({**CPU_RULE, "for": 0}))
    await asyncio.sleep(1.0)  # the view reloads
    await samples.send("host:live", t0 + MIN, cpu_usage_pct=99)
    assert await alerts.wait(lambda ev: "firing" in [e.status for e in ev])
    registry.delete("rule", "cpu-now")
    assert await alerts.wait(lambda ev: "resolved" in [e.status for e in ev])
    assert alerts.events[-1].reason == "rule removed"
