"""Bounded work per request: gunzip, record size, name caches, series rules."""

from __future__ import annotations

import gzip

import pytest

from aggregator.body import gunzip
from aggregator.grouping import BatchBuilder
from aggregator.names import NameMapper
from aggregator.rejection import Rejection
from kemi_stats.batch_writer import SeriesCache
from kemi_stats.codec import decode_batch
from kemi_stats.model import MetricKind
from kemi_stats.names import InvalidSeries, series_problem

MEMBER = gzip.compress(b"cpu,host=a v=1\n")


def test_gzip_members_are_read_in_order_up_to_the_cap() -> None:
    assert gunzip(MEMBER * 3, 1 << 20, max_members=3) == b"cpu,host=a v=1\n" * 3
    with pytest.raises(Rejection) as refused:
        gunzip(MEMBER * 200_000, 16 << 20, max_members=100)
    assert refused.value.status == 413
    assert "gzip members: more than 100, over the limit of 100" in refused.value.message


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        (gzip.compress(b"0" * (2 << 20)), 413, "decompressed body bytes: more than 1048576"),
        (MEMBER[:-4], 400, "truncated"),
        (MEMBER + b"trailing", 400, "corrupt"),
        (b"", 400, "empty"),
    ],
)
def test_bad_gzip_bodies_are_refused(body: bytes, status: int, words: str) -> None:
    with pytest.raises(Rejection) as refused:
        gunzip(body, 1 << 20)
    assert refused.value.status == status
    assert words in refused.value.message


def test_a_large_gzip_member_is_read_whole() -> None:
    text = b"".join(b"cpu,host=a v=%d\n" % i for i in range(100_000))
    assert gunzip(gzip.compress(text), 16 << 20) == text


def _builder(series: int, resource: str = "host:a") -> BatchBuilder:
    out = BatchBuilder(series=SeriesCache())
    group = out.group(resource, 1_700_000_000_000)
    for i in range(series):
        labels = {"part": f"p{i:06d}"}
        out.put(group, "disk_used", i, labels, (("part", labels["part"]),), MetricKind.GAUGE)
    return out


def test_records_over_the_limit_are_split_by_sample_and_keep_every_sample() -> None:
    records = _builder(30_000).records(max_bytes=100_000)
    assert len(records) > 1
    assert all(len(value) <= 100_000 for _, value in records)
    assert {key for key, _ in records} == {b"host:a"}
    batches = [decode_batch(value) for _, value in records]
    assert sum(len(b.samples) for b in batches) == 30_000
    assert {s.labels["part"] for b in batches for s in b.samples} == {
        f"p{i:06d}" for i in range(30_000)
    }
    assert len(_builder(30_000).records()) == 1


def test_float_records_are_split_too() -> None:
    out = BatchBuilder(series=SeriesCache())
    group = out.float_group("host:f", 1_700_000_000_000)
    cache = SeriesCache()
    for i in range(20_000):
        labels = {"n": str(i)}
        out.put_float(group, cache.get("temp", labels, (("n", str(i)),), MetricKind.GAUGE), 0.5)
    records = out.records(max_bytes=64_000)
    assert len(records) > 1
    assert sum(len(decode_batch(v).samples) for _, v in records) == 20_000


def test_a_sample_larger_than_a_record_is_a_413() -> None:
    out = BatchBuilder(series=SeriesCache())
    group = out.group("host:a", 1_700_000_000_000)
    labels = {f"k{i}": "v" * 4000 for i in range(40)}
    out.put(group, "wide", 1.0, labels, tuple(sorted(labels.items())), MetricKind.GAUGE)
    with pytest.raises(Rejection) as refused:
        out.records(max_bytes=64_000)
    assert refused.value.status == 413
    assert "bytes of one sample: " in refused.value.message
    assert "KEMI_AGGREGATOR_MAX_RECORD_BYTES" in refused.value.message


def test_series_rules_name_the_label_and_the_limit() -> None:
    assert series_problem("cpu", {"site": "pangyo"}) is None
    assert series_problem("cpu", {"site": ""}) is None
    assert "at most 4096" in (series_problem("cpu", {"site": "x" * 5000}) or "")
    assert "control characters" in (series_problem("cpu", {"site": "a\nb"}) or "")
    assert "metric name" in (series_problem("m" * 300, {}) or "")
    assert "label name" in (series_problem("cpu", {"k" * 200: "v"}) or "")
    with pytest.raises(InvalidSeries, match="label 'site'"):
        SeriesCache().get("cpu", {"site": "a\x00b"}, (("site", "a\x00b"),), MetricKind.GAUGE)


def test_name_caches_are_bounded_in_characters() -> None:
    names = NameMapper()
    for i in range(40):
        names.metric(f"m{i}" + "x" * (1 << 20), "f")
        names.label(f"k{i}" + "y" * (1 << 20))
    held = sum(len(m) + len(f) for m, f in names._metrics) + sum(map(len, names._labels))
    assert held <= 8 << 20
