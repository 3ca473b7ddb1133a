"""Prometheus remote_write 1.0 (``POST /api/v1/write``) -> samples.

The body is a snappy-compressed (block format) protobuf ``WriteRequest``, as Prometheus
and vmagent send it. What happens to each part:

- **Refused whole (400)**: a body that is not snappy, or whose protobuf does not parse.
  Prometheus does not retry a 400, and nothing of the request is written.
- **Resource id**: the token's resource template over the series' labels (default
  ``{host,instance|noport,host.name}``: ``instance="10.0.0.5:9100"`` gives ``10.0.0.5``);
  the labels it used are not labels of the sample. ``__name__`` is the metric name.
- **Dropped per series and counted** (``kemi_aggregator_points_dropped_total{reason}``,
  logged with the token), the rest written: no metric name, no resource id (the template
  finds no label) or one outside the token's prefix, too many labels, native histograms.
  Prometheus would otherwise retry or drop the whole batch for one bad series.
- **Dropped per sample and counted**: stale markers (the special NaN Prometheus writes
  when a series disappears), other NaN and infinities, negative counters, times outside
  the accepted window.
- **Kinds**: ``*_total``, ``*_count``, ``*_sum``, ``*_bucket`` and the families a metadata
  request called COUNTER are float counters (they only grow and reset); all else is a
  gauge. remote_write 1.0 sends metadata in requests of their own (vmagent sends none),
  so each token's COUNTER families are remembered for ``metadata_ttl``.
"""

from __future__ import annotations

import re
import struct
import threading
import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from operator import attrgetter, itemgetter, setitem
from typing import cast

import cramjam
from google.protobuf.message import DecodeError

from aggregator.grant import Grant, ResourceError
from aggregator.grouping import BatchBuilder, GroupsAt, GroupsByStamp
from aggregator.names import NameMapper
from aggregator.proto import remote_pb2 as pb
from aggregator.rejection import invalid, over_limit
from aggregator.settings import AggregatorSettings
from aggregator.timestamps import TimeWindow
from kemi_stats.batch_writer import PreparedSeries
from kemi_stats.model import MetricKind
from kemi_stats.names import series_problem
from kemi_stats.protowire import MalformedWire as _Malformed
from kemi_stats.protowire import read_varint as _varint
from kemi_stats.protowire import skip_field as _skip

__all__ = ["REMOTE_WRITE_ENCODINGS", "RemoteWriteParser", "snappy_uncompressed_length"]

#: remote_write bodies are snappy whatever the header says; Prometheus sends ``snappy``
REMOTE_WRITE_ENCODINGS = frozenset({"snappy", "identity", ""})

_COUNTER_SUFFIXES = ("_total", "_count", "_sum", "_bucket")
_STALE_NAN_BITS = 0x7FF0000000000002
_FLOAT = MetricKind.FLOAT_COUNTER
_GAUGE = MetricKind.GAUGE
_COUNTER_TYPE = pb.MetricMetadata.COUNTER
_FAMILIES_MAX = 100_000
_GRANTS_MAX = 64
_DOUBLE = struct.Struct("<d")
_BITS = struct.Struct("<Q")


def snappy_uncompressed_length(data: bytes) -> int:
    """The uncompressed length a snappy block announces (its leading varint)."""
    length = shift = 0
    for i in range(min(len(data), 10)):
        byte = data[i]
        length |= (byte & 0x7F) << shift
        if byte < 0x80:
            return length
        shift += 7
    raise invalid("body is not snappy: no length header", expected="a snappy-compressed body")


def _is_stale(value: float) -> bool:
    return _BITS.unpack(_DOUBLE.pack(value))[0] == _STALE_NAN_BITS


def _varint_or_none(data: bytes) -> int | None:
    """The int64 varint that is all of ``data``, or None if it is not exactly one."""
    try:
        value, end = _varint(data, 0)
    except (_Malformed, IndexError):
        return None
    if end != len(data):
        return None
    return value - (1 << 64) if value >= 1 << 63 else value


def _labels_end(raw: bytes) -> int:
    """Where a TimeSeries' leading labels (field 1, as Prometheus and vmagent write) end."""
    i = 0
    n = len(raw)
    while i < n and raw[i] == 0x0A:
        length = raw[i + 1]
        if length < 0x80:
            i += 2 + length
        else:
            length, i = _varint(raw, i + 1)
            i += length
    if i > n:
        raise _Malformed("label runs past the series")
    return i


