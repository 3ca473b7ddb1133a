"""InfluxDB line protocol -> samples, as the InfluxDB v2 reference describes it.

``measurement[,tag=value...] field=value[,field=value...] [timestamp]``

- Each field becomes one sample named ``measurement_field`` (see :mod:`names`).
- The token's resource template builds the resource id from the tags (default
  ``{host,instance|noport,host.name}``: the value of ``host``, unchanged); the
  tags it used are not labels. All other tags become sample labels, except
  ``kind_tag`` (default ``kemi_kind``: gauge, counter, counter32, counter64),
  which sets the kind of every field of its line. Without it, a metric in one of
  the counter sets (:mod:`aggregator.counters`) is a counter, all else a gauge.
- Field types: float (``1.5``, ``1e3``), integer (``12i``, int64), unsigned
  (``12u``, uint64), boolean (``t``/``true``/... -> 1, ``f``/``false``/... -> 0),
  string (``"text"``): dropped and counted (``string_fields=drop``, the default)
  or a 400 (``string_fields=reject``). NaN and infinities are rejected, as
  InfluxDB does.
- Escapes: ``\\,`` ``\\ `` ``\\=`` in names and tags, ``\\"`` and ``\\\\`` in strings.
- Lines starting with ``#`` and blank lines are ignored. A missing timestamp
  means the time the request arrived.

Any invalid line rejects the whole request (400 naming the line).
"""

from __future__ import annotations

import math
import threading
from typing import Any

from aggregator.grant import Grant, ResourceError
from aggregator.grouping import BatchBuilder, label_key
from aggregator.lineprotocol_bulk import BodyLines, Head, KnownHeads
from aggregator.names import KIND_NAMES, NameMapper
from aggregator.rejection import Rejection, invalid, over_limit
from aggregator.settings import AggregatorSettings
from aggregator.timestamps import PRECISIONS, TimeWindow
from kemi_stats.batch_writer import PreparedSeries, SeriesCache
from kemi_stats.model import MetricKind
from kemi_stats.names import InvalidSeries, metric_name_expected, name_limits

__all__ = ["LineProtocolParser"]

_SHAPE = "measurement[,tag=value...] field=value[,field=value...] [timestamp]"
_FIELD_TYPES = "a float, an integer (12i), an unsigned integer (12u), a boolean or a string"
_TRUE = frozenset({"t", "T", "true", "True", "TRUE"})
_FALSE = frozenset({"f", "F", "false", "False", "FALSE"})
_FLOAT_CHARS = frozenset("0123456789.eE+-")
_I64 = (-(1 << 63), (1 << 63) - 1)
_U64_MAX = (1 << 64) - 1
#: tokens whose heads are kept at once (a token changed is a new grant)
_GRANTS_MAX = 64


class _LineError(Exception):
    """One line is invalid: ``what`` and, when known, the value and what was expected."""

    def __init__(
        self, what: str, value: Any = None, expected: str | None = None, status: int = 400
    ) -> None:
        super().__init__(what)
        self.status = status
        self.what = what
        self.value = value
        self.expected = expected


class _Quoted(str):
    """A string field's value (kept apart from unquoted raw values)."""

    __slots__ = ()


def _unescape_scan(line: str, i: int, stops: str) -> tuple[str, int]:
    """Read up to an unescaped stop character; ``\\x`` escapes any stop, ``=`` or backslash."""
    out: list[str] = []
    n = len(line)
    while i < n:
        c = line[i]
        if c == "\\" and i + 1 < n and line[i + 1] in ", =\\":
            out.append(line[i + 1])
            i += 2
            continue
        if c in stops:
            break
        out.append(c)
        i += 1
    return "".join(out), i


def _scan_line(line: str) -> tuple[str, list[tuple[str, str]], list[tuple[str, str]], str]:
    """The slow path for lines with escapes or string fields."""
    n = len(line)
    measurement, i = _unescape_scan(line, 0, ", ")
    tags: list[tuple[str, str]] = []
    while i < n and line[i] == ",":
        key, i = _unescape_scan(line, i + 1, "=, ")
        if i >= n or line[i] != "=":
            raise _LineError(f"tag {key!r} has no value", key, "key=value")
        value, i = _unescape_scan(line, i + 1, ", ")
        tags.append((key, value))
    if i >= n:
        raise _LineError("no fields", line, _SHAPE)
    while i < n and line[i] == " ":
        i += 1
    fields: list[tuple[str, str]] = []
    while True:
        key, i = _unescape_scan(line, i, "=, ")
        if i >= n or line[i] != "=":
            raise _LineError(f"field {key!r} has no value", key, "key=value")
        i += 1
        if i < n and line[i] == '"':
            i += 1
            out: list[str] = []
            while i < n and line[i] != '"':
                if line[i] == "\\" and i + 1 < n and line[i + 1] in '"\\':
                    i += 1
                out.append(line[i])
                i += 1
            if i >= n:
                raise _LineError(f"field {key!r}: string is not closed", key, 'a closing "')
            fields.append((key, _Quoted("".join(out))))
            i += 1
        else:
            start = i
            while i < n and line[i] not in ", ":
                i += 1
            fields.append((key, line[start:i]))
        if i < n and line[i] == ",":
            i += 1
            continue
        break
    rest = line[i:].strip(" ")
    if " " in rest:
        raise _LineError("unexpected text after the timestamp", rest, _SHAPE)
    return measurement, tags, fields, rest


