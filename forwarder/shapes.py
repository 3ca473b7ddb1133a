"""Line protocol straight from a record's bytes, for records that repeat a known shape.

A resource sends the same metrics with the same labels and kinds every interval: two
of its ``SampleBatch`` records differ only in the timestamp and the values, and those
stay where they are in the bytes as long as their encoded length does not change.
The first record of a shape goes the ordinary way (:func:`kemi_stats.codec.decode_batch`
then :class:`~forwarder.lineprotocol.BatchEncoder`) and is also compiled into a
:class:`Shape`:

* a ``struct`` layout of the whole record: the constant runs of bytes as ``Ns``, each
  double as ``d``, each varint (timestamp, counter) cut into 2-byte pieces ``H`` and a
  last ``B``;
* the constant runs a record must repeat byte for byte to be of this shape;
* a ``%`` format of the record's lines, made by the ordinary encoder with a hole in
  place of each value and of the timestamp, so both paths write the same text.

A later record with the same key and length is then one ``unpack``, one comparison of
its constant runs, a check that its varints end where the shape's did (continuation
bits), and one ``%``: no protobuf objects and no samples. Anything else (a constant
that changed, a varint grown by a byte, a value that is not finite) returns None and
the record takes the ordinary path, which stays the reference.

Only what the fast path writes exactly as the ordinary one is compiled: doubles of
gauges and float counters (``repr``), unsigned varints of counters (``<n>u``) and of
integer gauges (``repr`` of the float), with a non-negative timestamp and varints of at
most 9 bytes. A record with a signed value, a counter sent as a double or of 2**63 or more,
an empty metric name, a sample without a value, a field this reader does not know, or
more than :data:`MAX_HOLES` values or :data:`MAX_RECORD_BYTES` keeps the ordinary path.

Shapes are kept per (Kafka key, record length) in two generations, within a budget of
bytes: a lookup that misses the young one promotes from the old one; when the young
one holds half the budget the old one is dropped. Resources that stopped sending age
out, those that send stay.
"""

from __future__ import annotations

import logging
import math
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from operator import itemgetter
from typing import Any

from forwarder.lineprotocol import BatchEncoder
from kemi_stats.model import SampleBatch
from kemi_stats.protowire import MalformedWire, read_varint, skip_field

__all__ = ["MAX_HOLES", "MAX_RECORD_BYTES", "NoShape", "Shape", "Shapes", "compile_shape"]

log = logging.getLogger(__name__)

# SampleBatch and Sample field numbers (kemi_stats/proto/kemi.proto)
_BATCH_TIME, _BATCH_SAMPLES = 3, 6
_BATCH_OTHER = {1: 0, 2: 2, 4: 0, 5: 2, 7: 0}  # field -> wire type
_SAMPLE_METRIC, _SAMPLE_REAL, _SAMPLE_UNSIGNED, _SAMPLE_LABELS, _SAMPLE_KIND = 1, 2, 3, 5, 6
_GAUGE_KINDS = frozenset((0, 3))  # GAUGE, FLOAT_COUNTER: written as floats
_COUNTER_KINDS = frozenset((1, 2))  # COUNTER32, COUNTER64: written as unsigned integers
_KNOWN_KINDS = _GAUGE_KINDS | _COUNTER_KINDS
#: varints of at most 9 bytes (63 bits): a non-negative int64 timestamp, and counters
#: below 2**63 (a 10-byte varint carries bits that upb drops: left to the ordinary path)
_MAX_VARINT_BYTES = 9
#: records with more holes than this (or more bytes) take the ordinary path: the
#: generated code stays small, and so does a shape's memory
MAX_HOLES = 512
MAX_RECORD_BYTES = 32_768
#: terms per parenthesized group in generated checks (the compiler nests long chains)
_GROUP = 64
#: generated render functions, by their source (shared by every shape with the same plan)
_PLANS: dict[str, Any] = {}
_PLANS_LIMIT = 4096
_HOLE = re.compile(r"\n(-|\d+)\n")
#: struct layouts and constant runs shared between shapes
_STRUCTS: dict[str, struct.Struct] = {}
_RUNS: dict[bytes, bytes] = {}
_INTERN_LIMIT = 100_000


class NoShape(Exception):
    """The record cannot be rendered by a shape (the ordinary path handles it)."""


@dataclass(frozen=True, slots=True)
class _Hole:
    start: int
    size: int
    #: "double" (a float), "varint" (a counter), "float" (an integer gauge) or "time"
    kind: str
    #: the sample it belongs to (-1: the timestamp)
    sample: int


