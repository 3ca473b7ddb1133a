"""The wire codec: model records <-> protobuf bytes (Kafka values), and a JSON view.

The schema is ``kemi_stats/proto/kemi.proto``; its generated module is committed.
Readers accept any record whose ``schema_version`` is at most :data:`SCHEMA_VERSION`
(0 means a writer that predates the field) and reject newer ones with a
:class:`~kemi_stats.errors.CodecError` rather than guess.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Container
from typing import Any, TypeVar

import orjson
from google.protobuf.message import DecodeError

from kemi_stats.errors import CodecError
from kemi_stats.model import AlertEvent, MetricKind, PollJob, Sample, SampleBatch, Source
from kemi_stats.proto import kemi_pb2 as pb

__all__ = [
    "KAFKA_MAX_REQUEST_BYTES",
    "KIND_TO_PB",
    "MAX_RECORD_BYTES",
    "SCHEMA_VERSION",
    "SOURCE_TO_PB",
    "alert_from_json",
    "alert_to_json",
    "decode_alert",
    "decode_batch",
    "decode_batch_reading",
    "decode_job",
    "decode_record",
    "encode_alert",
    "encode_batch",
    "encode_batch_records",
    "encode_job",
    "record_to_json",
]

SCHEMA_VERSION = 1

KIND_TO_PB = {
    MetricKind.GAUGE: pb.GAUGE,
    MetricKind.COUNTER32: pb.COUNTER32,
    MetricKind.COUNTER64: pb.COUNTER64,
    MetricKind.FLOAT_COUNTER: pb.FLOAT_COUNTER,
}
_KIND_FROM_PB = {v: k for k, v in KIND_TO_PB.items()}
SOURCE_TO_PB = {
    Source.SNMP: pb.SNMP,
    Source.PUSH: pb.PUSH,
    Source.CALC: pb.CALC,
    Source.SCRAPE: pb.SCRAPE,
}
_SOURCE_FROM_PB = {v: k for k, v in SOURCE_TO_PB.items()}
assert pb.GAUGE == 0  # _decode_batch tells a counter by its kind's truth
_U64_MAX = (1 << 64) - 1


_Msg = TypeVar("_Msg", pb.SampleBatch, pb.PollJob, pb.AlertEvent)


def _parse(msg: _Msg, data: bytes, article: str, required: str) -> _Msg:
    """Parse ``data`` into ``msg``: a record this reader understands, with ``required`` set."""
    what = type(msg).__name__
    try:
        msg.ParseFromString(data)
    except DecodeError as exc:
        raise CodecError(f"not {article} {what}: {exc}") from exc
    if msg.schema_version > SCHEMA_VERSION:
        raise CodecError(
            f"{what}: schema_version {msg.schema_version} is newer than this reader"
            f" ({SCHEMA_VERSION})"
        )
    if not getattr(msg, required):
        raise CodecError(f"{what}: {required} is empty")
    return msg


def encode_batch(batch: SampleBatch) -> bytes:
    """Encode a batch as a protobuf ``SampleBatch``."""
    msg = pb.SampleBatch(
        schema_version=SCHEMA_VERSION,
        resource_id=batch.resource_id,
        time_ms=batch.time_ms,
        source=SOURCE_TO_PB[batch.source],
        labels=batch.labels,
        config_revision=batch.config_revision,
    )
    add = msg.samples.add
    gauge = MetricKind.GAUGE
    for s in batch.samples:
        m = add(metric=s.metric)
        v = s.value
        if type(v) is int:
            if 0 <= v <= _U64_MAX:
                m.unsigned = v
            else:
                m.signed = v
        else:
            m.real = float(v)
        if s.labels:
            into = m.labels  # item by item: the map's update() is the slow generic one
            for k, lv in s.labels.items():
                into[k] = lv
        if s.kind is not gauge:
            m.kind = KIND_TO_PB[s.kind]
    return msg.SerializeToString()


#: Kafka's default record limit (``message.max.bytes`` is 1,048,588), for producers
KAFKA_MAX_REQUEST_BYTES = 1 << 20
#: the largest record value kemi-stats writes: room left for the key and the framing
MAX_RECORD_BYTES = 1_000_000


def encode_batch_records(batch: SampleBatch, max_bytes: int = MAX_RECORD_BYTES) -> list[bytes]:
    """``batch`` encoded as one record value, or as several batches of the same resource
    and time, split by sample, when one would be larger than ``max_bytes``.

    A single sample larger than ``max_bytes`` is still written alone.
    """
    value = encode_batch(batch)
    if len(value) <= max_bytes or len(batch.samples) < 2:
        return [value]
    half = len(batch.samples) // 2
    first = dataclasses.replace(batch, samples=batch.samples[:half])
    rest = dataclasses.replace(batch, samples=batch.samples[half:])
    return encode_batch_records(first, max_bytes) + encode_batch_records(rest, max_bytes)


def decode_batch(data: bytes) -> SampleBatch:
    """Decode protobuf bytes into a :class:`SampleBatch`; raise CodecError if they are not one."""
    return _decode_batch(data, None)[0]


def decode_batch_reading(
    data: bytes, metrics: Container[str], *, counters: bool = False
) -> tuple[SampleBatch, int]:
    """:func:`decode_batch` for a reader of some metrics: only the samples named in
    ``metrics`` (and with ``counters``, every sample of a counter kind); and how many
    samples the record held.

    A reader that acts on a few metrics skips most samples of a record before they cost
    a :class:`Sample` (the calculator and the alert evaluator: ``bench/RESULTS.md``,
    pipeline). A skipped sample is not checked: one of a kind this reader does not know
    fails the record only where it is read.
    """
    return _decode_batch(data, metrics, counters)


def _decode_batch(
    data: bytes, metrics: Container[str] | None, counters: bool = False
) -> tuple[SampleBatch, int]:
    msg = _parse(pb.SampleBatch(), data, "a", "resource_id")
    samples: list[Sample] = []
    add = samples.append
    kinds = _KIND_FROM_PB
    held = msg.samples
    for s in held:
        metric = s.metric
        if metrics is not None and metric not in metrics and not (counters and s.kind):
            continue  # (a kind other than 0, GAUGE, is a counter's)
        which = s.WhichOneof("value")
        value: float | int = (
            s.real if which == "real" else s.unsigned if which == "unsigned" else s.signed
        )
        kind = kinds.get(s.kind)
        if kind is None:
            raise CodecError(f"SampleBatch: sample {metric!r} has unknown kind {s.kind}")
        labels = s.labels
        # most samples have no labels: an empty map costs no copy (a third of the decode)
        add(Sample(metric, value, dict(labels) if labels else {}, kind))
    batch = SampleBatch(
        resource_id=msg.resource_id,
        time_ms=msg.time_ms,
        source=_SOURCE_FROM_PB.get(msg.source, Source.PUSH),
        samples=samples,
        labels=dict(msg.labels) if msg.labels else {},
        config_revision=msg.config_revision,
    )
    return batch, len(held)


def encode_job(job: PollJob) -> bytes:
    """Encode a poll job."""
    return pb.PollJob(
        schema_version=SCHEMA_VERSION,
        target=job.target,
        profiles=job.profiles,
        scheduled_ms=job.scheduled_ms,
        deadline_ms=job.deadline_ms,
        config_revision=job.config_revision,
        sequence=job.sequence,
    ).SerializeToString()


def decode_job(data: bytes) -> PollJob:
    """Decode a poll job; raise CodecError if the bytes are not one."""
    msg = _parse(pb.PollJob(), data, "a", "target")
    return PollJob(
        target=msg.target,
        profiles=list(msg.profiles),
        scheduled_ms=msg.scheduled_ms,
        deadline_ms=msg.deadline_ms,
        config_revision=msg.config_revision,
        sequence=msg.sequence,
    )


_ALERT_FIELDS = (
    "fingerprint", "rule", "status", "severity", "resource_id", "metric", "value",
    "threshold", "starts_at_ms", "ends_at_ms", "event_time_ms", "silenced",
    "config_revision", "reason",
)  # fmt: skip


def encode_alert(event: AlertEvent) -> bytes:
    """Encode an alert transition."""
    msg = pb.AlertEvent(schema_version=SCHEMA_VERSION)
    for name in _ALERT_FIELDS:
        setattr(msg, name, getattr(event, name))
    msg.labels.update(event.labels)
    msg.annotations.update(event.annotations)
    msg.receivers.extend(event.receivers)
    msg.group_by.extend(event.group_by)
    return msg.SerializeToString()


def decode_alert(data: bytes) -> AlertEvent:
    """Decode an alert transition; raise CodecError if the bytes are not one."""
    msg = _parse(pb.AlertEvent(), data, "an", "fingerprint")
    kwargs: dict[str, Any] = {name: getattr(msg, name) for name in _ALERT_FIELDS}
    return AlertEvent(
        labels=dict(msg.labels),
        annotations=dict(msg.annotations),
        receivers=list(msg.receivers),
        group_by=list(msg.group_by),
        **kwargs,
    )


def batch_to_dict(batch: SampleBatch) -> dict[str, Any]:
    """The JSON view of a batch, as ``kemi-stats tail`` prints it."""
    return {
        "resource_id": batch.resource_id,
        "time_ms": batch.time_ms,
        "source": batch.source.value,
        "labels": batch.labels,
        "config_revision": batch.config_revision,
        "samples": [
            {"metric": s.metric, "value": s.value, "kind": s.kind.value, "labels": s.labels}
            for s in batch.samples
        ],
    }


def batch_from_dict(doc: dict[str, Any]) -> SampleBatch:
    """Build a batch from its JSON view."""
    return SampleBatch(
        resource_id=doc["resource_id"],
        time_ms=int(doc["time_ms"]),
        source=Source(doc.get("source", "push")),
        labels=dict(doc.get("labels", {})),
        config_revision=int(doc.get("config_revision", 0)),
        samples=[
            Sample(
                s["metric"],
                s["value"],
                dict(s.get("labels", {})),
                MetricKind(s.get("kind", "gauge")),
            )
            for s in doc.get("samples", [])
        ],
    )


def alert_to_json(event: AlertEvent) -> dict[str, Any]:
    """The JSON view of an alert transition."""
    return {name: getattr(event, name) for name in AlertEvent.__dataclass_fields__}


def alert_from_json(doc: dict[str, Any]) -> AlertEvent:
    """Build an alert transition from its JSON view."""
    return AlertEvent(**doc)


def decode_record(topic: str, data: bytes) -> dict[str, Any]:
    """Decode a record of any kemi topic into its JSON view (for ``kemi-stats tail``)."""
    if topic.startswith("kemi.alerts"):
        return alert_to_json(decode_alert(data))
    if topic.startswith("kemi.poll-jobs"):
        job = decode_job(data)
        return {name: getattr(job, name) for name in PollJob.__dataclass_fields__}
    return batch_to_dict(decode_batch(data))


def record_to_json(topic: str, data: bytes) -> str:
    """One JSON line for a record of a kemi topic."""
    return orjson.dumps(decode_record(topic, data)).decode()
