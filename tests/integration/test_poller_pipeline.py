"""The whole poll path as real processes: scheduler(s) -> poll-jobs -> workers -> metrics.raw.

Each test has its own topics, consumer group and registry prefix; agents are snmpsim
(moving counters) and Debian snmpd (v3 authPriv).
"""

from __future__ import annotations

import asyncio
import itertools
import time
import urllib.request

import orjson
import pytest

from kemi_stats.registry.models import Credential, Profile, Target
from kemi_stats.registry.store import Registry
from tests.integration.poller_support import Pipeline, pipeline, reason_of, up_of
from tests.servers import ServiceProcess
from tests.snmp_agents import SnmpAgent, free_udp_port, snmpd_agent, snmpsim

pytestmark = pytest.mark.integration
__all__ = ["pipeline", "snmpd_agent", "snmpsim"]

INTERVAL = 3.0


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
        lambda: all(any(up_of(b) == 1 for b in pipeline.of(t)) for t in targets), 30, "first polls"
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
        lambda: all(
            len([b for b in pipeline.of(t, killed) if up_of(b) == 1]) >= 2 for t in targets
        ),
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
    assert {t: {reason_of(b) for b in pipeline.of(t, settled)} for t in expected} == {
        t: {r} for t, r in expected.items()
    }
    assert all(up_of(pipeline.of(t)[-1]) == 0 for t in ("dead", "wrongcomm", "wrongkey"))
    start = time.monotonic()
    await asyncio.sleep(INTERVAL * 3 + 0.5)
    good = [b for b in pipeline.of("sim-a", start) if up_of(b) == 1]
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