def _samples(raw: bytes, i: int) -> tuple[list[tuple[float, int]], bool] | None:
    """(value, timestamp ms) of each sample after offset ``i``, and whether native
    histograms follow; None when a label comes after the samples (decode it whole)."""
    samples: list[tuple[float, int]] = []
    histograms = False
    n = len(raw)
    while i < n:
        tag = raw[i]
        if tag == 0x12 and raw[i + 1] < 0x80:  # a sample: 1-byte tag, 1-byte length
            end = i + 2 + raw[i + 1]
            i += 2
            value = 0.0
            stamp = 0
            while i < end:
                field = raw[i]
                if field == 0x09:
                    value = _DOUBLE.unpack_from(raw, i + 1)[0]
                    i += 9
                elif field == 0x10:
                    stamp, i = _varint(raw, i + 1)
                    if stamp >= 1 << 63:
                        stamp -= 1 << 64
                else:
                    tag2, i = _varint(raw, i)
                    i = _skip(raw, tag2, i)
            if i != end:
                raise _Malformed("sample runs past its length")
            samples.append((value, stamp))
            continue
        tag, i = _varint(raw, i)
        if tag == 0x12:
            length, i = _varint(raw, i)
            samples.extend(_samples_long(raw, i, i + length))
            i += length
        elif tag == 0x0A:
            return None
        else:
            histograms = histograms or tag == 0x22
            i = _skip(raw, tag, i)
    if i != n:
        raise _Malformed("field runs past the series")
    return samples, histograms


def _samples_long(raw: bytes, i: int, end: int) -> list[tuple[float, int]]:
    """One sample whose encoding is longer than 127 bytes (unknown fields inside)."""
    value = 0.0
    stamp = 0
    while i < end:
        tag, i = _varint(raw, i)
        if tag == 0x09:
            value = _DOUBLE.unpack_from(raw, i)[0]
            i += 8
        elif tag == 0x10:
            stamp, i = _varint(raw, i)
            if stamp >= 1 << 63:
                stamp -= 1 << 64
        else:
            i = _skip(raw, tag, i)
    if i != end:
        raise _Malformed("sample runs past its length")
    return [(value, stamp)]


class _Series:
    """What a series' labels mean for one token: where its samples go.

    The prepared series' ``float_head`` is copied here: the fast path reads it for every
    sample, and one object less to reach is one cache miss less.
    """

    __slots__ = ("counter", "float_head", "prepared", "raw_name", "resource")

    def __init__(self, resource: str, raw_name: str, prepared: PreparedSeries, counter: bool):
        self.resource = resource
        self.raw_name = raw_name
        self.prepared = prepared
        self.counter = counter
        self.float_head = prepared.float_head


#: What follows a series' labels when it has one sample of a double and a 6-byte time:
#: field 2 (samples), 16 bytes long, starting with field 1 (the double). The parser
#: knows series by their labels' bytes and these, so finding a series by the bytes
#: before its sample also says the sample has the usual shape.
_SAMPLE_HEAD = b"\x12\x10\x09"


@dataclass(frozen=True, slots=True)
class _Dropped:
    """A series whose samples are dropped, and why."""

    reason: str
    note: str


class _Request:
    """What decoding one request's series needs beyond the series itself."""

    __slots__ = ("_families", "grant", "known", "out", "parser", "window")

    def __init__(
        self,
        parser: RemoteWriteParser,
        grant: Grant,
        window: TimeWindow,
        out: BatchBuilder,
        known: dict[bytes, _Series | _Dropped],
    ) -> None:
        self.parser = parser
        self.grant = grant
        self.window = window
        self.out = out
        self.known = known
        self._families: frozenset[str] | None = None

    def families(self) -> frozenset[str]:
        """The token's COUNTER families, looked up once per request."""
        if self._families is None:
            self._families = self.parser._families(self.grant.name)
        return self._families


