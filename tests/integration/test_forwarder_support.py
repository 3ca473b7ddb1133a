"""Helpers shared by the forwarder integration tests (this module holds no tests)."""

from __future__ import annotations

import re
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import orjson

from kemi_stats.codec import encode_batch
from kemi_stats.kafka import make_producer
from kemi_stats.model import SampleBatch
from kemi_stats.settings import Settings
from tests.servers import ServiceProcess, service_env


def start_forwarder(
    settings: Settings, vm_address: str, topic: str, tmp: Path, raw_topic: str = "", **extra: str
) -> ServiceProcess:
    """The forwarder as a real process on ``topic`` (and ``raw_topic``, if any) with its own
    group, once partitions are held."""
    env = service_env(
        kafka_bootstrap=settings.kafka_bootstrap,
        kafka_session_timeout_ms="6000",
        tsdb_url=f"http://{vm_address}",
        forwarder_topic=topic,
        forwarder_raw_topic=raw_topic,
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


def http_status(url: str) -> int:
    """The status GET ``url`` answers (0: no answer)."""
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except OSError:
        return 0


def exported_samples(vm_address: str, match: str) -> int:
    """How many samples VictoriaMetrics' ``/api/v1/export`` returns for the series ``match`` selects.

    Buffered rows are flushed first, so every write VictoriaMetrics accepted is counted.
    """
    base = f"http://{vm_address}"
    urllib.request.urlopen(f"{base}/internal/force_flush", timeout=5).read()
    query = urllib.parse.urlencode({"match[]": match})
    with urllib.request.urlopen(f"{base}/api/v1/export?{query}", timeout=30) as resp:
        return sum(len(orjson.loads(line)["timestamps"]) for line in resp if line.strip())


def wait_exported(vm_address: str, match: str, expected: int, timeout: float = 30.0) -> int:
    """Poll the export until it holds at least ``expected`` samples (or ``timeout``); the count.

    VictoriaMetrics makes a new series searchable seconds after it accepted it.
    """
    deadline = time.monotonic() + timeout
    while True:
        count = exported_samples(vm_address, match)
        if count >= expected or time.monotonic() > deadline:
            return count
        time.sleep(0.2)


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
