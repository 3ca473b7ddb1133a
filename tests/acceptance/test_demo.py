"""``kemi-stats up --demo``: what a new user sees first, within the README's promises.

Samples flow through every stage within 2 minutes and the demo receiver prints a
signed firing alert within 5 minutes. The demo's own devices and receiver use fixed
loopback ports (UDP 1161 on 127.0.1.1-50, TCP 9190); the core uses free ports.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from demo.liveview import STAGES, Scrape, scrape
from tests.acceptance.conftest import Demo

pytestmark = pytest.mark.acceptance


def _kemi(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kemi_stats.cli", *args],
                          capture_output=True, text=True, timeout=timeout)  # fmt: skip


def _metrics_urls(data: Path) -> list[tuple[str, str]]:
    status = orjson.loads(_kemi("status", "--data-dir", str(data), "-o", "json").stdout)
    return [
        (c["name"], c["health_url"].replace("/healthz", "/metrics"))
        for c in status["components"]
        if c["kind"] == "service" and c.get("health_url")
    ]


def _flowing(prev: Scrape, cur: Scrape) -> set[str]:
    return {
        stage
        for stage in ("polled (raw)", "pushed (raw)", "derived", "stored")
        if sum(cur.values.get(n, 0.0) - prev.values.get(n, 0.0) for n in STAGES[stage]) > 0
    }


def test_samples_flow_through_every_stage_within_2_minutes(demo: Demo) -> None:
    data, ready = demo.data, demo.ready
    urls = _metrics_urls(data)
    prev = scrape(urls)
    flowing: set[str] = set()
    recent = 0
    while time.monotonic() - ready < 120 and (len(flowing) < 4 or recent < 50):
        time.sleep(5)
        cur = scrape(urls)
        flowing = _flowing(prev, cur)
        # every device (and sw-dead, which fails) was polled within the last interval
        recent = sum(1 for t in cur.last_polls if t > cur.at - 20)
        prev = cur
    assert flowing == {"polled (raw)", "pushed (raw)", "derived", "stored"}
    assert recent >= 50, f"{recent} targets polled in the last interval, of 51"


def test_demo_receiver_prints_a_signed_firing_alert_within_5_minutes(demo: Demo) -> None:
    data, ready = demo.data, demo.ready
    log = data / "logs" / "demo-receiver.log"
    while time.monotonic() - ready < 300:
        lines = [ln for ln in log.read_text().splitlines() if "ALERT FIRING" in ln]
        if lines:
            break
        time.sleep(2)
    assert lines, f"no firing alert in {log} after 5 minutes"
    assert "signature ok" in lines[0], lines[0]