# Where the parts of a usual series are (see _SAMPLE_HEAD): its labels and the sample's
# first three bytes, the double's 8 bytes, the time's 7 bytes (a tag and a 6-byte varint),
# and the double's top byte (sign and the exponent's high bits).
_KEY = itemgetter(slice(None, -15))
_VALUE = itemgetter(slice(-15, -7))
_TAIL = itemgetter(slice(-7, None))
_TOP = itemgetter(-8)
#: a top byte with all exponent bits set: NaN, an infinity or beyond 2**1008
_NOT_FINITE = re.compile(rb"[\x7f\xff]")
_NEGATIVE = re.compile(rb"[\x80-\xff]")
_RESOURCE = attrgetter("resource")
_FLOAT_HEAD = attrgetter("float_head")


class RemoteWriteParser:
    """Parses remote_write bodies into a :class:`BatchBuilder`; remembers COUNTER families.

    A series is recognised by its encoded labels: what they mean for a token (resource,
    name, labels, kind, or why it is dropped) is worked out once and kept, up to
    ``series_cache`` series per token, so a scrape seen every interval is cheap.
    """

    def __init__(self, settings: AggregatorSettings) -> None:
        self.max_body = settings.max_body_bytes
        self.max_labels = settings.max_labels
        self.metadata_ttl = settings.metadata_ttl
        self.series_cache = settings.series_cache
        self.series_cache_bytes = settings.series_cache_bytes
        self._cached_bytes = 0
        self._bytes_by_grant: dict[Grant, int] = {}
        self._lock = threading.Lock()
        self.names = NameMapper()
        #: token -> counter family -> when it stops being remembered (monotonic seconds)
        self._counter_families: dict[str, dict[str, float]] = {}
        #: grant -> encoded labels -> what they mean; a changed token is a new grant
        self._series: dict[Grant, dict[bytes, _Series | _Dropped]] = {}

    def parse(self, body: bytes, window: TimeWindow, out: BatchBuilder, grant: Grant) -> None:
        """Add every acceptable sample of ``body`` to ``out``; 400 for a malformed body.

        Most series are ones seen before, with one sample of a double and a 6-byte time
        (milliseconds since 1970, until 2527) after their labels. Those are found and
        checked for the whole request at once, each step a ``map`` over the series (no
        Python code runs per series), and runs of them are taken in bulk
        (:meth:`_take`). Every other series (a new one, several samples, a sample to
        drop, labels after samples) goes through :meth:`_series_slowly`, in its place
        between the runs, so a series named twice keeps its last value.
        """
        request = self._decode(body)
        # bodies parse on several threads; what a token's series mean is shared
        with self._lock:
            self._parse_request(request, window, out, grant)

    def _parse_request(
        self, request: pb.LazyWriteRequest, window: TimeWindow, out: BatchBuilder, grant: Grant
    ) -> None:
        if request.metadata and self._remember(grant.name, request.metadata):
            self._forget(grant)
        known = self._known(grant)
        raws = list(request.timeseries)
        found = list(map(known.get, map(_KEY, raws)))
        try:
            odd, stamps = self._odd_ones(raws, found, window)
        except IndexError:  # a series of fewer than 8 bytes: none is usual
            odd, stamps = range(len(raws)), {}
        ctx = _Request(self, grant, window, out, known)
        start = 0
        for i in odd:
            if i > start:
                _take(raws[start:i], cast("list[_Series]", found[start:i]), stamps, out)
            self._series_slowly(i, raws[i], ctx)
            start = i + 1
        if start < len(raws):
            run = found[start:] if start else found
            _take(raws[start:] if start else raws, cast("list[_Series]", run), stamps, out)

    @staticmethod
    def _odd_ones(
        raws: list[bytes], found: list[_Series | _Dropped | None], window: TimeWindow
    ) -> tuple[Sequence[int], dict[bytes, int]]:
        """The places of the series the bulk path cannot take, in order, and the times
        (their 7 bytes -> milliseconds) of those it can."""
        odd: set[int] = set()
        if set(map(type, found)) != {_Series}:  # new, dropped, or not the usual shape
            odd.update(i for i, series in enumerate(found) if type(series) is not _Series)
        low, high = window.low_ms, window.high_ms
        stamps: dict[bytes, int] = {}
        late = False
        for tail in set(map(_TAIL, raws)):  # most series of a request share their time
            stamp = _varint_or_none(tail[1:]) if tail[0] == 0x10 else None
            if stamp is None or not low <= stamp <= high:
                late = True
            else:
                stamps[tail] = stamp
        if late:
            odd.update(i for i, tail in enumerate(map(_TAIL, raws)) if tail not in stamps)
        tops = bytes(map(_TOP, raws))
        odd.update(match.start() for match in _NOT_FINITE.finditer(tops))
        for match in _NEGATIVE.finditer(tops):  # negative counters are dropped
            series = found[match.start()]
            if type(series) is not _Series or series.counter:
                odd.add(match.start())
        return sorted(odd), stamps

    def _series_slowly(self, number: int, raw: bytes, ctx: _Request) -> None:
        """Decode series ``number`` in full: describe it if new, drop what must be dropped."""
        out = ctx.out
        try:
            split = _labels_end(raw)
            labels_raw = raw[:split]
            key: object = labels_raw
            series = ctx.known.get(labels_raw + _SAMPLE_HEAD)
            decoded = _samples(raw, split)
            if decoded is None:  # labels after samples: not the usual order
                ts = pb.TimeSeries.FromString(raw)
                key = ts.labels
                decoded = ([(s.value, s.timestamp) for s in ts.samples], bool(ts.histograms))
                series = None
            if series is None:  # the labels themselves are decoded here, the first time
                series = self._describe(key, ctx.grant, ctx.families())
                new = True
            else:
                new = False
        except (_Malformed, IndexError, DecodeError) as exc:
            raise invalid(
                f"series {number}: does not decode: {exc or 'truncated'}",
                expected="a protobuf prometheus.TimeSeries",
            ) from None
        if new and isinstance(key, bytes):
            # the key, the prepared series' three encodings of it, and the objects around them
            self._make_room(ctx.grant, ctx.known, 4 * len(key) + 300)
            ctx.known[key + _SAMPLE_HEAD] = series
        samples, histograms = decoded
        if isinstance(series, _Dropped):
            out.drop(series.reason, series.note, max(len(samples), 1))
            return
        if histograms:
            out.drop("native_histogram", f"{series.raw_name}: native histograms are not stored")
            return
        window = ctx.window
        for value, stamp in samples:
            if value - value != 0.0:  # NaN or an infinity
                if _is_stale(value):
                    out.drop("stale_marker", f"{series.raw_name}: stale marker")
                else:
                    out.drop("not_finite", f"{series.raw_name}: {value}")
                continue
            if value < 0 and series.counter:
                out.drop("negative_counter", f"{series.raw_name}: counter value {value}")
                continue
            time_ms = stamp or window.now_ms
            late = window.problem(time_ms)
            if late:
                out.drop("time_out_of_window", f"{series.raw_name}: time {time_ms} ms {late}")
                continue
            out.put_float(out.float_group(series.resource, time_ms), series.prepared, value)

    def _describe(
        self, labels_raw: object, grant: Grant, families: frozenset[str]
    ) -> _Series | _Dropped:
        """What a series' labels mean for ``grant``."""
        if isinstance(labels_raw, bytes):
            labels_raw = pb.TimeSeries.FromString(labels_raw).labels
        labels = {label.name: label.value for label in labels_raw}  # type: ignore[attr-defined]
        raw_name = labels.pop("__name__", "")
        if not raw_name:
            return _Dropped("no_metric_name", f"a series without __name__: {_brief(labels)}")
        try:
            resource, used = grant.resource_from_tags(labels)
        except ResourceError as exc:
            reason = "outside_prefix" if exc.status == 403 else "no_resource_id"
            return _Dropped(reason, f"{raw_name}{_brief(labels)}: {exc.what}")
        label_name = self.names.label
        kept = {label_name(k): v for k, v in labels.items() if k not in used}
        if len(kept) > self.max_labels:
            return _Dropped("too_many_labels", f"{raw_name}: {len(kept)} labels")
        name = self.names.metric_name(raw_name)
        problem = series_problem(name, kept)
        if problem is not None:
            return _Dropped("invalid_series", f"{raw_name[:80]}: {problem}")
        kind = _kind(name, families)
        return _Series(resource, raw_name, PreparedSeries(name, kept, kind), kind is _FLOAT)

    def _make_room(self, grant: Grant, known: dict[bytes, _Series | _Dropped], cost: int) -> None:
        """Room for a series of about ``cost`` bytes: a token's cache starts over at
        ``series_cache`` series, every token's when all hold ``series_cache_bytes``."""
        if len(known) >= self.series_cache:
            known.clear()
            self._cached_bytes -= self._bytes_by_grant.pop(grant, 0)
        if self._cached_bytes + cost > self.series_cache_bytes:
            for each in self._series.values():
                each.clear()
            self._bytes_by_grant.clear()
            self._cached_bytes = 0
        self._cached_bytes += cost
        self._bytes_by_grant[grant] = self._bytes_by_grant.get(grant, 0) + cost

    def _forget(self, grant: Grant) -> None:
        """Drop what ``grant``'s series mean (its counter families changed)."""
        self._series.pop(grant, None)
        self._cached_bytes -= self._bytes_by_grant.pop(grant, 0)

    def _known(self, grant: Grant) -> dict[bytes, _Series | _Dropped]:
        known = self._series.get(grant)
        if known is None:
            if len(self._series) >= _GRANTS_MAX:
                self._series.clear()
                self._bytes_by_grant.clear()
                self._cached_bytes = 0
            known = self._series[grant] = {}
        return known

    def _decode(self, body: bytes) -> pb.LazyWriteRequest:
        if not body:
            raise invalid("body is empty", expected="a snappy-compressed WriteRequest")
        announced = snappy_uncompressed_length(body)
        if announced > self.max_body:
            raise over_limit(
                "decompressed body bytes",
                announced,
                self.max_body,
                "MAX_BODY_BYTES",
                "send smaller batches (max_samples_per_send)",
            )
        try:
            raw = bytes(cramjam.snappy.decompress_raw(body))
        except cramjam.DecompressionError as exc:
            raise invalid(
                f"body is not valid snappy: {exc}", expected="a snappy-compressed WriteRequest"
            ) from None
        request = pb.LazyWriteRequest()
        try:
            request.ParseFromString(raw)
        except DecodeError as exc:
            raise invalid(
                f"body is not a remote_write WriteRequest: {exc}",
                expected="a protobuf prometheus.WriteRequest",
            ) from None
        return request

    def _remember(self, token: str, metadata: object) -> bool:
        """Remember the COUNTER families; True if one was new."""
        families = self._counter_families.setdefault(token, {})
        until = time.monotonic() + self.metadata_ttl
        new = False
        for item in metadata:  # type: ignore[attr-defined]
            if item.type == _COUNTER_TYPE and item.metric_family_name:
                if len(families) >= _FAMILIES_MAX:
                    families.clear()
                new = new or item.metric_family_name not in families
                families[item.metric_family_name] = until
        return new

    def _families(self, token: str) -> frozenset[str]:
        families = self._counter_families.get(token)
        if not families:
            return frozenset()
        now = time.monotonic()
        for name, until in list(families.items()):
            if until < now:
                families.pop(name, None)
        return frozenset(families)


