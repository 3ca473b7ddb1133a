"""The forwarder writes ALERTS{alertname, alertstate, ...} from kemi.alerts, as Prometheus does,
and rebuilds which alerts are active from the topic after a kill -9."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.parse
import uuid
from pathlib import Path

import pytest

from kemi_stats.codec import encode_alert
from kemi_stats.model import AlertEvent
from kemi_stats.settings import Settings
from kemi_stats.topics import TopicSpec, ensure_topics
from tests.integration.test_forwarder_support import (
    http_get,
    produce_records,
    start_forwarder,
)
from tests.servers import RunningServer

pytestmark = pytest.mark.integration


async def _send(settings: Settings, topic: str, events: list[AlertEvent]) -> None:
    await produce_records(settings, topic, [(encode_alert(e), e.key) for e in events])


def _event(rule: str, status: str, t_ms: int, resource: str = "host:web-1") -> AlertEvent:
    return AlertEvent(f"fp-{rule}", rule, status, "critical", resource, "cpu_usage_pct",
                      {"site": "pangyo", "alertname": rule, "resource": resource},
                      event_time_ms=t_ms, starts_at_ms=t_ms)  # fmt: skip


def _export(vm: RunningServer, rule: str) -> list[tuple[dict[str, str], list[int]]]:
    q = urllib.parse.urlencode({"match[]": f'ALERTS{{alertname="{rule}"}}', "start": "-1h"})
    http_get(f"http://{vm.address}/internal/force_flush")
    out = []
    for line in http_get(f"http://{vm.address}/api/v1/export?{q}").splitlines():
        doc = json.loads(line)
        out.append((doc["metric"], sorted(doc["timestamps"])))
    return out


async def _eventually(check, within: float = 20.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        await asyncio.sleep(0.3)
    raise AssertionError(f"not within {within} s")


async def test_alert_states_are_written_while_active_and_survive_a_restart(
    settings: Settings, fresh_topic: str, victoria: RunningServer, tmp_path: Path
) -> None:
    alerts_topic = f"test.alerts.{uuid.uuid4().hex[:8]}"
    ensure_topics(settings.kafka_bootstrap, (TopicSpec(alerts_topic, 3),))
    tag = uuid.uuid4().hex[:6]
    old, gone, new = f"old-{tag}", f"gone-{tag}", f"new-{tag}"
    t0 = int(time.time() * 1000) - 600_000
    # before the forwarder starts: one alert still firing, one that fired and resolved
    await _send(settings, alerts_topic, [
        _event(old, "pending", t0), _event(old, "firing", t0 + 60_000),
        _event(gone, "firing", t0), _event(gone, "resolved", t0 + 120_000),
    ])  # fmt: skip
    env = {"forwarder_alerts_topic": alerts_topic, "forwarder_alerts_group_id": f"fa-{tag}",
           "forwarder_alerts_interval": "1"}  # fmt: skip
    fw = start_forwarder(settings, victoria.address, fresh_topic, tmp_path, **env)
    try:
        # the firing one is written every interval from now on; old transitions are not rewritten
        series = await _eventually(lambda: [s for s in _export(victoria, old) if len(s[1]) >= 2])
        [(labels, stamps)] = series
        assert labels == {"__name__": "ALERTS", "alertname": old, "alertstate": "firing",
                          "severity": "critical", "site": "pangyo", "resource": "host:web-1"}  # fmt: skip
        assert min(stamps) > t0 + 60_000, "transitions before the start are state only"
        assert _export(victoria, gone) == []

        # a new alert: its transitions are written at their event times, then it stops
        t1 = int(time.time() * 1000)
        await _send(settings, alerts_topic, [_event(new, "pending", t1 - 2000),
                                             _event(new, "firing", t1 - 1000)])  # fmt: skip
        states = await _eventually(
            lambda: {s[0]["alertstate"]: s[1] for s in _export(victoria, new)}
            if len(_export(victoria, new)) == 2 else None
        )  # fmt: skip
        assert states["pending"] == [t1 - 2000]
        assert states["firing"][0] == t1 - 1000
        await _send(settings, alerts_topic, [_event(new, "resolved", int(time.time() * 1000))])
        await asyncio.sleep(2.5)
        [firing] = [s[1] for s in _export(victoria, new) if s[0]["alertstate"] == "firing"]
        await asyncio.sleep(2.0)
        assert [s[1] for s in _export(victoria, new) if s[0]["alertstate"] == "firing"] == [firing]

        # kill -9: the next forwarder rebuilds the states from the topic and goes on
        fw.kill()
        fw = start_forwarder(settings, victoria.address, fresh_topic, tmp_path, **env)
        restarted = int(time.time() * 1000)
        await _eventually(lambda: max(_export(victoria, old)[0][1]) > restarted)
        assert _export(victoria, gone) == []
    finally:
        fw.stop()
