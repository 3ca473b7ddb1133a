"""The writer against real VictoriaMetrics (as the stack runs it): idempotent rewrites, exact labels."""

from __future__ import annotations

import time
import uuid

import pytest

from forwarder.lineprotocol import BatchEncoder, EncodeStats
from forwarder.settings import ForwarderSettings
from forwarder.writer import Origin, TsdbWriter
from kemi_stats.model import MetricKind, Sample, SampleBatch, Source
from kemi_stats.settings import Settings
from kemi_stats.tsdb import RangeQuery, SeriesMapping
from kemi_stats.tsdb.victoria import VictoriaQuery
from tests.integration.test_forwarder_support import exported_samples, wait_exported
from tests.servers import RunningServer

pytestmark = pytest.mark.integration

ORIGIN = Origin({("test", 0): (0, 0)})


def _lines(batches: list[SampleBatch]) -> tuple[list[str], int]:
    out: list[str] = []
    stats = EncodeStats()
    enc = BatchEncoder("")
    for b in batches:
        enc.encode(b, out, stats)
    return out, stats.points


def _flush(vm: RunningServer) -> None:
    import urllib.request

    urllib.request.urlopen(f"http://{vm.address}/internal/force_flush", timeout=5).read()


async def test_rewriting_a_batch_stores_each_sample_once(victoria: RunningServer) -> None:
    tag = uuid.uuid4().hex[:8]
    t0 = int(time.time() * 1000) - 10_000
    batches = [
        SampleBatch(f"host:{tag}", t0 + i * 1000, Source.PUSH, [Sample(f"m_{tag}", float(i))])
        for i in range(5)
    ]
    lines, points = _lines(batches)
    writer = TsdbWriter(Settings(tsdb_url=f"http://{victoria.address}"), ForwarderSettings())
    try:
        for _ in range(3):  # at-least-once: the same batch may arrive again after a retry
            assert await writer.write(lines, points, ORIGIN) == 5
    finally:
        writer.close()
    _flush(victoria)
    series = VictoriaQuery(f"http://{victoria.address}").query_range(
        RangeQuery(f"m_{tag}", t0 / 1000 - 1, time.time() + 1, raw=True)
    )
    assert len(series) == 1
    assert series[0].points == [((t0 + i * 1000) / 1000, float(i)) for i in range(5)]


async def test_a_sample_written_twice_is_exported_once(victoria: RunningServer) -> None:
    tag = uuid.uuid4().hex[:8]
    batch = SampleBatch(
        f"host:{tag}", int(time.time() * 1000), Source.PUSH, [Sample(f"twice_{tag}", 1.0)]
    )
    lines, points = _lines([batch])
    writer = TsdbWriter(Settings(tsdb_url=f"http://{victoria.address}"), ForwarderSettings())
    try:
        for _ in range(2):  # a replay after a crash writes the same (series, timestamp) again
            assert await writer.write(lines, points, ORIGIN) == 1
    finally:
        writer.close()
    assert wait_exported(victoria.address, f"twice_{tag}", 1) == 1
    assert exported_samples(victoria.address, f"twice_{tag}") == 1


async def test_labels_and_names_round_trip_exactly(victoria: RunningServer) -> None:
    tag = uuid.uuid4().hex[:8]
    odd = "a b,c=d\\e\"f'g ü/🙂"
    now = int(time.time() * 1000)
    batch = SampleBatch(
        f"host:{tag} {odd}", now, Source.PUSH,
        [Sample(f"m_{tag}", 2**64 - 1, {"ifAlias": odd, "k=1 ,x": "v"}, MetricKind.COUNTER64)],
        labels={"site": odd},
    )  # fmt: skip
    lines, points = _lines([batch])
    writer = TsdbWriter(Settings(tsdb_url=f"http://{victoria.address}"), ForwarderSettings())
    try:
        assert await writer.write(lines, points, ORIGIN) == 1
    finally:
        writer.close()
    _flush(victoria)
    client = VictoriaQuery(f"http://{victoria.address}", SeriesMapping(""))
    series = client.query_range(
        RangeQuery(
            f"m_{tag}", now / 1000 - 1, now / 1000 + 1, resource=f"host:{tag} {odd}", raw=True
        )
    )
    assert len(series) == 1
    assert series[0].labels == {
        "resource": f"host:{tag} {odd}", "ifAlias": odd, "k=1 ,x": "v", "site": odd,
    }  # fmt: skip
    # VictoriaMetrics keeps ~16 significant digits: a Counter64 near 2**64 comes back
    # within 1e-15 relative (documented in kemi_stats.tsdb.mapping)
    [(when, value)] = series[0].points
    assert when == now / 1000
    assert value == pytest.approx(2**64 - 1, rel=1e-15)


async def test_refused_line_does_not_block_the_rest(victoria: RunningServer) -> None:
    tag = uuid.uuid4().hex[:8]
    now = int(time.time() * 1000)
    lines = [f",resource=r{i} ok_{tag}={i} {now}" for i in range(6)]
    lines.insert(3, f",resource=bad broken_{tag}=notanumber {now}")
    writer = TsdbWriter(Settings(tsdb_url=f"http://{victoria.address}"), ForwarderSettings())
    try:
        accepted = await writer.write(lines, 7, ORIGIN)
    finally:
        writer.close()
    _flush(victoria)
    series = VictoriaQuery(f"http://{victoria.address}").query_range(
        RangeQuery(f"ok_{tag}", now / 1000 - 1, now / 1000 + 1, raw=True)
    )
    assert len(series) == 6
    assert accepted in (6, 7)


def test_latest_reads_each_series_newest_sample_at_its_own_time(victoria: RunningServer) -> None:
    """One point per series however long the window, even for a series of one sample
    (a range query returns nothing for that one)."""
    import urllib.request

    url = f"http://{victoria.address}"
    tag = uuid.uuid4().hex[:8]
    now = int(time.time() * 1000)
    lines = (
        f'lat_{tag}{{resource="a"}} 0 {now - 5000}\n'
        f'lat_{tag}{{resource="b"}} 1 {now - 60000}\nlat_{tag}{{resource="b"}} 7 {now - 3000}\n'
    )
    req = urllib.request.Request(
        url + "/api/v1/import/prometheus", data=lines.encode(), method="POST"
    )
    urllib.request.urlopen(req, timeout=10).close()
    urllib.request.urlopen(url + "/internal/force_flush", timeout=10).close()
    end = time.time()
    got = VictoriaQuery(url).query_range(RangeQuery(f"lat_{tag}", end - 600, end, latest=True))
    assert [(s.labels, s.points) for s in got] == [
        ({"resource": "a"}, [(pytest.approx((now - 5000) / 1000, abs=0.01), 0.0)]),
        ({"resource": "b"}, [(pytest.approx((now - 3000) / 1000, abs=0.01), 7.0)]),
    ]