def _sample_hole(data: bytes, pos: int, end: int, index: int) -> _Hole:
    hole: _Hole | None = None
    kind = 0
    metric = False
    while pos < end:
        tag, pos = read_varint(data, pos)
        field, wire = tag >> 3, tag & 7
        if field == _SAMPLE_REAL and wire == 1 and hole is None:
            hole = _Hole(pos, 8, "double", index)
            pos += 8
        elif field == _SAMPLE_UNSIGNED and wire == 0 and hole is None:
            start = pos
            pos = read_varint(data, pos)[1]
            if pos - start > _MAX_VARINT_BYTES:
                raise NoShape("a counter of 2**63 or more")
            hole = _Hole(start, pos - start, "varint", index)
        elif field == _SAMPLE_KIND and wire == 0:
            kind, pos = read_varint(data, pos)
        elif field == _SAMPLE_METRIC and wire == 2:
            metric = read_varint(data, pos)[0] > 0
            pos = skip_field(data, tag, pos)
        elif field == _SAMPLE_LABELS and wire == 2:
            pos = skip_field(data, tag, pos)
        else:
            raise NoShape(f"sample field {field}")
    if pos != end or hole is None or not metric or kind not in _KNOWN_KINDS:
        raise NoShape("sample without a metric, a value or a known kind")
    if hole.kind == "double" and kind in _COUNTER_KINDS:
        raise NoShape("a counter sent as a double")
    if hole.kind == "varint" and kind in _GAUGE_KINDS:
        return _Hole(hole.start, hole.size, "float", index)  # an integer gauge: float(v)
    return hole


def _holes(data: bytes) -> list[_Hole]:
    """The value and timestamp holes of a SampleBatch record, in byte order."""
    try:
        return _read_holes(data)
    except (MalformedWire, IndexError) as exc:  # IndexError: a read past the end
        raise NoShape(f"not a SampleBatch: {exc}") from None


def _read_holes(data: bytes) -> list[_Hole]:
    holes: list[_Hole] = []
    pos = 0
    samples = 0
    timed = False
    while pos < len(data):
        tag, pos = read_varint(data, pos)
        field, wire = tag >> 3, tag & 7
        if field == _BATCH_TIME and wire == 0 and not timed:
            start = pos
            pos = read_varint(data, pos)[1]
            if pos - start > _MAX_VARINT_BYTES:
                raise NoShape("negative timestamp")
            holes.append(_Hole(start, pos - start, "time", -1))
            timed = True
        elif field == _BATCH_SAMPLES and wire == 2:
            size, pos = read_varint(data, pos)
            if pos + size > len(data):
                raise NoShape("truncated sample")
            holes.append(_sample_hole(data, pos, pos + size, samples))
            samples += 1
            pos += size
        elif _BATCH_OTHER.get(field) == wire:
            pos = skip_field(data, tag, pos)
        else:
            raise NoShape(f"batch field {field}")
    if pos != len(data) or not timed or not samples:
        raise NoShape("a field past the end, no timestamp or no samples")
    return holes


#: a compiled record shape: ``shape(value)`` is ``(text, lines, points)``, or None when
#: ``value`` is not of this shape
Shape = Callable[[bytes], "tuple[str, int, int] | None"]


