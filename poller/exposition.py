"""A scraped Prometheus exposition page -> samples, with kinds from its ``# TYPE`` lines.

Parsing is prometheus_client's (the text format, and OpenMetrics when the endpoint
answers with ``application/openmetrics-text``). What each sample becomes:

- **Kinds**: a counter family's ``_total`` samples, and a histogram's or summary's
  ``_bucket``, ``_count`` and ``_sum``, are float counters (they only grow, and reset);
  everything else (gauges, untyped, ``_created``, quantiles, info) is a gauge.
- **Names** go through the platform's name rules (``kemi_stats.names``); exposition
  labels are kept as the sample's labels.
- **Dropped and counted**: NaN and infinite values (a summary with no observations
  exposes NaN quantiles), negative counters.
- Timestamps in the page are not used: every sample carries the scrape's time, so a
  scrape is one batch (Prometheus' ``honor_timestamps: false``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families as text_families

from kemi_stats.batch_writer import PreparedSeries, pack_double
from kemi_stats.model import MetricKind, Sample
from kemi_stats.names import to_label_name, to_metric_name

__all__ = ["ExpositionError", "Page", "PageReader"]

_COUNTER_SUFFIXES = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_count", "_sum"),
    "summary": ("_count", "_sum"),
}


class ExpositionError(ValueError):
    """The page is not Prometheus exposition text, or has more samples than allowed."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def _over_limit(limit: int) -> ExpositionError:
    return ExpositionError("sample_limit", f"more than {limit} samples (the target's limit)")


def _all_samples(text: str, content_type: str, sample_limit: int) -> list[Sample]:
    """Every sample of the page in line order, with names, labels and kinds as stored
    (NaN and negative counters included); ExpositionError (``parse``, ``sample_limit``)."""
    openmetrics = content_type.startswith("application/openmetrics-text")
    families: Iterable[Metric] = (openmetrics_families if openmetrics else text_families)(text)
    out: list[Sample] = []
    names: dict[str, str] = {}
    labels_seen: dict[str, str] = {}
    floats, gauge = MetricKind.FLOAT_COUNTER, MetricKind.GAUGE
    try:
        for family in families:
            suffixes = _COUNTER_SUFFIXES.get(family.type, ())
            for s in family.samples:
                if len(out) >= sample_limit:
                    raise _over_limit(sample_limit)
                name = names.get(s.name)
                if name is None:
                    name = names[s.name] = to_metric_name(s.name)
                labels = {}
                for key, label_value in s.labels.items():
                    label = labels_seen.get(key)
                    if label is None:
                        label = labels_seen[key] = to_label_name(key)
                    labels[label] = label_value
                counter = bool(suffixes) and s.name.endswith(suffixes)
                out.append(Sample(name, float(s.value), labels, floats if counter else gauge))
    except ExpositionError:
        raise
    except (ValueError, TypeError, IndexError, KeyError) as exc:
        raise ExpositionError("parse", f"not Prometheus exposition text: {exc}") from None
    return out


def _left_out(sample: Sample) -> str:
    """Why a sample is not stored ("" if it is)."""
    value = sample.value
    if not math.isfinite(value):
        return "not_finite"
    if value < 0 and sample.kind is MetricKind.FLOAT_COUNTER:
        return "negative_counter"
    return ""


def _page_lines(text: str) -> tuple[list[str], list[str]]:
    """The sample lines and the ``# TYPE`` lines of ``text``, as prometheus_client's text
    parser reads them: split at newlines, stripped, blank ones skipped."""
    samples: list[str] = []
    types: list[str] = []
    for line in map(str.strip, text.split("\n")):
        if not line:
            continue
        if line[0] != "#":
            samples.append(line)
        elif line.startswith("# TYPE"):
            types.append(line)
    return samples, types


#: a line starting or ending with one of these is stripped before it is read
_ODD_START = frozenset(("", " ", "\t", "\r"))
_ODD_END = " \t\r"


