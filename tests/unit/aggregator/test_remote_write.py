"""remote_write bodies: resource ids by template, counter kinds, and what is dropped and counted."""

from __future__ import annotations

import math
import struct

import cramjam
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.grant import Grant
from aggregator.grouping import BatchBuilder
from aggregator.proto import remote_pb2 as pb
from aggregator.rejection import Rejection
from aggregator.remote_write import RemoteWriteParser
from aggregator.settings import AggregatorSettings
from aggregator.timestamps import TimeWindow
from kemi_stats.model import MetricKind, SampleBatch
from tests.unit.aggregator.support import make_grant

NOW_MS = 1_714_564_800_000
WINDOW = TimeWindow.around(NOW_MS, 7 * 86400, 600)
STALE = struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000002))[0]
GRANT = make_grant()


def series(name: str | None, samples: list[tuple[float, int]], **labels: str) -> pb.TimeSeries:
    ts = pb.TimeSeries()
    if name is not None:
        ts.labels.add(name="__name__", value=name)
    for k, v in labels.items():
        ts.labels.add(name=k, value=v)
    for value, t in samples:
        ts.samples.add(value=value, timestamp=t)
    return ts


def body(*ts: pb.TimeSeries, metadata: tuple[tuple[str, int], ...] = ()) -> bytes:
    req = pb.WriteRequest(timeseries=list(ts))
    for family, mtype in metadata:
        req.metadata.add(type=mtype, metric_family_name=family)
    return bytes(cramjam.snappy.compress_raw(req.SerializeToString()))


def parse(
    data: bytes, grant: Grant = GRANT, parser: RemoteWriteParser | None = None
) -> tuple[list[SampleBatch], BatchBuilder]:
    out = BatchBuilder()
    (parser or RemoteWriteParser(AggregatorSettings())).parse(data, WINDOW, out, grant)
    return out.batches(), out


def test_instance_without_port_names_the_resource_and_counters_are_floats() -> None:
    data = body(
        series("node_cpu_seconds_total", [(1234.5, NOW_MS)], instance="10.0.0.5:9100",
               job="node", cpu="0", mode="idle"),
        series("node_load1", [(0.5, NOW_MS)], instance="10.0.0.5:9100", job="node"),
    )  # fmt: skip
    (batch,), out = parse(data)
    assert batch.resource_id == "10.0.0.5" and batch.time_ms == NOW_MS
    got = {s.metric: (s.value, s.kind, s.labels) for s in batch.samples}
    assert got == {
        "node_cpu_seconds_total": (
            1234.5, MetricKind.FLOAT_COUNTER, {"job": "node", "cpu": "0", "mode": "idle"}
        ),
        "node_load1": (0.5, MetricKind.GAUGE, {"job": "node"}),
    }  # fmt: skip
    assert out.dropped == {}


def test_template_with_prefix_and_the_bad_series_dropped_and_counted() -> None:
    grant = make_grant(resource_prefix="host:", resource_template="host:{instance|noport}")
    data = body(
        series("up", [(1, NOW_MS)], instance="web-01:9100"),
        series("up", [(1, NOW_MS)], job="no-instance"),
        series(None, [(1, NOW_MS)], instance="web-01:9100"),
        series("up", [(STALE, NOW_MS), (1, NOW_MS + 15_000)], instance="web-02:9100"),
        series("x_total", [(-1, NOW_MS), (math.inf, NOW_MS)], instance="web-03:9100"),
        series("late", [(1, NOW_MS - 30 * 86400_000)], instance="web-04:9100"),
    )
    batches, out = parse(data, grant)
    assert sorted((b.resource_id, b.time_ms) for b in batches) == [
        ("host:web-01", NOW_MS),
        ("host:web-02", NOW_MS + 15_000),
    ]
    assert out.dropped == {
        "no_resource_id": 1,
        "no_metric_name": 1,
        "stale_marker": 1,
        "negative_counter": 1,
        "not_finite": 1,
        "time_out_of_window": 1,
    }
    assert any("no tag 'instance'" in note for note in out.drop_notes)
    outside = make_grant(resource_prefix="net:")
    _, out = parse(body(series("up", [(1, NOW_MS)], instance="web-01:9100")), outside)
    assert out.dropped == {"outside_prefix": 1}


