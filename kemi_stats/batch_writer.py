"""SampleBatch records written straight to protobuf bytes, a series' fields encoded once.

:func:`kemi_stats.codec.encode_batch` builds protobuf objects for every sample: its
metric, each label and its kind, again for every record. A pushing agent sends the
same series every interval, so the aggregator encodes a series' fields once
(:class:`PreparedSeries`, kept in a :class:`SeriesCache`) and writes each sample as
those bytes plus its value. The bytes decode exactly as ``encode_batch``'s do
(``kemi_stats/proto/kemi.proto``; a test holds the two equal), so readers see no
difference.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Iterable, Iterator

from kemi_stats.codec import KIND_TO_PB, SCHEMA_VERSION, SOURCE_TO_PB
from kemi_stats.model import MetricKind, Source
from kemi_stats.names import check_series

__all__ = [
    "PreparedSeries", "SeriesCache", "encode_batches", "encode_prepared_batch",
    "pack_double",
]  # fmt: skip

_DOUBLE = struct.Struct("<d")
#: a double as a protobuf writes it (little-endian IEEE 754)
pack_double = _DOUBLE.pack
_U64_MAX = (1 << 64) - 1


def _varint(n: int) -> bytes:
    """Protobuf base-128 varint of ``n`` (negative int64 as its 64-bit two's complement)."""
    if n < 0:
        n += 1 << 64
    if n < 0x80:
        return bytes((n,))
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _string(tag: int, text: str) -> bytes:
    data = text.encode()
    return bytes((tag,)) + _varint(len(data)) + data


class PreparedSeries:
    """A series (metric, labels, kind) with its Sample fields encoded once.

    ``identity`` names the series within a batch (metric and labels, not the kind):
    the last sample of a series at one time wins, as in InfluxDB.
    """

    __slots__ = ("float_head", "identity", "kind", "rest")

    def __init__(self, metric: str, labels: dict[str, str], kind: MetricKind) -> None:
        fields = [_string(0x0A, metric)]
        for key in sorted(labels):
            entry = _string(0x0A, key) + _string(0x12, labels[key])
            fields.append(b"\x2a" + _varint(len(entry)) + entry)
        self.identity = b"".join(fields)
        self.kind = kind
        number = int(KIND_TO_PB[kind])
        #: the Sample's fields but the value: metric, labels and (unless gauge) kind
        self.rest = self.identity + (b"\x30" + _varint(number) if number else b"")
        #: everything before a float value's 8 bytes: field tag, length, fields, value tag
        self.float_head = b"\x32" + _varint(len(self.rest) + 9) + self.rest + b"\x11"

    def sample(self, value: float | int) -> bytes:
        """The encoded ``samples`` entry of this series with ``value``."""
        if type(value) is not int:
            return self.float_head + pack_double(value)
        if 0 <= value <= _U64_MAX:
            field = b"\x18" + _varint(value)
        else:
            field = b"\x20" + _varint((value << 1) ^ (value >> 63))  # sint64: zigzag
        body = self.rest + field
        return b"\x32" + _varint(len(body)) + body


class SeriesCache:
    """Prepared series by (metric, label key, kind): up to ``size`` of them, ``max_bytes``.

    A new series is checked against the name rules' lengths and label values
    (:func:`kemi_stats.names.check_series`: InvalidSeries), once. When full it starts over (the next requests prepare their series again): simple,
    and a fleet's series set is stable between intervals. The byte bound keeps long
    label values from growing the cache past what its entry count suggests.
    """

    __slots__ = ("_bytes", "_series", "max_bytes", "size")

    def __init__(self, size: int = 200_000, max_bytes: int = 64 << 20) -> None:
        self.size = size
        self.max_bytes = max_bytes
        self._bytes = 0
        self._series: dict[tuple[str, object, MetricKind], PreparedSeries] = {}

    def get(
        self, metric: str, labels: dict[str, str], label_key: object, kind: MetricKind
    ) -> PreparedSeries:
        key = (metric, label_key, kind)
        series = self._series.get(key)
        if series is None:
            check_series(metric, labels)
            series = PreparedSeries(metric, labels, kind)
            # the encoded bytes, about twice over: the key's strings hold them too
            cost = 2 * len(series.float_head)
            if len(self._series) >= self.size or self._bytes + cost > self.max_bytes:
                self._series.clear()
                self._bytes = 0
            self._series[key] = series
            self._bytes += cost
        return series

    def __len__(self) -> int:
        return len(self._series)


def encode_prepared_batch(
    resource_id: str,
    time_ms: int,
    source: Source,
    samples: Iterable[bytes],
    config_revision: int = 0,
) -> bytes:
    """A protobuf ``SampleBatch`` (no batch labels) of encoded ``samples``
    (:meth:`PreparedSeries.sample`), as ``encode_batch`` would write it."""
    parts = [_batch_head(resource_id), _batch_fields(time_ms, source, config_revision)]
    parts.extend(samples)
    return b"".join(parts)


def encode_batches(
    groups: Iterable[tuple[tuple[str, int], Iterable[bytes]]],
    source: Source,
    config_revision: int = 0,
) -> Iterator[tuple[tuple[str, int], bytes]]:
    """``encode_prepared_batch`` of many ((resource, time), encoded samples) groups.

    The per-batch work a push of thousands of resources repeats thousands of times,
    done once: the fields of each time, the loop's names.
    """
    fields_at: dict[int, bytes] = {}
    head = _batch_head
    join = b"".join
    for key, samples in groups:
        resource, time_ms = key
        fields = fields_at.get(time_ms)
        if fields is None:
            fields = fields_at[time_ms] = _batch_fields(time_ms, source, config_revision)
        yield key, join((head(resource), fields, *samples))


@functools.lru_cache(maxsize=65536)
def _batch_head(resource_id: str) -> bytes:
    """A batch's schema version and resource id: the same for each of a resource's batches."""
    return b"\x08" + _varint(SCHEMA_VERSION) + _string(0x12, resource_id)


@functools.lru_cache(maxsize=1024)
def _batch_fields(time_ms: int, source: Source, config_revision: int) -> bytes:
    """A batch's time, source and revision: the same for every batch of a request."""
    out = b"\x18" + _varint(time_ms) if time_ms else b""
    out += b"\x20" + _varint(int(SOURCE_TO_PB[source]))
    if config_revision:
        out += b"\x38" + _varint(config_revision)
    return out