def _take(
    raws: list[bytes], found: list[_Series], stamps: dict[bytes, int], out: BatchBuilder
) -> None:
    """Put a run of usual series of known series in their float groups, all in C.

    ``BatchBuilder.put_float`` for each, without a Python step per series: the value's
    8 bytes go out as they came, under the series' encoding up to its double.
    """
    if len(stamps) == 1:  # one time for the whole run: groups by resource
        (stamp,) = stamps.values()
        groups: GroupsAt | GroupsByStamp = GroupsAt(out.groups_of(floats=True), stamp)
        keys: Iterable[object] = map(_RESOURCE, found)
    else:
        groups = GroupsByStamp(out.groups_of(floats=True), stamps)
        keys = zip(map(_RESOURCE, found), map(_TAIL, raws), strict=True)
    runs = map(groups.__getitem__, keys)  # type: ignore[arg-type]
    deque(map(setitem, runs, map(_FLOAT_HEAD, found), map(_VALUE, raws)), maxlen=0)


def _kind(name: str, counter_families: frozenset[str]) -> MetricKind:
    if name.endswith(_COUNTER_SUFFIXES):
        return _FLOAT
    if name in counter_families:
        return _FLOAT
    return _GAUGE


def _brief(labels: dict[str, str]) -> str:
    text = ",".join(f'{k}="{v}"' for k, v in list(labels.items())[:6])
    return "{" + (text if len(text) <= 120 else text[:120] + "...") + "}"