def test_metadata_marks_counter_families_per_token_for_later_requests() -> None:
    parser = RemoteWriteParser(AggregatorSettings())
    parse(body(metadata=(("requests", pb.MetricMetadata.COUNTER),)), parser=parser)
    (batch,), _ = parse(body(series("requests", [(5, NOW_MS)], instance="h")), parser=parser)
    assert batch.samples[0].kind is MetricKind.FLOAT_COUNTER
    # another token has not been told: its series of that name stay gauges
    other = Grant("other", "", 0, GRANT.template, GRANT.counters)
    (batch,), _ = parse(body(series("requests", [(5, NOW_MS)], instance="h")), other, parser)
    assert batch.samples[0].kind is MetricKind.GAUGE


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (b"", "empty"),
        (bytes(cramjam.snappy.compress_raw(bytes(range(256)) * 4))[:-40], "not valid snappy"),
        (bytes(cramjam.snappy.compress_raw(b"\x0a\xff\xff\xff")), "not a remote_write"),
    ],
)
def test_malformed_bodies_are_400(data: bytes, needle: str) -> None:
    with pytest.raises(Rejection) as info:
        parse(data)
    assert info.value.status == 400 and needle in info.value.message


def test_a_series_that_does_not_decode_is_named_by_its_place_in_the_request() -> None:
    good = series("up", [(1, NOW_MS)], instance="h").SerializeToString()
    broken = _wire(1, 2, b"\x0a\x05ab")  # a label whose name runs past its end
    data = bytes(
        cramjam.snappy.compress_raw(b"".join(_wire(1, 2, t) for t in (good, good, broken)))
    )
    with pytest.raises(Rejection) as info:
        parse(data)
    assert info.value.status == 400
    assert info.value.message.startswith("series 2: does not decode"), info.value.message


def test_a_body_announcing_more_than_the_limit_is_413_before_decompressing() -> None:
    data = bytes(cramjam.snappy.compress_raw(b"\x00" * (2 << 20)))
    with pytest.raises(Rejection) as info:
        out = BatchBuilder()
        RemoteWriteParser(AggregatorSettings(max_body_bytes=1 << 20)).parse(
            data, WINDOW, out, GRANT
        )
    assert info.value.status == 413


def _wire(field: int, wire: int, payload: bytes) -> bytes:
    """One protobuf field: tag, then (for length-delimited) the length and the payload."""
    tag = bytes([field << 3 | wire])
    if wire == 2:
        return tag + _len(payload) + payload
    return tag + payload


def _len(payload: bytes) -> bytes:
    n, out = len(payload), bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def test_series_in_any_field_order_and_with_unknown_fields_read_as_protobuf_reads_them() -> None:
    labels = b"".join(
        _wire(1, 2, pb.Label(name=k, value=v).SerializeToString())
        for k, v in (("__name__", "odd_total"), ("instance", "h:1"), ("x", "y" * 200))
    )
    sample = pb.Sample(value=2.5, timestamp=NOW_MS).SerializeToString()
    zero = pb.Sample(value=0.0, timestamp=NOW_MS + 1000).SerializeToString()  # value omitted
    unknown = _wire(9, 0, b"\x01")  # a field this reader does not know, skipped
    long_sample = sample + _wire(7, 2, b"z" * 200)  # a sample longer than 127 bytes
    orders = [
        labels + _wire(2, 2, sample) + _wire(2, 2, zero) + unknown,
        _wire(2, 2, sample) + labels + _wire(2, 2, zero),  # labels after samples
        labels + _wire(2, 2, long_sample) + _wire(2, 2, zero),
    ]
    for series_bytes in orders:
        ref = pb.TimeSeries.FromString(series_bytes)
        assert [(s.value, s.timestamp) for s in ref.samples] == [
            (2.5, NOW_MS),
            (0.0, NOW_MS + 1000),
        ]
        data = bytes(cramjam.snappy.compress_raw(_wire(1, 2, series_bytes)))
        batches, out = parse(data)
        got = sorted(
            (b.time_ms, s.metric, s.value, s.labels["x"][:1]) for b in batches for s in b.samples
        )
        assert got == [(NOW_MS, "odd_total", 2.5, "y"), (NOW_MS + 1000, "odd_total", 0.0, "y")]
        assert out.dropped == {}


def test_native_histograms_are_dropped_and_counted() -> None:
    ts = series("latency", [], instance="h")
    ts.histograms.append(b"\x08\x01")
    _, out = parse(body(ts))
    assert out.dropped == {"native_histogram": 1}


