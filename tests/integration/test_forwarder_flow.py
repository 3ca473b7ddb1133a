"""Samples on the topic are readable with ``kemi-stats query`` within 2 s; bad records skipped."""

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
from kemi_stats.codec import encode_batch
from kemi_stats.kafka import make_consumer, make_producer
from kemi_stats.model import MetricKind, Sample, SampleBatch, Source
from kemi_stats.settings import Settings
from kemi_stats.topics import TopicSpec, ensure_topics
from tests.integration.test_forwarder_support import (
    http_get,
    metric_value,
    produce,
    start_forwarder,
)
from tests.servers import RunningServer, ServiceProcess

pytestmark = pytest.mark.integration


def _query(vm: RunningServer, *args: str) -> list[dict[str, object]]:
    result = CliRunner().invoke(
        cli, ["query", *args, "-o", "json", "--since", "10m"],
        env={"KEMI_TSDB_URL": f"http://{vm.address}", "KEMI_TSDB_KIND": "victoriametrics"},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return list(orjson.loads(result.stdout))


@pytest.fixture
def fw(
    settings: Settings, fresh_topic: str, victoria: RunningServer, tmp_path: Path
) -> Iterator[ServiceProcess]:
    proc = start_forwarder(settings, victoria.address, fresh_topic, tmp_path)
    yield proc
    proc.stop()


async def test_samples_readable_with_query_within_2s(
    settings: Settings, fresh_topic: str, victoria: RunningServer, fw: ServiceProcess
) -> None:
    tag = uuid.uuid4().hex[:8]
    now = int(time.time() * 1000)
    batches = [
        SampleBatch(
            f"net:sw-{tag}-{i}", now, Source.SNMP, labels={"site": "pangyo"},
            samples=[
                Sample("ifHCInOctets", 2**63 + i, {"ifName": "Gi0/1"}, MetricKind.COUNTER64),
                Sample(f"cpu_{tag}", 10.0 + i),
            ],
        )
        for i in range(5)
    ]  # fmt: skip
    started = time.monotonic()
    await produce(settings, fresh_topic, batches)
    got: list[dict[str, object]] = []
    while time.monotonic() - started < 10:
        got = await asyncio.to_thread(_query, victoria, f"cpu_{tag}")
        if len(got) == 5:
            break
        await asyncio.sleep(0.05)
    elapsed = time.monotonic() - started
    assert len(got) == 5, got
    print(f"readable with kemi-stats query after {elapsed:.2f} s")
    assert elapsed < 2.0, f"readable after {elapsed:.2f} s"
    by_resource = {s["labels"]["resource"]: s for s in got}  # type: ignore[index]
    assert by_resource[f"net:sw-{tag}-3"]["labels"] == {
        "resource": f"net:sw-{tag}-3", "site": "pangyo",
    }  # fmt: skip
    assert by_resource[f"net:sw-{tag}-3"]["points"][-1][1] == 13.0  # type: ignore[index]
    iface = await asyncio.to_thread(
        _query, victoria, "ifHCInOctets", "--resource", f"net:sw-{tag}-1", "--label",
        "ifName=Gi0/1", "--raw",
    )  # fmt: skip
    assert len(iface) == 1
    assert iface[0]["points"] == [[now / 1000, float(2**63 + 1)]]


async def test_malformed_record_is_skipped_counted_and_logged(
    settings: Settings, fresh_topic: str, victoria: RunningServer, fw: ServiceProcess
) -> None:
    tag = uuid.uuid4().hex[:8]
    producer = make_producer(settings)
    await producer.start()
    key = f"host:{tag}".encode()
    now = int(time.time() * 1000)
    try:
        first = SampleBatch(f"host:{tag}", now, Source.PUSH, [Sample(f"m_{tag}", 1.0)])
        after = SampleBatch(f"host:{tag}", now + 1000, Source.PUSH, [Sample(f"m_{tag}", 2.0)])
        await producer.send_and_wait(fresh_topic, encode_batch(first), key=key)
        bad = await producer.send_and_wait(fresh_topic, b"\xffnot a batch", key=key)
        await producer.send_and_wait(fresh_topic, encode_batch(after), key=key)
    finally:
        await producer.stop()
    deadline = time.monotonic() + 10
    points: list[object] = []
    while time.monotonic() < deadline:
        got = await asyncio.to_thread(_query, victoria, f"m_{tag}", "--raw")
        points = got[0]["points"] if got else []  # type: ignore[assignment]
        if len(points) == 2:
            break
        await asyncio.sleep(0.1)
    assert [p[1] for p in points] == [1.0, 2.0]  # type: ignore[index]
    assert metric_value(fw.url, "kemi_forwarder_malformed_records_total") == 1
    assert f"partition {bad.partition} offset {bad.offset}" in fw.log_tail()
    assert "skipped malformed record" in fw.log_tail()


async def test_raw_and_derived_samples_both_reach_the_tsdb(
    settings: Settings, kafka: RunningServer, victoria: RunningServer, tmp_path: Path
) -> None:
    """The forwarder reads the raw topic itself: raw samples need no calculator to be stored."""
    tag = uuid.uuid4().hex[:8]
    raw, derived = f"test.raw.{tag}", f"test.derived.{tag}"
    ensure_topics(kafka.address, (TopicSpec(raw, 3), TopicSpec(derived, 3)))
    proc = start_forwarder(settings, victoria.address, derived, tmp_path, raw_topic=raw)
    try:
        assert f"{raw} partitions [0, 1, 2], {derived} partitions [0, 1, 2]" in http_get(
            proc.url + "/healthz"
        )
        now = int(time.time() * 1000)
        rid = f"net:sw-{tag}"
        await produce(
            settings, raw, [SampleBatch(rid, now, Source.SNMP, [Sample(f"in_{tag}", 7.0)])]
        )
        await produce(
            settings, derived, [SampleBatch(rid, now, Source.CALC, [Sample(f"bps_{tag}", 8.0)])]
        )
        deadline = time.monotonic() + 10
        got: dict[str, list[dict[str, object]]] = {}
        while time.monotonic() < deadline:
            got = {
                m: await asyncio.to_thread(_query, victoria, m) for m in (f"in_{tag}", f"bps_{tag}")
            }
            if all(got.values()):
                break
            await asyncio.sleep(0.1)
        assert [s["points"][-1][1] for s in got[f"in_{tag}"]] == [7.0]  # type: ignore[index]
        assert [s["points"][-1][1] for s in got[f"bps_{tag}"]] == [8.0]  # type: ignore[index]
    finally:
        proc.stop()


async def test_a_group_upgraded_from_derived_only_starts_the_raw_topic_at_its_end(
    settings: Settings, kafka: RunningServer, victoria: RunningServer, tmp_path: Path
) -> None:
    """A forwarder group that read raw samples through kemi.metrics (before the calculator
    stopped passing them on) does not replay the raw topic's history into the TSDB."""
    tag = uuid.uuid4().hex[:8]
    raw, derived = f"test.raw.{tag}", f"test.derived.{tag}"
    ensure_topics(kafka.address, (TopicSpec(raw, 3), TopicSpec(derived, 3)))
    rid, now = f"host:up-{tag}", int(time.time() * 1000)
    before = SampleBatch(rid, now - 60_000, Source.PUSH, [Sample(f"old_{tag}", 1.0)])
    await produce(settings, raw, [before])
    await produce(settings, derived, [before])
    # the earlier version's forwarder read it through kemi.metrics, and committed
    earlier = make_consumer(settings, derived, group_id=f"fw-{derived}")
    await earlier.start()
    try:
        while not await earlier.getmany(timeout_ms=500):
            pass
        await earlier.commit()
    finally:
        await earlier.stop()

    proc = start_forwarder(settings, victoria.address, derived, tmp_path, raw_topic=raw)
    try:
        await produce(
            settings, raw, [SampleBatch(rid, now, Source.PUSH, [Sample(f"new_{tag}", 2.0)])]
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not await asyncio.to_thread(
            _query, victoria, f"new_{tag}"
        ):
            await asyncio.sleep(0.1)
        assert await asyncio.to_thread(_query, victoria, f"new_{tag}")
        assert await asyncio.to_thread(_query, victoria, f"old_{tag}") == []
        assert f"first read of {raw}" in proc.log_tail()
    finally:
        proc.stop()

    # the start was committed: written while the forwarder is away, a raw sample is read
    # at the next start, not skipped by a second "first read"
    await produce(
        settings, raw, [SampleBatch(rid, now + 1000, Source.PUSH, [Sample(f"later_{tag}", 3.0)])]
    )
    proc = start_forwarder(settings, victoria.address, derived, tmp_path / "again", raw_topic=raw)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not await asyncio.to_thread(
            _query, victoria, f"later_{tag}"
        ):
            await asyncio.sleep(0.1)
        assert await asyncio.to_thread(_query, victoria, f"later_{tag}")
        assert "first read of" not in proc.log_tail()
    finally:
        proc.stop()