class _Layout:
    """The ``struct`` format of a record and where each hole's pieces land in the tuple."""

    def __init__(self, data: bytes, holes: list[_Hole]) -> None:
        self.codes: list[str] = []
        self.consts: list[int] = []
        self.pieces: dict[int, list[int]] = {}  # hole number -> tuple indices
        pos = 0
        for n, hole in enumerate(holes):
            if hole.start > pos:
                self.consts.append(len(self.codes))
                self.codes.append(f"{hole.start - pos}s")
            if hole.kind == "double":
                self.pieces[n] = [len(self.codes)]
                self.codes.append("d")
            else:
                first = len(self.codes)
                self.codes.extend("H" * (hole.size // 2) + "B" * (hole.size % 2))
                self.pieces[n] = list(range(first, len(self.codes)))
            pos = hole.start + hole.size
        if pos < len(data):
            self.consts.append(len(self.codes))
            self.codes.append(f"{len(data) - pos}s")

    def varint(self, n: int) -> tuple[str, list[str], str]:
        """Hole ``n`` as (value expression, pieces with both continuation bits, last check)."""
        items = self.pieces[n]
        parts: list[str] = []
        for k, i in enumerate(items):
            shift = f" << {14 * k}" if k else ""
            if self.codes[i] == "B":
                parts.append(f"u[{i}]{shift}")
            else:
                parts.append(f"(u[{i}] & 0x7F | u[{i}] >> 1 & 0x3F80){shift}")
        *full, last = items
        check = f"u[{last}] < 0x80" if self.codes[last] == "B" else f"u[{last}] & 0x8080 == 0x80"
        return " | ".join(parts), [f"u[{i}]" for i in full], check


def _chain(terms: list[str], op: str) -> str:
    """``terms`` joined by ``op`` in parenthesized groups (a long flat chain nests deep)."""
    groups = [f" {op} ".join(terms[i : i + _GROUP]) for i in range(0, len(terms), _GROUP)]
    return f" {op} ".join(f"({g})" for g in groups)


def _source(layout: _Layout, holes: list[_Hole], order: list[int]) -> str:
    """The render function's source for ``holes`` written in text ``order``."""
    exprs: dict[int, str] = {}
    full: list[str] = []
    lasts: list[str] = []
    doubles: list[str] = []
    time_expr = "0"
    for n, hole in enumerate(holes):
        if hole.kind == "double":
            exprs[n] = f"u[{layout.pieces[n][0]}]"
            doubles.append(exprs[n])
            continue
        value, f, last = layout.varint(n)
        full += f
        lasts.append(last)
        if hole.kind == "time":
            time_expr = value
        elif hole.kind == "float":
            exprs[n] = f"float({value})"
        else:
            exprs[n] = value
    lines = [
        "def render(unpack, get, consts, fmt, lines, points, value):",
        "    u = unpack(value)",
        "    if get(u) != consts:",
        "        return None",
    ]
    checks = list(lasts)
    if full:
        checks.append(f"{_chain(full, '&')} & 0x8080 == 0x8080")
    lines.append(f"    if not ({_chain([f'({c})' for c in checks], 'and')}):")
    lines.append("        return None")
    if doubles:
        lines.append(f"    if not isfinite({_chain(doubles, '+')}):")
        lines.append("        return None")
    lines.append(f"    t = {time_expr}")
    args = ", ".join("t" if holes[n].kind == "time" else exprs[n] for n in order)
    lines.append(f"    return fmt % ({args},), lines, points")
    return "\n".join(lines) + "\n"


def _plan(source: str) -> Any:
    fn = _PLANS.get(source)
    if fn is None:
        if len(_PLANS) >= _PLANS_LIMIT:
            _PLANS.clear()
        namespace: dict[str, Any] = {"isfinite": math.isfinite}
        exec(compile(source, "<forwarder.shapes>", "exec"), namespace)  # our own text
        fn = _PLANS[source] = namespace["render"]
    return fn


def compile_shape(data: bytes, batch: SampleBatch, encoder: BatchEncoder) -> tuple[Shape, int]:
    """Compile the shape of record ``data`` (decoded as ``batch``): the shape and about how
    many bytes it holds; raise NoShape if the record has none."""
    if len(data) > MAX_RECORD_BYTES:
        raise NoShape("a record this large pays for its decoding")
    holes = _holes(data)
    if len(holes) > MAX_HOLES:
        raise NoShape("more values than a shape holds")
    sample_hole = {h.sample: n for n, h in enumerate(holes) if h.sample >= 0}
    time_hole = next(n for n, h in enumerate(holes) if h.kind == "time")
    marks = [f"\n{sample_hole[i]}\n" for i in range(len(batch.samples))]
    texts: list[str] = []
    order: list[int] = []

    def hole(match: re.Match[str]) -> str:
        n = time_hole if match.group(1) == "-" else int(match.group(1))
        order.append(n)
        kind = holes[n].kind
        return "%d" if kind == "time" else "%du" if kind == "varint" else "%r"

    for line in encoder.shape_lines(batch, marks, " \n-\n"):
        texts.append(_HOLE.sub(hole, line.replace("%", "%%")))
    layout = _Layout(data, holes)
    if len(layout.consts) < 2:  # (every hole follows a tag: a record has a run per hole)
        raise NoShape("fewer than two constant runs")
    unpack = _interned(_STRUCTS, "<" + "".join(layout.codes), struct.Struct).unpack
    getter = itemgetter(*layout.consts)
    # constant runs repeat across resources (tags, metric names): share them
    consts = tuple(_interned(_RUNS, run, bytes) for run in getter(unpack(data)))
    fmt = "\n".join(texts)
    shape = partial(
        _plan(_source(layout, holes, order)),
        unpack, getter, consts, fmt, len(texts), len(batch.samples),
    )  # fmt: skip
    # what it holds alone: its format, its share of the constant runs, the tuple and call
    return shape, len(fmt) + len(data) + 8 * len(consts) + 300


def _interned(table: dict[Any, Any], key: Any, make: Any) -> Any:
    """The one object for ``key`` in ``table`` (bounded: cleared when full)."""
    obj = table.get(key)
    if obj is None:
        if len(table) >= _INTERN_LIMIT:
            table.clear()
        obj = table[key] = make(key)
    return obj


def _unshaped(value: bytes) -> None:
    """Kept for a (key, length) whose record had no shape: not compiled again each time."""
    return None


_Entry = tuple[tuple[Shape, int], ...]
_UNSHAPED: _Entry = ((_unshaped, 100),)


def _size(entry: _Entry) -> int:
    return sum(size for _, size in entry)


class Shapes:
    """Compiled shapes by (Kafka key, record length), in two generations of half the budget.

    ``budget`` is in bytes (about what the shapes hold); 0 turns the fast path off.
    Compiling costs about as much as a few records on the ordinary path, so it is kept
    to what pays: when more than one record in :data:`COMPILE_SHARE` of a window of
    :data:`WINDOW` records tried to compile (more resources than the budget holds, or
    shapes that never repeat), compiling stops until the next window. A record that has
    no shape leaves a marker so that its resource does not try again each interval.
    """

    WINDOW = 10_000
    COMPILE_SHARE = 8

    def __init__(self, encoder: BatchEncoder, budget: int) -> None:
        self.encoder = encoder
        self.budget = budget
        # (key, length) -> its shapes, newest first, each with the bytes it holds
        self._young: dict[tuple[bytes | None, int], _Entry] = {}
        self._old: dict[tuple[bytes | None, int], _Entry] = {}
        self._young_bytes = 0
        self._old_bytes = 0
        #: records rendered by a shape, and shapes compiled (for /metrics)
        self.rendered = 0
        self.compiled = 0
        self._missed = 0
        self._window_end = self.WINDOW
        self._window_tries = 0

    def __len__(self) -> int:
        return len(self._young) + len(self._old)

    @property
    def held_bytes(self) -> int:
        """About what the kept shapes hold."""
        return self._young_bytes + self._old_bytes

    def render(self, key: bytes | None, value: bytes) -> tuple[str, int, int] | None:
        """``(text, lines, points)`` of a record of a known shape, else None."""
        k = (key, len(value))
        entry = self._young.get(k)
        if entry is None:
            entry = self._old.get(k)
            if entry is None:
                return None
            self._keep(k, entry)
        for shape, _ in entry:
            out = shape(value)
            if out is not None:
                self.rendered += 1
                return out
        return None

    def learn(self, key: bytes | None, value: bytes, batch: SampleBatch) -> None:
        """Compile the shape of a record that :meth:`render` missed and the ordinary path
        wrote whole (every sample a point)."""
        self._missed += 1
        seen = self.rendered + self._missed
        if seen >= self._window_end:
            self._window_end = seen + self.WINDOW
            self._window_tries = 0
        if not self.budget or self._window_tries * self.COMPILE_SHARE > self.WINDOW:
            return
        k = (key, len(value))
        known = self._young.get(k) or self._old.get(k) or ()
        if known and known[0][0] is _unshaped:
            return
        self._window_tries += 1
        try:
            shape, size = compile_shape(value, batch, self.encoder)
        except NoShape:
            self._keep(k, _UNSHAPED)
            return
        except Exception:  # compiling must never stop the forwarder: the record is written
            log.exception("record shape of key %r: not compiled", key)
            self._keep(k, _UNSHAPED)
            return
        self.compiled += 1
        # two shapes per key and length: a resource that alternates two kinds of batch
        self._keep(k, ((shape, size), *known[:1]))

    def _keep(self, k: tuple[bytes | None, int], entry: _Entry) -> None:
        """Put ``entry`` in the young generation (in place of what ``k`` had in either)."""
        self._young_bytes -= _size(self._young.pop(k, ()))
        self._old_bytes -= _size(self._old.pop(k, ()))
        size = _size(entry)
        if self._young and self._young_bytes + size > self.budget // 2:
            self._old, self._old_bytes = self._young, self._young_bytes
            self._young, self._young_bytes = {}, 0
        self._young[k] = entry
        self._young_bytes += size
