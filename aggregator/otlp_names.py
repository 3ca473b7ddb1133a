"""OpenTelemetry metric names -> platform metric names, as OpenTelemetry's Prometheus
compatibility rules make them (the rules are listed in :mod:`aggregator.otlp`)."""

from __future__ import annotations

import functools
import re
from decimal import Decimal

from kemi_stats.names import to_metric_name

__all__ = ["metric_name", "number_label"]

#: OTel units (UCUM) -> Prometheus suffixes; any other unit is added as written
_UNITS = {
    "s": "seconds",
    "ms": "milliseconds",
    "us": "microseconds",
    "ns": "nanoseconds",
    "By": "bytes",
    "KiBy": "kibibytes",
    "MiBy": "mebibytes",
    "GiBy": "gibibytes",
    "%": "percent",
}
#: the denominator of ``X/Y`` units
_PER_UNITS = {"s": "second", "min": "minute", "h": "hour", "d": "day"}
_ANNOTATION = re.compile(r"\{[^}]*\}")
_NOT_NAME = re.compile(r"[^A-Za-z0-9_:]")
_UNDERSCORES = re.compile(r"__+")


@functools.lru_cache(maxsize=4096)
def metric_name(name: str, unit: str, *, counter: bool = False, gauge: bool = False) -> str:
    """The platform name of OTel metric ``name`` with ``unit`` (rules in the module docstring).

    ``counter``: a monotonic cumulative sum (``_total``); ``gauge``: an OTel Gauge (unit
    ``1`` is ``_ratio``). Histograms and summaries add their own suffixes to this name.
    """
    base = _UNDERSCORES.sub("_", to_metric_name(name).replace(".", "_"))
    base = base.rstrip("_") or base
    if counter and base.endswith("_total"):
        base = base[: -len("_total")]
    suffix = _unit_suffix(unit, gauge)
    if suffix and base != suffix and not base.endswith("_" + suffix):
        base = f"{base}_{suffix}"
    if counter:
        base += "_total"
    return base


def _unit_suffix(unit: str, gauge: bool) -> str:
    unit = _ANNOTATION.sub("", unit).strip()
    if not unit:
        return ""
    if unit == "1":
        return "ratio" if gauge else ""
    main, slash, per = unit.partition("/")
    words = []
    if main and main != "1":
        words.append(_UNITS.get(main, main))
    if slash and per:
        words += ["per", _PER_UNITS.get(per, per)]
    return _UNDERSCORES.sub("_", _NOT_NAME.sub("_", "_".join(words))).strip("_")


@functools.lru_cache(maxsize=1024)
def number_label(value: float) -> str:
    """A bound or quantile as Prometheus writes it: shortest digits, no exponent (``1``, ``0.005``)."""
    text = format(Decimal(repr(value)), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text