def _split_line(line: str) -> tuple[str, list[tuple[str, str]], list[tuple[str, str]], str]:
    """Split a line into measurement, tags, fields and timestamp text."""
    if "\\" in line or '"' in line:
        return _scan_line(line)
    parts = line.split(" ")
    if "" in parts:
        parts = [p for p in parts if p]
    if len(parts) == 2:
        head, body = parts
        ts = ""
    elif len(parts) == 3:
        head, body, ts = parts
    else:
        raise _LineError(
            "no fields" if len(parts) < 2 else "unexpected text after the timestamp", line, _SHAPE
        )
    measurement, tags = _split_head(head)
    fields: list[tuple[str, str]] = []
    for item in body.split(","):
        key, eq, value = item.partition("=")
        if not eq:
            raise _LineError(f"field {key!r} has no value", item, "key=value")
        fields.append((key, value))
    return measurement, tags, fields, ts


def _field_value(key: str, raw: str) -> int | float | None:
    """The numeric value of a field; None for a string field."""
    if isinstance(raw, _Quoted):
        return None
    if not raw:
        raise _LineError(f"field {key!r} is empty", raw, _FIELD_TYPES)
    last = raw[-1]
    if last == "i" or last == "u":
        digits = raw[:-1]
        body = digits[1:] if digits.startswith("-") else digits
        if not (body.isascii() and body.isdigit()):
            raise _LineError(f"field {key!r}: {raw!r} is not an integer", raw, _FIELD_TYPES)
        if len(body) > 20:  # beyond 64 bits, and int() refuses over 4,300 digits
            raise _LineError(f"field {key!r}: {len(body)} digits is outside 64 bits", raw[:40])
        number = int(digits)
        if last == "i" and not _I64[0] <= number <= _I64[1]:
            raise _LineError(f"field {key!r}: {raw} is outside int64", raw, "a 64-bit integer")
        if last == "u" and not 0 <= number <= _U64_MAX:
            raise _LineError(f"field {key!r}: {raw} is outside uint64", raw, "a 64-bit unsigned")
        return number
    if raw in _TRUE:
        return 1
    if raw in _FALSE:
        return 0
    if not _FLOAT_CHARS.issuperset(raw):
        raise _LineError(f"field {key!r}: {raw!r} is not a value", raw, _FIELD_TYPES)
    try:
        number_f = float(raw)
    except ValueError:
        raise _LineError(f"field {key!r}: {raw!r} is not a value", raw, _FIELD_TYPES) from None
    if not math.isfinite(number_f):
        raise _LineError(f"field {key!r}: {raw} is not finite", raw, "a finite number")
    return number_f


