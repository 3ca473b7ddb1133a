"""``kemi-stats up --demo``: what a new user sees first, within the README's promises.

Samples flow through every stage within 2 minutes and the demo receiver prints a
signed firing alert within 5 minutes. The demo's own devices and receiver use fixed
loopback ports (UDP 1161 on 127.0.1.1-50, TCP 9190); the core uses free ports.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from demo.liveview import STAGES, Scrape, scrape
from kemi_stats.catalogue import available_services
from kemi_stats.stack.servers import free_ports, port_open

pytestmark = pytest.mark.acceptance


def _kemi(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kemi_stats.cli", *args],
                          capture_output=True, text=True, timeout=timeout)  # fmt: skip


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, float]]:
    if port_open("127.0.0.1", 9190):
        pytest.fail("the demo receiver's port 127.0.0.1:9190 is taken (a demo already running?)")
    data = tmp_path_factory.mktemp("demo")
    services = [s.name for s in available_services()]
    kafka, etcd, peer, vm, *ports = free_ports(4 + len(services))
    args = ["up", "--detach", "--demo", "--data-dir", str(data), "--kafka-port", str(kafka),
            "--etcd-port", str(etcd), "--etcd-peer-port", str(peer), "--vm-port", str(vm)]  # fmt: skip
    for name, port in zip(services, ports, strict=True):
        args += ["--service-port", f"{name}={port}"]
    proc = _kemi(*args)
    ready = time.monotonic()
    try:
        assert proc.returncode == 0, proc.stderr + proc.stdout
        yield data, ready
    finally:
        _kemi("down", "--data-dir", str(data), timeout=120)


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


def test_samples_flow_through_every_stage_within_2_minutes(demo: tuple[Path, float]) -> None:
    data, ready = demo
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


def test_demo_receiver_prints_a_signed_firing_alert_within_5_minutes(
    demo: tuple[Path, float],
) -> None:
    data, ready = demo
    log = data / "logs" / "demo-receiver.log"
    while time.monotonic() - ready < 300:
        lines = [ln for ln in log.read_text().splitlines() if "ALERT FIRING" in ln]
        if lines:
            break
        time.sleep(2)
    assert lines, f"no firing alert in {log} after 5 minutes"
    assert "signature ok" in lines[0], lines[0]
