"""Evaluator and notifier as real processes, a recording aiohttp webhook in the test.

Samples go straight to a metrics topic of the test's own. Covers the issue's
acceptance: one signed firing webhook after `for`, one resolved after `clear_for`,
no duplicate across an evaluator crash while firing; no-data fires for a target that
stopped sending, and a silence covering another one suppresses its webhook.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from demo.receiver import RecordingReceiver
from kemi_stats.registry.models import Receiver, Rule, Silence
from kemi_stats.registry.store import Registry
from tests.integration.alerting_support import (
    CPU_RULE,
    MIN,
    Alerts,
    Samples,
    wait_ready,
)
from tests.servers import ServiceProcess

pytestmark = pytest.mark.integration

SECRET = "S3CRET"


@pytest.fixture
async def hook(registry: Registry) -> AsyncIterator[RecordingReceiver]:
    rcv = await RecordingReceiver(secret=SECRET).start()
    registry.put("receiver", "ops-hook", Receiver(url=rcv.url, secret=SECRET, timeout=5.0))
    yield rcv
    await rcv.stop()


@pytest.fixture
async def stack(
    alerting_env: dict[str, str],
    tmp_path: Path,
) -> AsyncIterator[dict[str, ServiceProcess]]:
    env = alerting_env
    procs = {
        "evaluator": ServiceProcess("alerting.evaluator", env, tmp_path / "evaluator.log").start(),
        "notifier": ServiceProcess("alerting.notifier", env, tmp_path / "notifier.log").start(),
    }
    procs["env"] = env  # type: ignore[assignment]
    await wait_ready(procs["evaluator"])
    yield procs
    for p in procs.values():
        if isinstance(p, ServiceProcess):
            p.stop()


def statuses(hook: RecordingReceiver, resource: str) -> list[str]:
    return [
        a["status"] + ("+repeat" if a["repeat"] else "")
        for r in hook.accepted
        for a in r.json["alerts"]
        if a["resource"] == resource
    ]


async def test_one_firing_and_one_resolved_webhook_across_an_evaluator_crash(
    registry: Registry, hook: RecordingReceiver, stack: dict, samples: Samples, tmp_path: Path,
) -> None:  # fmt: skip
    registry.create("rule", "cpu-high", Rule.model_validate(CPU_RULE))
    await asyncio.sleep(0.5)
    r = f"host:web-{uuid.uuid4().hex[:6]}"
    t0 = int(time.time() * 1000) - 30 * MIN
    for i in range(3):
        await samples.send(r, t0 + i * MIN, cpu_usage_pct=95)
    assert await hook.wait_for(lambda rs: len(rs) >= 1, 20), stack["notifier"].log_tail()
    assert statuses(hook, r) == ["firing"]
    assert all(req.signature_ok for req in hook.requests)
    first = hook.requests[0]
    assert first.json["alerts"][0]["annotations"]["summary"].startswith("cpu-high: cpu_usage_pct")

    await asyncio.sleep(0.6)  # checkpointed
    stack["evaluator"].kill()
    stack["evaluator"] = ServiceProcess(
        "alerting.evaluator", stack["env"], tmp_path / "evaluator2.log"
    ).start()
    await wait_ready(stack["evaluator"])
    for i in range(3, 6):  # still firing, oscillating inside the band
        await samples.send(r, t0 + i * MIN, cpu_usage_pct=85 if i % 2 else 95)
    for i in range(6, 8):  # below 80 for 1m
        await samples.send(r, t0 + i * MIN, cpu_usage_pct=70)
    assert await hook.wait_for(lambda rs: len(rs) >= 2, 20), stack["notifier"].log_tail()
    await asyncio.sleep(1.0)
    assert statuses(hook, r) == ["firing", "resolved"]
    assert all(req.signature_ok for req in hook.requests)
    assert len({req.idempotency_key for req in hook.requests}) == 2


async def test_no_data_fires_and_a_silence_suppresses_the_webhook(
    registry: Registry, hook: RecordingReceiver, stack: dict, samples: Samples, alerts: Alerts,
) -> None:  # fmt: skip
    registry.create(
        "rule",
        "sw-silent",
        Rule.model_validate(
            {"metric": "snmp_up", "match": ["resource=~'net:.*'"], "condition": {"op": "<", "threshold": 1},
             "no_data": "2s", "severity": "warning", "receivers": ["ops-hook"]}
        ),
    )  # fmt: skip
    now = time.time()
    registry.create(
        "silence",
        "maint",
        Silence(match=["resource=net:sw-b"], starts_at=now - 60, ends_at=now + 7200, reason="swap"),  # type: ignore[list-item]
    )
    await asyncio.sleep(0.5)
    for _ in range(3):  # both switches answer, then stop
        t = int(time.time() * 1000)
        await samples.send("net:sw-a", t, snmp_up=1)
        await samples.send("net:sw-b", t, snmp_up=1)
        await asyncio.sleep(0.2)
    assert await hook.wait_for(lambda rs: len(rs) >= 1, 15), stack["evaluator"].log_tail()
    await asyncio.sleep(1.0)
    assert statuses(hook, "net:sw-a") == ["firing"]
    assert statuses(hook, "net:sw-b") == []
    body = hook.accepted[0].json
    assert body["alerts"][0]["labels"]["kind"] == "no_data"
    recorded = [e for e in alerts.events if e.resource_id == "net:sw-b"]
    assert [(e.status, e.silenced) for e in recorded] == [("firing", True)], (
        "recorded, not notified"
    )

    # the switch is back: resolved goes to the receiver that heard of the firing only
    await samples.send("net:sw-a", int(time.time() * 1000), snmp_up=1)
    await samples.send("net:sw-b", int(time.time() * 1000), snmp_up=1)
    assert await hook.wait_for(lambda rs: len(rs) >= 2, 15)
    await asyncio.sleep(0.8)
    assert statuses(hook, "net:sw-a") == ["firing", "resolved"]
    assert statuses(hook, "net:sw-b") == []
