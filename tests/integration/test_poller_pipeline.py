"""The whole poll path as real processes: scheduler(s) -> poll-jobs -> workers -> metrics.raw.

Each test has its own topics, consumer group and registry prefix; agents are snmpsim
(moving counters) and Debian snmpd (v3 authPriv).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import pytest

from kemi_stats.codec import decode_batch
from kemi_stats.kafka import make_consumer
from kemi_stats.model import SampleBatch
from kemi_stats.registry.builtin import load_builtin_profiles
from kemi_stats.registry.models import Credential, Profile, Target
from kemi_stats.registry.store import Registry
from kemi_stats.settings import Settings
from kemi_stats.topics import TopicSpec, ensure_topics
from tests.servers import RunningServer, ServiceProcess, service_env
from tests.snmp_agents import SnmpAgent, free_udp_port, snmpd_agent, snmpsim

pytestmark = pytest.mark.integration
__all__ = ["snmpd_agent", "snmpsim"]

INTERVAL = 3.0


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


def _up(batch: SampleBatch) -> int | float:
    return next(s.value for s in batch.samples if s.metric == "snmp_up")


def _reason(batch: SampleBatch) -> str:
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


def _sim_target(registry: Registry, agent: SnmpAgent, device: str, profiles: list[str]) -> None:
    registry.put("credential", device, Credential(version="2c", community=device))
    registry.put(
        "target",
        device,
        Target(host="127.0.0.1", port=agent.port, credential=device, profiles=profiles,
               interval=INTERVAL, deadline=INTERVAL, timeout=1.0, retries=1),
    )  # fmt: skip


async def test_targets_live_reload_and_worker_failover(
    pipeline: Pipeline, snmpsim: SnmpAgent, snmpd_agent: SnmpAgent
) -> None:
    reg = pipeline.registry
    reg.put(
        "profile", "extra", Profile(scalars=[{"name": "sysUpTimeCopy", "oid": "1.3.6.1.2.1.1.3"}])
    )
    _sim_target(reg, snmpsim, "sim-a", ["system", "if-mib"])
    _sim_target(reg, snmpsim, "sim-b", ["system", "if-mib", "extra"])
    reg.put("credential", "v3", Credential(version="3", user="kemi-sha-aes", auth="SHA",
            auth_key="authpass123", priv="AES", priv_key="privpass123"))  # fmt: skip
    reg.put("target", "snmpd", Target(host="127.0.0.1", port=snmpd_agent.port, credential="v3",
            profiles=["system", "ucd-snmp"], interval=INTERVAL, deadline=INTERVAL,
            resource_id="host:snmpd"))  # fmt: skip
    pipeline.start("poller.scheduler", "scheduler")
    w1 = pipeline.start("poller.worker", "worker-1")
    pipeline.start("poller.worker", "worker-2")

    targets = ("sim-a", "sim-b", "host:snmpd")
    await pipeline.wait_for(
        lambda: all(any(_up(b) == 1 for b in pipeline.of(t)) for t in targets), 30, "first polls"
    )
    v3 = pipeline.of("host:snmpd")[-1]
    assert any(s.metric == "memAvailReal" for s in v3.samples)
    assert v3.labels["target"] == "snmpd"

    # a target added to the registry is polled within one interval (+ slack), no restart
    added = time.monotonic()
    _sim_target(reg, snmpsim, "sim-c", ["system"])
    await pipeline.wait_for(lambda: pipeline.of("sim-c"), INTERVAL + 3, "the added target")
    assert time.monotonic() - added <= INTERVAL + 3

    # a metric added to a profile is in the next poll
    reg.put("profile", "extra", Profile(scalars=[
        {"name": "sysUpTimeCopy", "oid": "1.3.6.1.2.1.1.3"},
        {"name": "memTotalRealCopy", "oid": "1.3.6.1.4.1.2021.4.5"},
    ]))  # fmt: skip
    changed = time.monotonic()
    await pipeline.wait_for(
        lambda: any(
            any(s.metric == "memTotalRealCopy" for s in b.samples)
            for b in pipeline.of("sim-b", changed)
        ),
        INTERVAL * 2 + 2,
        "the new profile metric",
    )

    # a removed target stops
    reg.delete("target", "sim-c")
    removed = time.monotonic()
    await asyncio.sleep(INTERVAL * 2 + 1)
    assert len(pipeline.of("sim-c", removed + 2)) == 0

    # kill one worker: every target is still polled (after the group rebalance, 6 s session)
    w1.kill()
    killed = time.monotonic()
    await pipeline.wait_for(
        lambda: all(len([b for b in pipeline.of(t, killed) if _up(b) == 1]) >= 2 for t in targets),
        INTERVAL * 2 + 6 + 5,
        "polls after a worker was killed",
    )
    for t in targets:
        first_after = min(ts for ts, b in pipeline.batches if b.resource_id == t and ts >= killed)
        assert first_after - killed <= INTERVAL + 6 + 3, f"{t} not polled in the next interval"


async def test_failing_targets_have_distinct_reasons_and_others_keep_pace(
    pipeline: Pipeline, snmpsim: SnmpAgent, snmpd_agent: SnmpAgent
) -> None:
    reg = pipeline.registry
    _sim_target(reg, snmpsim, "sim-a", ["system", "if-mib"])
    common = {
        "profiles": ["system"],
        "interval": INTERVAL,
        "deadline": INTERVAL,
        "timeout": 0.7,
        "retries": 1,
    }
    reg.put("credential", "public", Credential(version="2c", community="public"))
    reg.put("credential", "wrong", Credential(version="2c", community="not-this-one"))
    reg.put("credential", "badkey", Credential(version="3", user="kemi-sha-aes", auth="SHA",
            auth_key="wrongauth1", priv="AES", priv_key="privpass123"))  # fmt: skip
    reg.put(
        "target",
        "dead",
        Target(host="127.0.0.1", port=free_udp_port(), credential="public", **common),
    )
    reg.put(
        "target",
        "wrongcomm",
        Target(host="127.0.0.1", port=snmpd_agent.port, credential="wrong", **common),
    )
    reg.put(
        "target",
        "wrongkey",
        Target(host="127.0.0.1", port=snmpd_agent.port, credential="badkey", **common),
    )
    pipeline.start("poller.scheduler", "scheduler")
    worker = pipeline.start("poller.worker", "worker")
    expected = {"dead": "timeout", "wrongcomm": "bad_community", "wrongkey": "auth_wrong_digest"}
    await pipeline.wait_for(
        lambda: pipeline.of("sim-a") and all(pipeline.of(t) for t in expected), 30, "first polls"
    )
    # the first jobs may wait for the worker's group join; judge the polls after that
    settled = time.monotonic()
    await pipeline.wait_for(
        lambda: all(len(pipeline.of(t, settled)) >= 2 for t in expected), INTERVAL * 3, "more polls"
    )
    assert {t: {_reason(b) for b in pipeline.of(t, settled)} for t in expected} == {
        t: {r} for t, r in expected.items()
    }
    assert all(_up(pipeline.of(t)[-1]) == 0 for t in ("dead", "wrongcomm", "wrongkey"))
    start = time.monotonic()
    await asyncio.sleep(INTERVAL * 3 + 0.5)
    good = [b for b in pipeline.of("sim-a", start) if _up(b) == 1]
    assert len(good) >= 3, f"sim-a polled {len(good)} times in 3 intervals"
    gaps = [b2.time_ms - b1.time_ms for b1, b2 in itertools.pairwise(good)]
    assert all(abs(g - INTERVAL * 1000) < 1000 for g in gaps), gaps
    # errors and drops are exported as self-metrics
    text = await asyncio.to_thread(_fetch, worker.url + "/metrics")
    for reason in ("timeout", "bad_community", "auth_wrong_digest"):
        assert f'kemi_poller_errors_total{{reason="{reason}"}}' in text
    health = orjson.loads(await asyncio.to_thread(_fetch, worker.url + "/healthz"))
    assert health["status"] == "ok" and "polls/s" in health["checks"]["poller"]["detail"]


def _fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return str(resp.read().decode())


def _role(proc: ServiceProcess) -> str:
    try:
        with urllib.request.urlopen(proc.url + "/healthz", timeout=2) as resp:
            return str(orjson.loads(resp.read())["checks"]["scheduler"]["detail"]).split(";")[0]
    except Exception:
        return "down"


async def test_standby_scheduler_takes_over_within_lease_ttl(
    pipeline: Pipeline, snmpsim: SnmpAgent
) -> None:
    ttl = 3.0
    _sim_target(pipeline.registry, snmpsim, "sim-a", ["system"])
    s1 = pipeline.start("poller.scheduler", "scheduler-1")
    s2 = pipeline.start("poller.scheduler", "scheduler-2")
    pipeline.start("poller.worker", "worker")
    await pipeline.wait_for(lambda: "leader" in (_role(s1), _role(s2)), 15, "a leader")
    await pipeline.wait_for(lambda: len(pipeline.of("sim-a")) >= 2, 20, "polls")
    leader, standby = (s1, s2) if _role(s1) == "leader" else (s2, s1)
    assert _role(standby) == "standby"
    leader.kill()
    killed = time.monotonic()
    await pipeline.wait_for(lambda: _role(standby) == "leader", ttl + 3, "the standby to lead")
    await pipeline.wait_for(
        lambda: len(pipeline.of("sim-a", killed)) >= 3, INTERVAL * 3 + ttl + 5, "polls"
    )
    times = sorted(b.time_ms for b in pipeline.of("sim-a"))
    gaps = [(b - a) / 1000 for a, b in itertools.pairwise(times)]
    # no interval skipped by more than the lease TTL (1 s slack for the standby's retry)
    assert max(gaps) <= INTERVAL + ttl + 1.0, gaps