class LineProtocolParser:
    """Parses line-protocol bodies into a :class:`BatchBuilder`; settings resolved once.

    Lines of heads seen before go in bulk (:mod:`aggregator.lineprotocol_bulk`); what a
    head means is kept per token, up to ``series_cache`` heads. Every other line goes
    through :meth:`_line`, in its place.
    """

    def __init__(self, settings: AggregatorSettings) -> None:
        self.kind_tag = settings.kind_tag
        self.reject_strings = settings.string_fields == "reject"
        self.max_labels = settings.max_labels
        self.max_fields = settings.max_fields_per_line
        self.max_lines = settings.max_lines
        self.max_metric = name_limits().metric_max_length
        self.names = NameMapper()
        self.series_cache = settings.series_cache
        self.series_cache_chars = settings.series_cache_bytes // 2
        self._known: dict[Grant, KnownHeads] = {}
        self._lock = threading.Lock()

    def parse(
        self, body: bytes, precision: str, window: TimeWindow, out: BatchBuilder, grant: Grant
    ) -> None:
        """Add every sample of ``body`` to ``out``; raise a 400 Rejection naming the line."""
        scale = PRECISIONS.get(precision)
        if scale is None:
            raise invalid(
                f"precision {precision!r} is not known",
                value=precision,
                expected="ns, us, ms or s (v1 also n, u, m, h)",
            )
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            bad_line = body.count(b"\n", 0, exc.start) + 1
            raise invalid(
                f"line {bad_line}: invalid UTF-8 at byte {exc.start}",
                line=bad_line,
                value=body[max(exc.start - 10, 0) : exc.start + 10].decode("utf-8", "replace"),
                expected="UTF-8 text",
            ) from None
        lines = text.split("\n")
        if len(lines) > self.max_lines:
            raise over_limit("lines", len(lines), self.max_lines, "MAX_LINES")
        if not lines[-1]:
            lines.pop()  # the body's last newline
        if not lines:
            return
        with self._lock:  # bodies parse on several threads; what heads mean is shared
            bulk = BodyLines(
                text,
                lines,
                self._heads(grant),
                lambda head: self._describe(head, grant, out.series),
                lambda stamp: _stamp_ms(stamp, scale, window),
                self.max_fields,
            )
        start = 0
        for index in bulk.odd:
            bulk.take(start, index, out)
            self._odd_line(index + 1, lines[index], scale, window, out, grant)
            start = index + 1
        bulk.take(start, len(lines), out)

    def _odd_line(
        self,
        number: int,
        raw_line: str,
        scale: tuple[int, int],
        window: TimeWindow,
        out: BatchBuilder,
        grant: Grant,
    ) -> None:
        """Line ``number``, read in full; a Rejection naming it if it is invalid."""
        if not raw_line or raw_line[0] == "#":
            return
        line = raw_line[:-1] if raw_line[-1] == "\r" else raw_line
        if not line.strip():
            return
        try:
            self._line(line, scale, window, out, grant)
        except InvalidSeries as exc:
            raise invalid(f"line {number}: {exc}", line=number, value=line[:80]) from None
        except _LineError as exc:
            if exc.status == 403:
                raise Rejection(
                    403,
                    "forbidden",
                    f"line {number}: {exc.what}",
                    line=number,
                    value=exc.value,
                    expected=exc.expected,
                ) from None
            raise invalid(
                f"line {number}: {exc.what}",
                line=number,
                value=exc.value,
                expected=exc.expected,
            ) from None

    def _heads(self, grant: Grant) -> KnownHeads:
        known = self._known.get(grant)
        if known is None:
            if len(self._known) >= _GRANTS_MAX:
                self._known.clear()
            known = self._known[grant] = KnownHeads(self.series_cache, self.series_cache_chars)
        return known

    def _describe(self, text: str, grant: Grant, series: SeriesCache) -> Head | None:
        """What head ``text`` means for ``grant``; None if its lines are invalid (the slow
        path says why) or need a scan (escapes are taken slowly)."""
        if text.count(",") > self.max_labels:  # _line's guard for many tags decides
            return None
        try:
            measurement, tags = _split_head(text)
            resource, labels, kind = self._head(text, measurement, tags, grant)
        except (_LineError, InvalidSeries):
            return None
        lkey = label_key(labels)

        def series_of(key: str) -> PreparedSeries | None:
            if not key:
                return None
            metric = self.names.metric(measurement, key)
            if len(metric) > self.max_metric:
                return None
            metric_kind = kind if kind is not None else grant.counters.kind(metric)
            if metric_kind is not MetricKind.GAUGE:
                return None
            try:
                return series.get(metric, labels, lkey, metric_kind)
            except InvalidSeries:
                return None

        return Head(resource, series_of)

    def _head(
        self, line: str, measurement: str, tags: list[tuple[str, str]], grant: Grant
    ) -> tuple[str, dict[str, str], MetricKind | None]:
        """A line's resource, labels and kind from its measurement and tags."""
        if not measurement:
            raise _LineError("measurement is empty", line, _SHAPE)
        if len(tags) > self.max_labels + 2:
            raise _LineError(
                f"{len(tags)} tags (at most {self.max_labels})", line[:80], "fewer tags"
            )
        kind: MetricKind | None = None
        tag_map: dict[str, str] = {}
        for key, value in tags:
            if not key or not value:
                raise _LineError(
                    f"tag {key!r} has an empty key or value", f"{key}={value}", "key=value"
                )
            if key == self.kind_tag:
                kind = KIND_NAMES.get(value)
                if kind is None:
                    raise _LineError(
                        f"tag {key!r}: kind {value!r} is not known", value, ", ".join(KIND_NAMES)
                    )
            else:
                tag_map[key] = value
        try:
            resource, used = grant.resource_from_tags(tag_map)
        except ResourceError as exc:
            raise _LineError(exc.what, exc.value, exc.expected, exc.status) from None
        label = self.names.label
        labels = {label(k): v for k, v in tag_map.items() if k not in used}
        if len(labels) > self.max_labels:
            raise _LineError(
                f"{len(labels)} labels (at most {self.max_labels})", line[:80], "fewer"
            )
        return resource, labels, kind

    def _line(
        self,
        line: str,
        scale: tuple[int, int],
        window: TimeWindow,
        out: BatchBuilder,
        grant: Grant,
    ) -> None:
        if line.count(",") > self.max_labels + self.max_fields + 2:
            # a 100k-tag line is refused before it is split
            tags_guess = line.split(" ", 1)[0].count(",")
            if tags_guess > self.max_labels:
                raise _LineError(
                    f"{tags_guess} tags (at most {self.max_labels})", line[:80], "fewer tags"
                )
        measurement, tags, fields, ts = _split_line(line)
        if len(fields) > self.max_fields:
            raise _LineError(
                f"{len(fields)} fields (at most {self.max_fields})", line[:80], "fewer fields"
            )
        resource, labels, kind = self._head(line, measurement, tags, grant)
        time_ms = _checked_stamp_ms(ts, scale, window) if ts else window.now_ms
        group = out.group(resource, time_ms)
        lkey = label_key(labels)
        for key, raw in fields:
            if not key:
                raise _LineError("field key is empty", raw, "key=value")
            number = _field_value(key, raw)
            if number is None:
                if self.reject_strings:
                    raise _LineError(
                        f"field {key!r} is a string (string_fields=reject)",
                        raw,
                        "a numeric or boolean field",
                    )
                out.dropped_fields += 1
                continue
            metric = self.names.metric(measurement, key)
            if len(metric) > self.max_metric:
                raise _LineError(
                    f"metric name {metric[:64]!r}... is {len(metric)} characters long "
                    f"(at most {self.max_metric})",
                    metric[:80],
                    metric_name_expected(),
                )
            metric_kind = kind if kind is not None else grant.counters.kind(metric)
            if metric_kind is MetricKind.FLOAT_COUNTER:
                if number < 0:
                    raise _LineError(f"field {key!r}: counter value {number} is negative", number)
                number = float(number)
            elif metric_kind is not MetricKind.GAUGE:
                number = _counter_value(key, number)
            out.put(group, metric, number, labels, lkey, metric_kind)


