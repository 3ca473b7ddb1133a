"""A record of a known shape is written from its bytes exactly as the ordinary path writes it."""

from __future__ import annotations

import dataclasses
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forwarder.lineprotocol import BatchEncoder, EncodeStats
from forwarder.shapes import NoShape, Shapes, compile_shape
from kemi_stats.codec import decode_batch, encode_batch
from kemi_stats.model import MetricKind, Sample, SampleBatch, Source

T0 = 1_796_000_000_000
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=8)
LABELS = st.dictionaries(TEXT, TEXT, max_size=3)
KINDS = st.sampled_from(list(MetricKind))
VALUES = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(0, 2**64 - 1),
    st.integers(-(2**63), -1),
)


def _ordinary(value: bytes, encoder: BatchEncoder) -> str:
    out: list[str] = []
    encoder.encode(decode_batch(value), out, EncodeStats())
    return "\n".join(out)


def _learned(batch: SampleBatch) -> tuple[Shapes, bytes]:
    shapes = Shapes(BatchEncoder(""), 1 << 20)
    value = encode_batch(batch)
    shapes.learn(batch.key, value, decode_batch(value))
    return shapes, value


@st.composite
def batches(draw: st.DrawFn) -> tuple[SampleBatch, SampleBatch]:
    """A batch and a later one of the same resource, metrics, labels and kinds."""
    n = draw(st.integers(1, 6))
    samples = [Sample(draw(TEXT), draw(VALUES), draw(LABELS), draw(KINDS)) for _ in range(n)]
    first = SampleBatch(draw(TEXT) or "r", T0, Source.SNMP, samples, draw(LABELS))
    later = dataclasses.replace(
        first,
        time_ms=T0 + draw(st.integers(0, 10**6)),
        samples=[dataclasses.replace(s, value=draw(VALUES)) for s in samples],
    )
    return first, later


@settings(max_examples=300, deadline=None)
@given(batches())
def test_a_shape_renders_what_the_ordinary_path_writes_or_leaves_the_record_to_it(
    pair: tuple[SampleBatch, SampleBatch],
) -> None:
    first, later = pair
    shapes, _ = _learned(first)
    value = encode_batch(later)
    rendered = shapes.render(later.key, value)
    if rendered is not None:
        text, lines, points = rendered
        assert text == _ordinary(value, BatchEncoder(""))
        assert lines == text.count("\n") + 1
        assert points == len(later.samples)
    elif all(_plain(a) and _plain(b) for a, b in zip(first.samples, later.samples, strict=True)):
        # what the fast path writes, in values of the same encoded length: it must render
        sizes = [
            _size(a.value) == _size(b.value)
            for a, b in zip(first.samples, later.samples, strict=True)
        ]
        doubles = sum(s.value for s in later.samples if type(s.value) is float)
        # (a sum of doubles past the float range is left to the ordinary path too)
        assert not all(sizes) or not math.isfinite(doubles), "a plain record went the slow way"


def _plain(s: Sample) -> bool:
    """Whether the fast path writes this sample: a finite gauge double or an unsigned counter."""
    if not s.metric:
        return False
    if type(s.value) is int:
        return 0 <= s.value < 2**63
    return s.kind not in (MetricKind.COUNTER32, MetricKind.COUNTER64) and math.isfinite(s.value)


def _size(value: float | int) -> tuple[type, int]:
    """How a value is encoded: its type and its length in bytes."""
    return type(value), 8 if type(value) is float else len(_varint(int(value)))


def _gauges(values: list[float], resource: str = "host:web-1") -> SampleBatch:
    samples = [Sample(f"m{i}", v, {"cpu": str(i)}) for i, v in enumerate(values)]
    return SampleBatch(resource, T0, Source.PUSH, samples, {"site": "pangyo"})


def _counters(values: list[int]) -> SampleBatch:
    samples = [
        Sample("ifHCInOctets", v, {"ifName": f"Gi0/{i}"}, MetricKind.COUNTER64)
        for i, v in enumerate(values)
    ]
    return SampleBatch("net:sw-1", T0, Source.SNMP, samples, {"site": "pangyo"})


def test_the_next_interval_of_a_resource_takes_the_fast_path() -> None:
    shapes, _ = _learned(_counters([10**12, 5, 2**63 - 1]))
    later = dataclasses.replace(_counters([10**12 + 999, 6, 2**63 - 2]), time_ms=T0 + 60_000)
    value = encode_batch(later)
    rendered = shapes.render(later.key, value)
    assert rendered is not None
    assert rendered[0] == _ordinary(value, BatchEncoder(""))
    assert rendered[0].splitlines()[0] == (
        ",ifName=Gi0/0,resource=net:sw-1,site=pangyo ifHCInOctets=1000000000999u 1796000060000"
    )


