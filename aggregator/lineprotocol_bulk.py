"""Line-protocol lines of known heads, taken for a whole body at once with ``map``s.

A Telegraf agent sends the same heads (measurement and tags) with the same field keys
every interval. What a head means for a token (its resource id, and for each field key
the series' encoding up to its double) is worked out once and kept (:class:`Head`,
in a :class:`KnownHeads`). A body's lines are then split, looked up and checked with
``map``s over all of them, and runs of usual lines go into their float groups the
same way (as ``BatchBuilder.put`` would: series identity -> encoded sample): no Python
line runs per line or per field.

A usual line is ``head fields timestamp`` with single spaces, no escape and no
quote, a known head, and float fields of gauge series. Every other line (a new head
or field key, an integer or string field, a counter, a comment, a bad timestamp) is
*odd*: :class:`BodyLines` gives the odd ones' places and the parser takes each one
slowly, in its place between the runs, so a series named twice keeps its last value
and an invalid line is refused with its number, as before.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from itertools import accumulate, chain, repeat
from operator import add, attrgetter, setitem

from aggregator.grouping import BatchBuilder, GroupsAt, GroupsByStamp
from kemi_stats.batch_writer import PreparedSeries, pack_double
from kemi_stats.model import MetricKind

__all__ = ["BodyLines", "Head", "KnownHeads"]

_FLOAT_BYTES = b"0123456789.eE+-"
_NOT_SEPARATORS = bytes(b for b in range(256) if b not in b",=")
_RESOURCE = attrgetter("resource")
_FIELDS = attrgetter("fields")
_IDENTITY = attrgetter("identity")
_FLOAT_HEAD = attrgetter("float_head")
#: what stands for an odd line, so the maps over every line need no test
_PLACEHOLDER = " _=0 "


class Head:
    """What one head means for one token: the resource and its fields' series.

    ``fields`` maps a field key to its :class:`PreparedSeries`, for gauge series (a
    float field of one is its ``float_head`` and 8 bytes); it fills as keys come.
    """

    __slots__ = ("fields", "resource", "series_of")

    def __init__(self, resource: str, series_of: Callable[[str], PreparedSeries | None]) -> None:
        self.resource = resource
        #: field key -> its gauge series; None if it is not one
        self.series_of = series_of
        self.fields: dict[str, PreparedSeries] = {}

    def field(self, key: str) -> PreparedSeries | None:
        """Field ``key``'s series, worked out and kept the first time."""
        series = self.series_of(key)
        if series is not None:
            self.fields[key] = series
        return series


#: stands for the series of an odd line's fields (never written)
_PLACEHOLDER_SERIES = PreparedSeries("_", {}, MetricKind.GAUGE)
#: the head of odd lines; it knows their placeholder field, so finding every field's
#: series finds none missing unless a known line has a new key
_NO_HEAD = Head("", lambda key: None)
_NO_HEAD.fields["_"] = _PLACEHOLDER_SERIES


class KnownHeads:
    """Head text -> :class:`Head` for one token, up to ``size`` heads and ``max_chars``."""

    __slots__ = ("_chars", "heads", "max_chars", "size")

    def __init__(self, size: int, max_chars: int) -> None:
        self.heads: dict[str, Head] = {}
        self.size = size
        self.max_chars = max_chars
        self._chars = 0

    def add(self, text: str, head: Head) -> None:
        # the text, the resource and the series' encodings: about four times the text
        cost = 4 * len(text) + 200
        if len(self.heads) >= self.size or self._chars + cost > self.max_chars:
            self.heads.clear()
            self._chars = 0
        self.heads[text] = head
        self._chars += cost


