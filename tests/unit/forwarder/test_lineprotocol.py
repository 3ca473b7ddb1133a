"""The line encoder follows the one mapping rule and escapes like the line-protocol spec."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st
from influxdb_client import Point

from forwarder.lineprotocol import BatchEncoder, EncodeStats, escape_key
from kemi_stats.model import MetricKind, Sample, SampleBatch, Source


def _encode(batch: SampleBatch, measurement: str = "") -> tuple[list[str], EncodeStats]:
    out: list[str] = []
    stats = EncodeStats()
    BatchEncoder(measurement).encode(batch, out, stats)
    return out, stats


def _batch(*samples: Sample, labels: dict[str, str] | None = None) -> SampleBatch:
    return SampleBatch("net:core-sw-3", 1_700_000_000_123, Source.SNMP, list(samples), labels or {})


def test_metric_is_field_resource_and_labels_are_sorted_tags() -> None:
    out, stats = _encode(
        _batch(
            Sample("ifHCInOctets", 2**64 - 1, {"ifName": "Gi0/1"}, MetricKind.COUNTER64),
            Sample("ifHCOutOctets", 7, {"ifName": "Gi0/1"}, MetricKind.COUNTER64),
            Sample("cpu", 12.5),
            labels={"site": "pangyo"},
        )
    )
    assert out == [
        ",ifName=Gi0/1,resource=net:core-sw-3,site=pangyo"
        " ifHCInOctets=18446744073709551615u,ifHCOutOctets=7u 1700000000123",
        ",resource=net:core-sw-3,site=pangyo cpu=12.5 1700000000123",
    ]
    assert (stats.points, stats.lines) == (3, 2)


def test_measurement_prefix_for_influxdb() -> None:
    out, _ = _encode(_batch(Sample("cpu", 1)), measurement="kemi")
    assert out == ["kemi,resource=net:core-sw-3 cpu=1.0 1700000000123"]


def test_value_types_gauges_are_floats_counters_unsigned() -> None:
    out, stats = _encode(
        _batch(
            Sample("g_int", 5),
            Sample("g_big", 2**64 - 1),
            Sample("c32", 4294967295, kind=MetricKind.COUNTER32),
            Sample("c_float_integral", 3.0, kind=MetricKind.COUNTER64),
            Sample("c_negative", -1, kind=MetricKind.COUNTER64),
            Sample("c_fraction", 1.5, kind=MetricKind.COUNTER32),
        )
    )
    fields = out[0].split(" ")[1].split(",")
    assert fields == [
        "g_int=5.0",
        "g_big=1.8446744073709552e+19",
        "c32=4294967295u",
        "c_float_integral=3u",
        "c_negative=-1.0",
        "c_fraction=1.5",
    ]
    assert stats.points == 6


def test_non_finite_and_unnamed_samples_are_skipped_and_counted() -> None:
    out, stats = _encode(
        _batch(Sample("a", math.nan), Sample("b", math.inf), Sample("", 1.0), Sample("ok", 2.0))
    )
    assert out == [",resource=net:core-sw-3 ok=2.0 1700000000123"]
    assert stats.skipped == {"not_finite": 2, "empty_metric": 1}


def test_batch_of_only_skipped_samples_gives_no_line() -> None:
    out, stats = _encode(_batch(Sample("a", math.nan)))
    assert out == [] and stats.points == 0


def test_sample_labels_override_batch_labels_and_resource_wins() -> None:
    out, _ = _encode(
        _batch(
            Sample("x", 1.0, {"site": "gasan", "resource": "spoofed", "empty": ""}),
            labels={"site": "pangyo"},
        )
    )
    assert out == [",resource=net:core-sw-3,site=gasan x=1.0 1700000000123"]


def test_escaping_of_special_characters() -> None:
    out, _ = _encode(
        SampleBatch("host:a b", 1, Source.PUSH, [Sample("m,1=x y", 1.0, {"k=1": "v,a\\l ue"})])
    )
    assert out == [",k\\=1=v\\,a\\\\l\\ ue,resource=host:a\\ b m\\,1\\=x\\ y=1.0 1"]


_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\\"), min_size=1
)


@given(_text, _text, _text)
def test_same_line_as_influxdb_client_point(metric: str, key: str, value: str) -> None:
    """Without backslashes (which we escape and influxdb-client does not) the lines agree."""
    v = 1.5
    batch = SampleBatch("host:x", 1234, Source.PUSH, [Sample(metric, v, {key: value})])
    out, _ = _encode(batch, measurement="kemi")
    tags = {key: value, "resource": "host:x"}
    point = Point("kemi").field(metric, v).time(1234, write_precision="ms")
    for k in sorted(tags):
        point.tag(k, tags[k])
    assert out == [point.to_line_protocol()]


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_float_text_reads_back_exactly(v: float) -> None:
    out, _ = _encode(_batch(Sample("g", v)))
    assert float(out[0].split(" ")[1].removeprefix("g=")) == v


def test_escape_key_table() -> None:
    assert escape_key("a b,c=d\\e\nf") == "a\\ b\\,c\\=d\\\\e\\nf"
