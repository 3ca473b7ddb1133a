"""Helpers shared by the forwarder integration tests (this module holds no tests)."""

from __future__ import annotations

import re
import time
import urllib.request
from pathlib import Path

from kemi_stats.codec import encode_batch
from kemi_stats.kafka import make_producer
from kemi_stats.model import SampleBatch
from kemi_stats.settings import Settings
from kemi_stats.stack.servers import ServerCommand, free_port, victoria_command
from tests.servers import RunningServer, ServiceProcess, service_env


def dedup_victoria(tmp: Path) -> RunningServer:
    """VictoriaMetrics as the stack starts it, plus -dedup.minScrapeInterval=1ms (see README)."""
    base = victoria_command(tmp / "vm-data", free_port())
    cmd = ServerCommand(
        base.name, [*base.argv, "-dedup.minScrapeInterval=1ms"], base.address, base.health_url
    )
    return RunningServer(cmd, tmp / "vm.log").start()


def start_forwarder(
    settings: Settings, vm_address: str, topic: str, tmp: Path, **extra: str
) -> ServiceProcess:
    """The forwarder as a real process on ``topic`` with its own group, once partitions are held."""
    env = service_env(
        kafka_bootstrap=settings.kafka_bootstrap,
        kafka_session_timeout_ms="6000",
        tsdb_url=f"http://{vm_address}",
        forwarder_topic=topic,
        forwarder_group_id=f"fw-{topic}",
        **extra,
    )
    proc = ServiceProcess("forwarder", env, tmp / "forwarder.log").start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if "partitions [0" in http_get(proc.url + "/healthz"):
            return proc
        time.sleep(0.1)
    proc.stop()
    raise RuntimeError(f"forwarder did not join its group:\n{proc.log_tail()}")


def http_get(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return str(resp.read().decode())
    except urllib.error.HTTPError as exc:
        return str(exc.read().decode())
    except OSError:
        return ""


def metric_value(url: str, name: str) -> float:
    """A self-metric's value from the forwarder's /metrics (summed over labels)."""
    text = http_get(url + "/metrics")
    total = 0.0
    for m in re.finditer(rf"^{re.escape(name)}(?:{{[^}}]*}})? (\S+)$", text, re.M):
        total += float(m.group(1))
    return total


async def produce(settings: Settings, topic: str, batches: list[SampleBatch]) -> None:
    await produce_records(settings, topic, [(encode_batch(b), b.key) for b in batches])


async def produce_records(
    settings: Settings, topic: str, records: list[tuple[bytes, bytes]]
) -> None:
    """Write (value, key) records to ``topic`` in order and wait until Kafka acked them all."""
    producer = make_producer(settings)
    await producer.start()
    try:
        for value, key in records:
            await producer.send(topic, value, key=key)
        await producer.flush()
    finally:
        await producer.stop()