class BodyLines:
    """One body's lines split and checked in bulk: :attr:`odd` lines and the runs between.

    ``describe(text)`` gives the :class:`Head` of a head text, or None when the head is
    invalid for the token (its lines are odd: the slow path says why).
    ``stamp_ms(text)`` gives a timestamp's milliseconds, or None when it is refused.
    """

    def __init__(
        self,
        text: str,
        lines: list[str],
        known: KnownHeads,
        describe: Callable[[str], Head | None],
        stamp_ms: Callable[[str], int | None],
        max_fields: int,
    ) -> None:
        n = len(lines)
        odd: set[int] = set()
        usual = lines
        if "\\" in text or '"' in text or "#" in text:
            odd.update(i for i, line in enumerate(lines) if _needs_scan(line))
        spaces = list(map(str.count, lines, repeat(" ")))
        if spaces.count(2) != n:
            for i, count in enumerate(spaces):
                if count != 2:
                    odd.add(i)
        if odd:
            usual = lines.copy()
            for i in odd:
                usual[i] = _PLACEHOLDER
        elif text.endswith("\n"):
            text = text[:-1]
        # every line is "head fields stamp" now: one split of the whole body
        parts = (text.replace("\n", " ") if usual is lines else " ".join(usual)).split(" ")
        heads = self._heads(parts[0::3], known, describe, odd)
        self._fields(parts[1::3], heads, odd, max_fields)
        stamps_text = parts[2::3]
        stamps: dict[str, int] = {}
        distinct = set(stamps_text)
        for stamp in distinct:  # most lines of a body share their time
            ms = stamp_ms(stamp)
            if ms is not None:
                stamps[stamp] = ms
        if len(stamps) != len(distinct):
            odd.update(i for i, stamp in enumerate(stamps_text) if stamp not in stamps)
        self.odd = sorted(odd)
        self._heads_of = heads
        self._stamps_text = stamps_text
        self._stamps = stamps

    def _heads(
        self,
        texts: list[str],
        known: KnownHeads,
        describe: Callable[[str], Head | None],
        odd: set[int],
    ) -> list[Head]:
        """Each line's head (``_NO_HEAD`` for odd lines); new heads described once."""
        found = list(map(known.heads.get, texts))
        if None not in found:
            return found  # type: ignore[return-value]
        new: dict[str, Head | None] = {}
        for i, head in enumerate(found):
            if head is not None:
                continue
            text = texts[i]
            if i in odd or not text:  # a line starting with a space is odd too
                odd.add(i)
                found[i] = _NO_HEAD
                continue
            if text not in new:
                new[text] = described = describe(text)
                if described is not None:
                    known.add(text, described)
            made = new[text]
            if made is None:
                odd.add(i)
                found[i] = _NO_HEAD
            else:
                found[i] = made
        return found  # type: ignore[return-value]

    def _fields(
        self, fields_text: list[str], heads: list[Head], odd: set[int], max_fields: int
    ) -> None:
        """Split every line's fields; lines with a field the bulk path cannot take are odd."""
        commas = list(map(str.count, fields_text, repeat(",")))
        if max(commas, default=0) >= max_fields:
            odd.update(i for i, c in enumerate(commas) if c >= max_fields)
            for i in odd:
                fields_text[i], commas[i] = "_=0", 0
        per_line = list(map(add, commas, repeat(1)))
        joined = ",".join(fields_text)
        # every field is "key=value": the separators alternate "=,=,...=", or keys and
        # values would shift (a field without "=" beside one with two)
        separators = joined.encode().translate(None, _NOT_SEPARATORS)
        line_of: list[int] | None = None
        if separators != b"=," * (sum(per_line) - 1) + b"=":
            line_of = _line_of(per_line)
            items = joined.split(",")
            bad = {line_of[j] for j, item in enumerate(items) if item.count("=") != 1}
            odd.update(bad)
            for i in bad:
                fields_text[i], commas[i], per_line[i] = "_=0", 0, 1
            joined = ",".join(fields_text)
            line_of = None
        flat = joined.replace(",", "=").split("=")
        keys = flat[0::2]
        values = flat[1::2]
        if "".join(values).encode().translate(None, _FLOAT_BYTES):  # another character
            line_of = _line_of(per_line)
            for j, value in enumerate(values):
                if value.encode().translate(None, _FLOAT_BYTES):
                    odd.add(line_of[j])
                    values[j] = "0"
        try:
            floats = list(map(float, values))
        except ValueError:  # "1.2.3", "-", "" and such: the slow path names them
            line_of = line_of or _line_of(per_line)
            floats = []
            for j, value in enumerate(values):
                try:
                    floats.append(float(value))
                except ValueError:
                    odd.add(line_of[j])
                    floats.append(0.0)
        if floats and not (-math.inf < min(floats) and max(floats) < math.inf):
            line_of = line_of or _line_of(per_line)
            odd.update(line_of[j] for j, f in enumerate(floats) if not math.isfinite(f))
        series_maps = chain.from_iterable(map(repeat, map(_FIELDS, heads), per_line))
        found = list(map(dict.get, series_maps, keys))
        if None in found:
            line_of = line_of or _line_of(per_line)
            for j, series in enumerate(found):
                if series is None:
                    if line_of[j] not in odd:
                        series = heads[line_of[j]].field(keys[j])
                    if series is None:  # not a gauge, an invalid name, or an odd line
                        odd.add(line_of[j])
                        series = _PLACEHOLDER_SERIES
                    found[j] = series
        self._per_line = per_line
        self._offsets = list(accumulate(per_line, initial=0))
        self._identities = list(map(_IDENTITY, found))
        self._float_heads = list(map(_FLOAT_HEAD, found))
        self._floats = floats

    def take(self, start: int, end: int, out: BatchBuilder) -> None:
        """Put lines ``start`` to ``end`` (none of them odd) in their groups, in C.

        Each sample goes in as ``BatchBuilder.put`` puts it (series identity -> encoded
        sample), so a series named again by an odd line, whatever its value's type,
        keeps the last value.
        """
        if start >= end:
            return
        heads = self._heads_of[start:end]
        groups: GroupsAt | GroupsByStamp
        if len(self._stamps) == 1:
            (stamp,) = self._stamps.values()
            groups = GroupsAt(out.groups_of(floats=False), stamp)
            line_groups = map(groups.__getitem__, map(_RESOURCE, heads))
        else:
            groups = GroupsByStamp(out.groups_of(floats=False), self._stamps)
            keys = zip(map(_RESOURCE, heads), self._stamps_text[start:end], strict=True)
            line_groups = map(groups.__getitem__, keys)
        field_groups = chain.from_iterable(map(repeat, line_groups, self._per_line[start:end]))
        first, last = self._offsets[start], self._offsets[end]
        samples = map(
            add, self._float_heads[first:last], map(pack_double, self._floats[first:last])
        )
        deque(map(setitem, field_groups, self._identities[first:last], samples), maxlen=0)


def _needs_scan(line: str) -> bool:
    """An escape, a string field or a comment: the slow path reads the line."""
    return "\\" in line or '"' in line or line[:1] == "#"


def _line_of(per_line: list[int]) -> list[int]:
    """The line of each field, from each line's field count."""
    return list(chain.from_iterable(map(repeat, range(len(per_line)), per_line)))