def _series_text(line: str) -> str:
    """A sample line's text before its value (name and labels), or "" if not plain."""
    end = line.rfind("}") + 1 or line.find(" ")
    return line[:end] if end > 0 else ""


@dataclass(slots=True)
class Page:
    """One scraped page: its samples encoded (``PreparedSeries`` + value), and counts."""

    parts: list[bytes]
    exposed: int
    dropped: dict[str, int]


class PageReader:
    """Reads one target's pages, remembering what each sample line's series is.

    A target exposes the same series at every scrape; only values change. So after a
    page was read in full (prometheus_client's parser, which says what every sample
    is), each sample line's text before its value is remembered with its encoded series,
    and the next page whose every sample line is known is read line by line: the value
    parsed, checked and appended to the series' encoding. A page with any line not seen
    before (a new series, another order of labels, another format) is read in full again.
    The outcome is the same either way (tested against the full parser).
    """

    __slots__ = ("_content_type", "_known", "_types", "full_reads")

    def __init__(self) -> None:
        #: a sample line's text before its value -> its series
        self._known: dict[str, PreparedSeries] = {}
        #: the page's ``# TYPE`` lines when it was read in full (a changed type: read again)
        self._types: list[str] = []
        #: the format of that page (text or OpenMetrics): another format is read in full
        self._content_type = ""
        #: pages read in full (the first, and any with a line not seen before)
        self.full_reads = 0

    def read(self, text: str, content_type: str, sample_limit: int) -> Page:
        """The page's samples; ExpositionError (``parse``, ``sample_limit``)."""
        if self._known and content_type == self._content_type:
            page = self._read_known(text, sample_limit)
            if page is not None:
                return page
        return self._read_in_full(text, content_type, sample_limit)

    def _read_known(self, text: str, sample_limit: int) -> Page | None:
        known = self._known
        parts: list[bytes] = []
        dropped: dict[str, int] = {}
        exposed = 0
        floats = MetricKind.FLOAT_COUNTER
        types: list[str] = []
        for line in text.split("\n"):
            if line[:1] in _ODD_START or line[-1] in _ODD_END:
                line = line.strip()
            if not line:
                continue
            if line[0] == "#":
                if line.startswith("# TYPE"):
                    types.append(line)
                continue
            end = line.rfind("}") + 1 or line.find(" ")
            series = known.get(line[:end]) if end > 0 else None
            if series is None:
                return None
            exposed += 1
            if exposed > sample_limit:
                raise _over_limit(sample_limit)
            rest = line[end:].split()
            if (len(rest) == 2 and not rest[1].lstrip("-").isdigit()) or len(rest) > 2:
                return None  # a timestamp is not used, but anything odd: the full parser
            try:
                value = float(rest[0])
            except (ValueError, IndexError):
                return None  # the full parser says what is wrong
            if value - value != 0.0:  # NaN or an infinity
                dropped["not_finite"] = dropped.get("not_finite", 0) + 1
            elif value < 0 and series.kind is floats:
                dropped["negative_counter"] = dropped.get("negative_counter", 0) + 1
            else:
                parts.append(series.float_head + pack_double(value))
        if types != self._types:
            return None
        return Page(parts, exposed, dropped)

    def _read_in_full(self, text: str, content_type: str, sample_limit: int) -> Page:
        self.full_reads += 1
        every = _all_samples(text, content_type, sample_limit)
        prepared = [PreparedSeries(s.metric, s.labels, s.kind) for s in every]
        parts: list[bytes] = []
        dropped: dict[str, int] = {}
        for series, sample in zip(prepared, every, strict=True):
            why = _left_out(sample)
            if why:
                dropped[why] = dropped.get(why, 0) + 1
            else:
                parts.append(series.float_head + pack_double(sample.value))
        self._known = {}
        self._content_type = content_type
        lines, self._types = _page_lines(text)
        if len(lines) == len(prepared):  # one sample per line, in line order
            known = dict(zip(map(_series_text, lines), prepared, strict=True))
            known.pop("", None)
            self._known = known
        return Page(parts, len(every), dropped)