def test_a_series_seen_before_is_judged_the_same_on_its_fast_path() -> None:
    """The second request of a series takes the parser's shortcut: same outcome per value."""
    parser = RemoteWriteParser(AggregatorSettings())
    labels = {"instance": "10.0.0.5:9100", "cpu": "0"}
    first, _ = parse(body(series("node_cpu_seconds_total", [(1.0, NOW_MS)], **labels),
                          series("node_load1", [(0.5, NOW_MS)], **labels)), parser=parser)  # fmt: skip
    assert sum(len(b.samples) for b in first) == 2
    cases = [
        ((2.5, NOW_MS + 1000), "written"),
        ((STALE, NOW_MS + 1000), "stale_marker"),
        ((math.inf, NOW_MS + 1000), "not_finite"),
        ((-1.0, NOW_MS + 1000), "negative_counter"),
        ((-0.0, NOW_MS + 1000), "written"),
        ((1e308, NOW_MS + 1000), "written"),  # finite, though its top byte looks like NaN's
        ((3.0, NOW_MS - 8 * 86400_000), "time_out_of_window"),
        ((3.0, NOW_MS + 3600_000), "time_out_of_window"),
    ]
    for (value, stamp), outcome in cases:
        batches, out = parse(
            body(series("node_cpu_seconds_total", [(value, stamp)], **labels)), parser=parser
        )
        if outcome == "written":
            assert out.dropped == {}, value
            [batch] = batches
            assert batch.time_ms == stamp and batch.resource_id == "10.0.0.5"
            assert [(s.metric, s.value, s.kind) for s in batch.samples] == [
                ("node_cpu_seconds_total", value, MetricKind.FLOAT_COUNTER)
            ]
        else:
            assert (batches, out.dropped) == ([], {outcome: 1}), value
    # a gauge may go below zero
    batches, out = parse(body(series("node_load1", [(-2.0, NOW_MS)], **labels)), parser=parser)
    assert [s.value for s in batches[0].samples] == [-2.0] and out.dropped == {}


def test_the_same_series_twice_in_a_request_keeps_the_last_value() -> None:
    parser = RemoteWriteParser(AggregatorSettings())
    ts = series("node_load1", [(1.0, NOW_MS)], instance="a:1")
    parse(body(ts), parser=parser)
    batches, out = parse(body(ts, series("node_load1", [(2.0, NOW_MS)], instance="a:1")),
                         parser=parser)  # fmt: skip
    assert [s.value for s in batches[0].samples] == [2.0] and out.samples == 1
    # two label sets the template makes one series (the port is not in the resource id)
    batches, out = parse(body(ts, series("node_load1", [(3.0, NOW_MS)], instance="a:2")),
                         parser=parser)  # fmt: skip
    assert [(b.resource_id, s.value) for b in batches for s in b.samples] == [("a", 3.0)]


_NAMES = ("node_cpu_seconds_total", "node_load1")
_VALUES = (0.5, -2.0, 0.0, 1e308, STALE, math.nan, math.inf)
_TIMES = (NOW_MS, NOW_MS + 1000, NOW_MS - 8 * 86400_000)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(_NAMES),
            st.integers(0, 3),  # host
            st.sampled_from(_VALUES),
            st.sampled_from(_TIMES),
            st.booleans(),  # seen before
        ),
        max_size=40,
    )
)
def test_a_parser_that_knows_the_series_writes_and_drops_as_one_that_does_not(
    request_series: list[tuple[str, int, float, int, bool]],
) -> None:
    """Known series are taken in bulk, the rest one by one, in order: the outcome is the
    same as a new parser's, which takes every series one by one."""
    warm = RemoteWriteParser(AggregatorSettings())
    seen = [series(n, [(1.0, NOW_MS)], instance=f"h{h}:1") for n, h, _, _, s in request_series if s]
    parse(body(*seen), parser=warm)
    data = body(*(series(n, [(v, t)], instance=f"h{h}:1") for n, h, v, t, _ in request_series))
    (cold_batches, cold), (warm_batches, warm_out) = parse(data), parse(data, parser=warm)

    def written(batches: list[SampleBatch]) -> set[tuple[str, int, str, str]]:
        return {
            (b.resource_id, b.time_ms, s.metric, repr(s.value)) for b in batches for s in b.samples
        }

    assert written(warm_batches) == written(cold_batches)
    assert warm_out.dropped == cold.dropped