def _split_head(head: str) -> tuple[str, list[tuple[str, str]]]:
    """A head without escapes split into measurement and tags."""
    measurement, _, tag_text = head.partition(",")
    tags: list[tuple[str, str]] = []
    if tag_text:
        for item in tag_text.split(","):
            key, eq, value = item.partition("=")
            if not eq:
                raise _LineError(f"tag {key!r} has no value", item, "key=value")
            tags.append((key, value))
    return measurement, tags


def _checked_stamp_ms(ts: str, scale: tuple[int, int], window: TimeWindow) -> int:
    """A timestamp's milliseconds; a _LineError if it is not an integer or out of the window."""
    body = ts[1:] if ts[0] == "-" else ts
    if not (body.isascii() and body.isdigit()):
        raise _LineError(f"timestamp {ts!r} is not an integer", ts, "an integer timestamp")
    if len(body) > 19:
        raise _LineError(
            f"timestamp of {len(body)} digits is outside int64", ts[:40], "a time near now"
        )
    time_ms = int(ts) * scale[0] // scale[1]
    problem = window.problem(time_ms)
    if problem:
        raise _LineError(f"timestamp {ts} {problem}", ts, "a time near now")
    return time_ms


def _stamp_ms(ts: str, scale: tuple[int, int], window: TimeWindow) -> int | None:
    """For the bulk path: a timestamp's milliseconds (now if none), or None if refused."""
    if not ts:
        return window.now_ms
    try:
        return _checked_stamp_ms(ts, scale, window)
    except _LineError:
        return None


def _counter_value(key: str, value: int | float) -> int:
    """Counters are non-negative integers; an integral float (Telegraf sends some) is accepted."""
    if isinstance(value, float):
        if not value.is_integer():
            raise _LineError(f"field {key!r}: counter value {value} is not an integer", value)
        value = int(value)
    if value < 0:
        raise _LineError(f"field {key!r}: counter value {value} is negative", value, ">= 0")
    if value > _U64_MAX:
        raise _LineError(
            f"field {key!r}: counter value {value:.6g} is beyond 64 bits", value, "at most 2^64-1"
        )
    return value
