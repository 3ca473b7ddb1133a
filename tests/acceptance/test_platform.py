"""The whole platform as a user drives it: the CLI, HTTP pushes, SNMP devices, a webhook.

Every test works on names of its own (targets, resources, rules), so they share the one
stack that ``kemi-stats up --detach`` started for the session. Timing windows are
asserted where a user would notice them.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import orjson
import pytest

from demo.receiver import Received, RecordingReceiver
from tests.acceptance.conftest import Stack
from tests.snmp_agents import SnmpAgent, snmpsim

pytestmark = pytest.mark.acceptance
__all__ = ["snmpsim"]  # the module-scoped snmpsim devices fixture

#: snmpsim's interface 1 moves ifHCInOctets at this many bytes/s (kemi_stats.stack.snmpsim)
SIM_RATE_BPS = 125_000 * 8


@pytest.fixture(scope="module")
def token(stack: Stack) -> str:
    """A push token for ``host:acc-`` resources, created with the CLI (secret shown once)."""
    out = stack.kemi("token", "create", f"acc-{uuid.uuid4().hex[:6]}", "--resource-prefix",
                     "host:acc-").stdout  # fmt: skip
    return stack.secret(out.rsplit(":", 1)[1].strip())


@pytest.fixture
async def receiver() -> AsyncIterator[RecordingReceiver]:
    rec = await RecordingReceiver(secret="acc-" + uuid.uuid4().hex).start()
    yield rec
    await rec.stop()


def tag() -> str:
    return uuid.uuid4().hex[:6]


async def push(stack: Stack, token: str, rid: str, t_s: float, **metrics: float) -> int:
    """POST one JSON sample set to the aggregator, as an agent would; the HTTP status."""
    body = orjson.dumps({"resource_id": rid, "time": t_s, "metrics": metrics})
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(stack.url("aggregator") + "/api/v1/push", data=body, headers=headers) as r,
    ):
        return r.status


async def query(
    stack: Stack, metric: str, resource: str, since: str = "15m"
) -> list[dict[str, Any]]:
    """``kemi-stats query METRIC --resource R -o json``: the series, as a user reads them."""
    args = ("query", metric, "--resource", resource, "--since", since, "-o", "json")
    proc = await asyncio.to_thread(stack.kemi, *args)
    return list(orjson.loads(proc.stdout or "[]"))


async def export(stack: Stack, metric: str, resource: str) -> dict[int, float]:
    """Every stored point of one series: timestamp ms -> value (VictoriaMetrics' export API)."""
    params = {"match[]": f'{metric}{{resource="{resource}"}}', "start": "-1h"}
    async with (
        aiohttp.ClientSession() as session,
        session.get(stack.vm_url + "/api/v1/export", params=params) as r,
    ):
        text = await r.text()
    points: dict[int, float] = {}
    for line in text.splitlines():
        doc = orjson.loads(line)
        points.update(zip(doc["timestamps"], doc["values"], strict=True))
    return points


async def eventually(check: Callable[[], Awaitable[Any]], within: float, every: float = 1.0) -> Any:
    """Await ``check()`` until it is truthy and return it; fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within:.0f} s: {check}")
        await asyncio.sleep(every)


def restarted(stack: Stack, name: str, old_pid: int, within: float = 90) -> None:
    """Wait until the supervisor has restarted ``name`` (new pid) and it is healthy."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        comp = stack.component(name)
        if comp["pid"] not in (None, old_pid) and comp["status"] == "up":
            return
        time.sleep(0.5)
    raise AssertionError(f"{name} not restarted and healthy within {within} s: {comp}")


def kill(stack: Stack, name: str) -> int:
    pid = int(stack.component(name)["pid"])
    os.kill(pid, signal.SIGKILL)
    return pid


def firing(requests: list[Received], rule: str) -> list[Received]:
    return [r for r in requests if r.json["status"] == "firing"
            and any(a["rule"] == rule for a in r.json["alerts"])]  # fmt: skip


def resolved(requests: list[Received], rule: str) -> list[Received]:
    return [r for r in requests if r.json["status"] == "resolved"
            and any(a["rule"] == rule for a in r.json["alerts"])]  # fmt: skip


async def test_registered_device_is_stored_and_queryable(stack: Stack, snmpsim: SnmpAgent) -> None:
    t = tag()
    name = f"acc-sw-{t}"
    stack.kemi("profile", "import", "--builtin")
    stack.kemi("credential", "add", f"acc-v2-{t}", "--community", snmpsim.probe_community)
    stack.kemi("derived", "add", f"acc_in_bps_{t}", "--expr", "rate(ifHCInOctets) * 8")
    added = time.monotonic()
    stack.kemi("target", "add", name, "--host", snmpsim.host, "--port", str(snmpsim.port),
               "--credential", f"acc-v2-{t}", "--profile", "system", "--profile", "if-mib",
               "--interval", "10s", "--label", f"site=acc-{t}")  # fmt: skip

    # polled within one interval, then through Kafka, the calculator and the forwarder
    series = await eventually(lambda: query(stack, "ifHCInOctets", name), within=60)
    stored_after = time.monotonic() - added
    assert stored_after < 45, f"first samples stored after {stored_after:.0f} s"
    assert {s["labels"]["ifName"] for s in series} == {"eth0", "eth1", "eth2", "eth3"}
    assert all(s["labels"]["site"] == f"acc-{t}" for s in series)
    up = await eventually(lambda: query(stack, "snmp_up", name), within=30)
    assert up[0]["points"][-1][1] == 1.0

    # the derived rate of a counter with a known rate, within 1 %
    async def eth0_rate() -> float | None:
        for s in await query(stack, f"acc_in_bps_{t}", name):
            if s["labels"].get("ifName") == "eth0":
                return float(s["points"][-1][1])
        return None

    rate = await eventually(eth0_rate, within=60)
    assert rate == pytest.approx(SIM_RATE_BPS, rel=0.01)

    # removed: polling stops (no new snmp_up point once the removal has settled)
    stack.kemi("target", "remove", name)
    await asyncio.sleep(12)
    stored = await export(stack, "snmp_up", name)
    await asyncio.sleep(15)
    assert await export(stack, "snmp_up", name) == stored


async def test_threshold_crossed_gives_one_signed_webhook(
    stack: Stack, token: str, receiver: RecordingReceiver
) -> None:
    t = tag()
    rid, rule = f"host:acc-cpu-{t}", f"acc-cpu-{t}"
    stack.secret(receiver.secret)
    stack.kemi("receiver", "add", f"acc-hook-{t}", "--url", receiver.url, "--secret",
               receiver.secret, "--timeout", "5s", "--group-wait", "1s")  # fmt: skip
    stack.kemi("rule", "add", rule, "--metric", "cpu_usage_pct", "--match", f"resource={rid}",
               "--above", "90", "--for", "20s", "--clear-below", "80", "--clear-for", "10s",
               "--severity", "critical", "--receiver", f"acc-hook-{t}")  # fmt: skip
    await asyncio.sleep(2)  # the evaluator and the notifier follow the registry live
    now = time.time()
    # above 90 from -40 s: pending at -40, firing at -20 (event time drives `for`)
    for dt, value in ((-40, 95), (-30, 96), (-20, 97)):
        assert await push(stack, token, rid, now + dt, cpu_usage_pct=value) == 204
    sent = time.monotonic()
    assert await receiver.wait_for(lambda rs: bool(firing(rs, rule)), within=20)
    assert time.monotonic() - sent < 10, "firing webhook later than 10 s"
    # inside the hysteresis band nothing happens; below 80 for 10 s resolves
    for dt, value in ((-15, 85), (-10, 79), (-5, 75), (0, 70)):
        assert await push(stack, token, rid, now + dt, cpu_usage_pct=value) == 204
    assert await receiver.wait_for(lambda rs: bool(resolved(rs, rule)), within=20)
    await asyncio.sleep(3)
    fired, cleared = firing(receiver.requests, rule), resolved(receiver.requests, rule)
    assert len(fired) == 1 and len(cleared) == 1, [r.json["status"] for r in receiver.requests]
    assert fired[0].signature_ok and cleared[0].signature_ok
    alert = fired[0].json["alerts"][0]
    assert alert["resource"] == rid and alert["severity"] == "critical"


async def test_killed_services_are_restarted_and_nothing_is_lost(stack: Stack, token: str) -> None:
    rid = f"host:acc-loss-{tag()}"
    t0 = time.time() - 120
    accepted: list[int] = []
    pids: dict[str, int] = {}
    for i in range(80):
        t_s = t0 + i
        if await push(stack, token, rid, t_s, acc_seq=i) == 204:
            accepted.append(round(t_s * 1000))
        if i == 20:
            pids["forwarder"] = kill(stack, "forwarder")
        if i == 50:
            pids["calculator"] = kill(stack, "calculator")
        await asyncio.sleep(0.25)
    assert len(accepted) == 80
    for name, pid in pids.items():
        await asyncio.to_thread(restarted, stack, name, pid)

    async def stored() -> bool:
        return len(await export(stack, "acc_seq", rid)) >= len(accepted)

    await eventually(stored, within=120, every=2.0)
    points = await export(stack, "acc_seq", rid)
    assert sorted(points) == accepted, "every accepted sample stored, once per timestamp"
    assert [points[t] for t in accepted] == list(range(80))


async def test_config_changes_apply_after_etcd_restart(
    stack: Stack, token: str, receiver: RecordingReceiver
) -> None:
    t = tag()
    rid, rule = f"host:acc-etcd-{t}", f"acc-twice-{t}"
    old = kill(stack, "etcd")
    await asyncio.to_thread(restarted, stack, "etcd", old)
    # changes made after the restart reach the calculator, the evaluator and the notifier
    stack.kemi("derived", "add", f"acc_twice_{t}", "--expr", f"2 * acc_gauge_{t}")
    stack.secret(receiver.secret)
    stack.kemi("receiver", "add", f"acc-etcd-hook-{t}", "--url", receiver.url, "--secret",
               receiver.secret, "--group-wait", "1s")  # fmt: skip
    stack.kemi("rule", "add", rule, "--metric", f"acc_twice_{t}", "--above", "40", "--for", "0s",
               "--severity", "info", "--receiver", f"acc-etcd-hook-{t}")  # fmt: skip

    async def doubled() -> bool:
        await push(stack, token, rid, time.time(), **{f"acc_gauge_{t}": 21.0})
        points = await export(stack, f"acc_twice_{t}", rid)
        return 42.0 in points.values()

    await eventually(doubled, within=60, every=2.0)
    assert await receiver.wait_for(lambda rs: bool(firing(rs, rule)), within=30)
    assert all(c["status"] == "up" for c in stack.status()["components"])


async def test_rule_test_replays_history_as_the_evaluator_saw_it(stack: Stack, token: str) -> None:
    t = tag()
    rid, rule = f"host:acc-bt-{t}", f"acc-bt-{t}"
    stack.kemi("rule", "add", rule, "--metric", "cpu_usage_pct", "--match", f"resource={rid}",
               "--above", "90", "--for", "2m", "--clear-below", "80", "--clear-for", "1m",
               "--severity", "warning")  # fmt: skip
    await asyncio.sleep(2)  # the evaluator follows the registry live
    # 30 minutes of history, every 30 s: above 90 from minute 5 to 15, 85 (the band) at 12
    values = [95.0 if 10 <= i < 30 and i != 24 else 85.0 if i == 24 else 50.0 for i in range(60)]
    t0 = int(time.time()) - 40 * 60
    for i, v in enumerate(values):
        assert await push(stack, token, rid, t0 + 30 * i, cpu_usage_pct=v) == 204

    async def live() -> list[dict[str, Any]] | None:
        proc = await asyncio.to_thread(stack.kemi, "alerts", "history", "-n", "5000", "--json")
        events = [e for e in orjson.loads(proc.stdout)
                  if e["rule"] == rule and e["status"] in ("firing", "resolved")]  # fmt: skip
        return events if len(events) >= 2 else None

    fired, cleared = await eventually(live, 60)
    assert (fired["status"], cleared["status"]) == ("firing", "resolved")

    async def stored() -> bool:
        return len(await export(stack, "cpu_usage_pct", rid)) == len(values)

    await eventually(stored, 60)
    doc = orjson.loads(stack.kemi("rule", "test", rule, "--since", "1h", "-o", "json").stdout)
    [episode] = doc["episodes"]
    assert (episode["fired_ms"], episode["resolved_ms"]) == (
        fired["event_time_ms"], cleared["event_time_ms"],
    )  # fmt: skip
    assert episode["resource"] == rid and doc["samples"] >= len(values)
    table = stack.kemi("rule", "test", rule, "--since", "1h").stdout
    assert f"rule {rule}: 1 firing(s) on 1 of " in table
    assert rid in table