def test_a_record_that_differs_in_anything_but_values_is_not_rendered_from_the_shape() -> None:
    shapes, _ = _learned(_gauges([1.5, 2.5]))
    for other in (
        _gauges([1.5, 2.5], resource="host:web-2"),  # same length, another resource
        dataclasses.replace(_gauges([1.5, 2.5]), labels={"site": "jejuu"}),
        _gauges([1.5, float("nan")]),  # InfluxDB takes no NaN: the ordinary path skips it
        _gauges([1.5, math.inf]),
    ):
        assert shapes.render(other.key, encode_batch(other)) is None


def test_a_varint_whose_bytes_no_longer_end_where_the_shapes_did_is_not_read() -> None:
    batch = _counters([10**12])
    shapes, value = _learned(batch)
    start = value.index(b"\x18" + _varint(10**12)) + 1  # the counter's unsigned field
    mangled = bytearray(value)
    mangled[start + 1] &= 0x7F  # the varint now ends after its second byte
    assert shapes.render(batch.key, value) is not None
    assert shapes.render(batch.key, bytes(mangled)) is None


def _varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


@pytest.mark.parametrize(
    "sample",
    [
        Sample("temp", -4, {}),  # a signed value
        Sample("ifInOctets", 5.0, {}, MetricKind.COUNTER32),  # a counter sent as a double
        Sample("", 1.0, {}),  # no metric name
        Sample("ifHCInOctets", 2**63, {}, MetricKind.COUNTER64),  # bits upb would drop
    ],
)
def test_records_the_fast_path_does_not_write_exactly_have_no_shape(sample: Sample) -> None:
    batch = SampleBatch("r", T0, Source.PUSH, [sample])
    value = encode_batch(batch)
    with pytest.raises(NoShape):
        compile_shape(value, decode_batch(value), BatchEncoder(""))


def test_a_percent_sign_in_a_label_is_written_as_it_is() -> None:
    batch = dataclasses.replace(_gauges([1.0]), labels={"path": "/var/100%"})
    shapes, _ = _learned(batch)
    later = dataclasses.replace(batch, time_ms=T0 + 1, samples=[Sample("m0", 2.0, {"cpu": "0"})])
    rendered = shapes.render(later.key, encode_batch(later))
    assert rendered is not None and "path=/var/100%" in rendered[0]
    assert rendered[0] == _ordinary(encode_batch(later), BatchEncoder(""))


def test_shapes_are_bounded_and_a_resource_still_sending_keeps_its_shape() -> None:
    shapes = Shapes(BatchEncoder(""), budget=8_000)
    keep = _gauges([1.0], resource="keep")
    for i in range(40):
        for batch in (keep, _gauges([1.0], resource=f"gone-{i}")):
            value = encode_batch(batch)
            if shapes.render(batch.key, value) is None:
                shapes.learn(batch.key, value, decode_batch(value))
        assert shapes.held_bytes <= 8_000
    assert 2 < len(shapes) < 20
    assert shapes.render(keep.key, encode_batch(keep)) is not None


def test_poller_batches_with_integer_gauges_take_the_fast_path() -> None:
    batch = _counters([10**12, 7])
    batch.samples += [Sample("snmp_up", 1), Sample("snmp_values", 2)]  # ints, kind gauge
    shapes, _ = _learned(batch)
    later = dataclasses.replace(batch, time_ms=T0 + 60_000)
    rendered = shapes.render(later.key, encode_batch(later))
    assert rendered is not None and "snmp_up=1.0,snmp_values=2.0" in rendered[0]
    assert rendered[0] == _ordinary(encode_batch(later), BatchEncoder(""))


def test_a_record_without_a_shape_is_not_compiled_again_each_interval() -> None:
    batch = SampleBatch("r", T0, Source.PUSH, [Sample("temp", -4, {})])
    shapes, value = _learned(batch)
    tries = shapes._window_tries
    for _ in range(5):
        assert shapes.render(batch.key, value) is None
        shapes.learn(batch.key, value, batch)
    assert shapes._window_tries == tries == 1


def test_a_large_record_stays_on_the_ordinary_path_and_never_stops_the_forwarder() -> None:
    big = _gauges([float(i) for i in range(3000)])
    shapes, value = _learned(big)
    assert shapes.render(big.key, value) is None
    wide = _gauges([float(i) for i in range(500)])  # under the bounds: long generated checks
    shapes, value = _learned(wide)
    assert shapes.render(wide.key, value) is not None


@settings(max_examples=500, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=4))
def test_bytes_changed_anywhere_render_as_the_ordinary_path_reads_them_or_not_at_all(
    changes: list[tuple[int, int]],
) -> None:
    batch = _counters([10**12, 2**62, 3])
    batch.samples += [Sample("cpu", 0.25), Sample("snmp_up", 1)]
    shapes, value = _learned(batch)
    mangled = bytearray(value)
    for at, byte in changes:
        mangled[at % len(mangled)] = byte
    rendered = shapes.render(batch.key, bytes(mangled))
    if rendered is not None:
        assert rendered[0] == _ordinary(bytes(mangled), BatchEncoder(""))
