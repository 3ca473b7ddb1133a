"""The alert evaluator as a real process against the real broker and etcd.

Samples are produced straight to a topic of the test's own; transitions are read
back from another. Event time drives `for`/`clear_for`, so most of these tests do
not wait for wall-clock durations.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from kemi_stats.cli.main import cli
from kemi_stats.registry.models import Rule
from kemi_stats.registry.store import Registry
from kemi_stats.settings import Settings
from tests.integration.alerting_support import (
    CPU_RULE,
    MIN,
    Alerts,
    Samples,
    running,
    wait_ready,
)
from tests.integration.test_forwarder_support import http_get as http_text
from tests.servers import ServiceProcess

pytestmark = pytest.mark.integration


@pytest.fixture
def evaluator(alerting_env: dict[str, str], tmp_path: Path) -> Iterator[ServiceProcess]:
    yield from running("alerting.evaluator", alerting_env, tmp_path / "evaluator.log")


async def test_fires_after_for_resolves_after_clear_for_with_hysteresis(
    registry: Registry, evaluator: ServiceProcess, samples: Samples, alerts: Alerts,
    alerting_env: dict[str, str],
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
    registry: Registry, alerting_env: dict[str, str], samples: Samples, alerts: Alerts,
    tmp_path: Path,
) -> None:  # fmt: skip
    registry.create("rule", "cpu-high", Rule.model_validate(CPU_RULE))
    proc = ServiceProcess("alerting.evaluator", alerting_env, tmp_path / "ev1.log").start()
    t0 = int(time.time() * 1000) - 20 * MIN
    r = "host:restarted"
    try:
        await wait_ready(proc, rules=1)
        await samples.send(r, t0, cpu_usage_pct=95)
        await samples.send(r, t0 + MIN, cpu_usage_pct=95)
        assert await alerts.wait(lambda ev: "pending" in [e.status for e in ev])
        await asyncio.sleep(0.8)  # a checkpoint has happened
        proc.kill()  # a crash, in the middle of the pending period

        proc = ServiceProcess("alerting.evaluator", alerting_env, tmp_path / "ev2.log").start()
        await wait_ready(proc, rules=1)
        await samples.send(r, t0 + 2 * MIN, cpu_usage_pct=95)  # 2m after the first: fires now
        assert await alerts.wait(lambda ev: "firing" in [e.status for e in ev])
        assert alerts.statuses(r) == ["pending", "firing"]
        await asyncio.sleep(0.8)
        proc.stop()  # a clean restart while firing

        proc = ServiceProcess("alerting.evaluator", alerting_env, tmp_path / "ev3.log").start()
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


async def test_raw_and_derived_samples_both_feed_rules_and_resume_after_a_restart(
    registry: Registry, settings: Settings, topics: dict[str, str], alerting_env: dict[str, str],
    samples: Samples, alerts: Alerts, tmp_path: Path,
) -> None:  # fmt: skip
    """Raw samples come straight from the raw topic, derived ones from the calculator's;
    the offsets of both are saved, so a restart re-reads neither."""
    registry.create("rule", "cpu-high", Rule.model_validate(CPU_RULE))
    raw = Samples(settings, topics["raw"])
    await raw.producer.start()
    proc = ServiceProcess("alerting.evaluator", alerting_env, tmp_path / "ev1.log").start()
    t0 = int(time.time() * 1000) - 20 * MIN
    tag = uuid.uuid4().hex[:6]
    polled, derived = f"host:raw-{tag}", f"host:derived-{tag}"
    try:
        await wait_ready(proc, rules=1)
        assert f"{topics['raw']} partitions [0, 1, 2]" in http_text(proc.url + "/healthz")
        for i in range(3):
            await raw.send(polled, t0 + i * MIN, cpu_usage_pct=95)
            await samples.send(derived, t0 + i * MIN, cpu_usage_pct=95)
        assert await alerts.wait(lambda ev: [e.status for e in ev].count("firing") == 2)
        await asyncio.sleep(0.8)  # a checkpoint has happened
        proc.stop()

        proc = ServiceProcess("alerting.evaluator", alerting_env, tmp_path / "ev2.log").start()
        await wait_ready(proc, rules=1)
        await asyncio.sleep(1.0)
        assert alerts.statuses(polled) == alerts.statuses(derived) == ["pending", "firing"]
        for i in range(3, 5):
            await raw.send(polled, t0 + i * MIN, cpu_usage_pct=50)
            await samples.send(derived, t0 + i * MIN, cpu_usage_pct=50)
        assert await alerts.wait(lambda ev: [e.status for e in ev].count("resolved") == 2)
        assert alerts.statuses(polled) == alerts.statuses(derived) == [
            "pending", "firing", "resolved",
        ]  # fmt: skip
    finally:
        proc.stop()
        await raw.producer.stop()


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
