"""The wire codec round-trips every record and rejects what it cannot read."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kemi_stats.codec import (
    SCHEMA_VERSION,
    batch_from_dict,
    batch_to_dict,
    decode_alert,
    decode_batch,
    decode_batch_reading,
    decode_job,
    encode_alert,
    encode_batch,
    encode_batch_records,
    encode_job,
    record_to_json,
)
from kemi_stats.errors import CodecError
from kemi_stats.model import AlertEvent, MetricKind, PollJob, Sample, SampleBatch, Source
from kemi_stats.proto import kemi_pb2 as pb

labels = st.dictionaries(st.text(min_size=1, max_size=8), st.text(max_size=8), max_size=3)
values = st.one_of(
    st.floats(allow_nan=False),
    st.integers(min_value=0, max_value=2**64 - 1),
    st.integers(min_value=-(2**63), max_value=-1),
)
samples = st.builds(
    Sample, st.text(min_size=1, max_size=20), values, labels, st.sampled_from(MetricKind)
)
batches = st.builds(
    SampleBatch,
    st.text(min_size=1, max_size=30),
    st.integers(min_value=0, max_value=2**62),
    st.sampled_from(Source),
    st.lists(samples, max_size=10),
    labels,
    st.integers(min_value=0, max_value=2**40),
)


@given(batches)
def test_batch_round_trips(batch: SampleBatch) -> None:
    assert decode_batch(encode_batch(batch)) == batch


@given(batches)
def test_json_view_round_trips(batch: SampleBatch) -> None:
    assert batch_from_dict(batch_to_dict(batch)) == batch


def test_counter64_keeps_full_precision() -> None:
    b = SampleBatch("net:sw1", 1, Source.SNMP, [Sample("c", 2**64 - 1, kind=MetricKind.COUNTER64)])
    assert decode_batch(encode_batch(b)).samples[0].value == 2**64 - 1


def test_newer_schema_is_rejected_by_name() -> None:
    data = pb.SampleBatch(schema_version=SCHEMA_VERSION + 1, resource_id="x").SerializeToString()
    with pytest.raises(CodecError, match="schema_version 2 is newer"):
        decode_batch(data)


def test_garbage_is_a_codec_error() -> None:
    with pytest.raises(CodecError):
        decode_batch(b"\xff\xff\xff\xff")
    with pytest.raises(CodecError, match="resource_id is empty"):
        decode_batch(b"")


def test_a_sample_of_a_kind_this_reader_does_not_know_is_a_codec_error() -> None:
    msg = pb.SampleBatch(schema_version=SCHEMA_VERSION, resource_id="x")
    msg.samples.add(metric="m", real=1.0, kind=9)  # an open proto3 enum keeps unknown numbers
    with pytest.raises(CodecError, match="sample 'm' has unknown kind 9"):
        decode_batch(msg.SerializeToString())


def test_jobs_and_alerts_round_trip() -> None:
    job = PollJob("sw1", ["system", "if-mib"], 1000, 11000, 7, 3)
    assert decode_job(encode_job(job)) == job
    alert = AlertEvent("fp1", "cpu-high", "firing", "critical", "host:a", "cpu", {"site": "p"},
                       {"summary": "hot"}, 95.0, 90.0, 1, 0, 2, ["ops"], False, 9, ["site"], "")  # fmt: skip
    assert decode_alert(encode_alert(alert)) == alert


def test_tail_json_names_fields() -> None:
    b = SampleBatch("host:a", 5, Source.PUSH, [Sample("cpu", 1.5)])
    assert record_to_json("kemi.metrics", encode_batch(b)).startswith('{"resource_id":"host:a"')


def test_protobuf_is_smaller_than_json() -> None:
    import orjson

    b = SampleBatch(
        "host:web-01", 1_700_000_000_000, Source.SNMP,
        [Sample(f"metric_{i}", 1234.5 + i, {"ifName": f"eth{i}"}) for i in range(20)],
    )  # fmt: skip
    assert len(encode_batch(b)) < len(orjson.dumps(batch_to_dict(b))) * 0.75


def test_a_batch_over_the_record_limit_is_encoded_as_parts_of_one_resource_and_time() -> None:
    samples = [Sample("disk_used", float(i), {"part": f"p{i:05d}"}) for i in range(5000)]
    batch = SampleBatch("host:a", 1_700_000_000_000, Source.PUSH, samples, {"site": "x"})
    assert encode_batch_records(batch) == [encode_batch(batch)]
    parts = [decode_batch(v) for v in encode_batch_records(batch, max_bytes=20_000)]
    assert len(parts) > 1
    assert all(len(encode_batch(p)) <= 20_000 for p in parts)
    assert {(p.resource_id, p.time_ms, p.source) for p in parts} == {
        ("host:a", 1_700_000_000_000, Source.PUSH)
    }
    assert all(p.labels == {"site": "x"} for p in parts)
    assert [s for p in parts for s in p.samples] == samples


@given(batches, st.sets(st.text(min_size=1, max_size=20), max_size=5), st.booleans())
def test_a_reader_of_some_metrics_gets_those_in_order_and_with_counters_every_counter(
    batch: SampleBatch, wanted: set[str], counters: bool
) -> None:
    wanted |= {s.metric for s in batch.samples[:1]}  # one name at least that is there
    got, held = decode_batch_reading(encode_batch(batch), wanted, counters=counters)
    assert held == len(batch.samples)
    assert got.samples == [
        s for s in batch.samples
        if s.metric in wanted or (counters and s.kind is not MetricKind.GAUGE)
    ]  # fmt: skip
    assert (got.resource_id, got.time_ms, got.labels) == (
        batch.resource_id, batch.time_ms, batch.labels,
    )  # fmt: skip
