"""The rules for names: metric names, label names, resource ids and registry entry names.

Every part of kemi-stats that accepts a name checks it here: the registry models
on write and on load, the aggregator on every push, the aggregator's OpenAPI
document. The patterns are fixed; the longest accepted name of each sort is a
setting (``KEMI_NAMES_*``), read once per process. Every process of one platform
must see the same limits, and they should only ever be raised: a lowered limit
turns stored entries and in-flight series invalid.

    metric name   [A-Za-z_][A-Za-z0-9_.:]*     at most 256 characters
    label name    [A-Za-z_][A-Za-z0-9_]*       at most 128 characters
    resource id   any text without control characters, 1 to 256 characters
    label value   any text without control characters, at most 4,096 characters
    entry name    [A-Za-z0-9][A-Za-z0-9_.:-]*  at most 128 characters (registry keys)

Names from tools we do not control (line protocol) are mapped rather than refused:
:func:`to_metric_name` and :func:`to_label_name` replace every character outside
the rule with ``_`` and prefix a leading digit with ``_``, as VictoriaMetrics and
Prometheus do.
"""

from __future__ import annotations

import functools
import re

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from kemi_stats.errors import ValidationError

__all__ = [
    "ENTRY_NAME_PATTERN",
    "LABEL_PATTERN",
    "METRIC_PATTERN",
    "InvalidName",
    "InvalidSeries",
    "NameLimits",
    "check_entry_name",
    "check_label_name",
    "check_metric_name",
    "check_resource_id",
    "check_series",
    "is_label_name",
    "is_metric_name",
    "label_name_expected",
    "label_value_expected",
    "label_value_problem",
    "metric_name_expected",
    "name_limits",
    "resource_id_expected",
    "resource_id_problem",
    "series_problem",
    "to_label_name",
    "to_metric_name",
]

#: the patterns without anchors, for regex engines and documents alike (JSON Schema adds ^$)
METRIC_PATTERN = r"[A-Za-z_][A-Za-z0-9_.:]*"
LABEL_PATTERN = r"[A-Za-z_][A-Za-z0-9_]*"
ENTRY_NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.:-]*"

_METRIC = re.compile(METRIC_PATTERN)
_LABEL = re.compile(LABEL_PATTERN)
_ENTRY = re.compile(ENTRY_NAME_PATTERN)
_METRIC_BAD = re.compile(r"[^A-Za-z0-9_.:]")
_LABEL_BAD = re.compile(r"[^A-Za-z0-9_]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class NameLimits(BaseSettings):
    """The longest name of each sort the platform accepts, from ``KEMI_NAMES_*`` variables."""

    model_config = SettingsConfigDict(env_prefix="KEMI_NAMES_", extra="ignore", frozen=True)

    metric_max_length: int = Field(default=256, ge=1)
    label_max_length: int = Field(default=128, ge=1)
    resource_id_max_length: int = Field(default=256, ge=1)
    label_value_max_length: int = Field(default=4096, ge=1)
    #: registry entry names are etcd key segments and CLI arguments
    entry_name_max_length: int = Field(default=128, ge=1)


@functools.cache
def name_limits() -> NameLimits:
    """The limits of this process, read from the environment on first use."""
    return NameLimits()


class InvalidName(ValidationError, ValueError):
    """A name breaks its rule; the message names the field, the value and what was expected.

    A ValueError too, so that pydantic validators report it against their field.
    """

    def __init__(self, field: str, value: str, expected: str, problem: str = "is invalid") -> None:
        super().__init__(f"{field} {value!r} {problem} (expected {expected})", field=field)
        self.value = value
        self.expected = expected


def metric_name_expected() -> str:
    """What a metric name must look like, in words for error messages."""
    return f"{METRIC_PATTERN}, at most {name_limits().metric_max_length} characters"


def label_name_expected() -> str:
    """What a label name must look like, in words for error messages."""
    return f"{LABEL_PATTERN}, at most {name_limits().label_max_length} characters"


def resource_id_expected(max_length: int | None = None) -> str:
    """What a resource id must look like, in words for error messages."""
    longest = name_limits().resource_id_max_length if max_length is None else max_length
    return f"1 to {longest} characters, no control characters"


def is_metric_name(name: str) -> bool:
    """Whether ``name`` may name a metric (the per-sample path: no exception, no message)."""
    return len(name) <= name_limits().metric_max_length and _METRIC.fullmatch(name) is not None


def is_label_name(name: str) -> bool:
    """Whether ``name`` may name a label (the per-sample path: no exception, no message)."""
    return len(name) <= name_limits().label_max_length and _LABEL.fullmatch(name) is not None


def check_metric_name(name: str, field: str = "metric name") -> str:
    """Return ``name`` if it may name a metric, else raise InvalidName."""
    if not is_metric_name(name):
        raise InvalidName(field, name, metric_name_expected())
    return name


def check_label_name(name: str, field: str = "label name") -> str:
    """Return ``name`` if it may name a label, else raise InvalidName."""
    if not is_label_name(name):
        raise InvalidName(field, name, label_name_expected())
    return name


def resource_id_problem(resource_id: str, max_length: int | None = None) -> str | None:
    """Why ``resource_id`` cannot name a resource, or None if it can.

    ``max_length`` narrows the platform's limit for one caller (None: the platform's).
    """
    longest = name_limits().resource_id_max_length if max_length is None else max_length
    if not resource_id:
        return "is empty"
    if len(resource_id) > longest:
        return f"is {len(resource_id)} characters long (at most {longest})"
    if _CONTROL.search(resource_id):
        return "contains control characters"
    return None


def check_resource_id(resource_id: str, field: str = "resource id") -> str:
    """Return ``resource_id`` if it may name a resource, else raise InvalidName."""
    problem = resource_id_problem(resource_id)
    if problem is not None:
        raise InvalidName(field, resource_id, resource_id_expected(), problem)
    return resource_id


class InvalidSeries(ValidationError, ValueError):
    """A series' names or label values break the rules (see :func:`series_problem`)."""


def label_value_expected() -> str:
    """What a label value must look like, in words for error messages."""
    return f"at most {name_limits().label_value_max_length} characters, no control characters"


def label_value_problem(value: str) -> str | None:
    """Why ``value`` cannot be a label value, or None if it can (empty is allowed)."""
    longest = name_limits().label_value_max_length
    if len(value) > longest:
        return f"is {len(value)} characters long (at most {longest})"
    if _CONTROL.search(value):
        return "contains control characters"
    return None


def series_problem(metric: str, labels: dict[str, str]) -> str | None:
    """Why a series cannot be stored, or None if it can: the lengths of its metric and
    label names (whose characters a caller has checked or mapped) and its label values.

    Checked once per new series, so it costs nothing per sample.
    """
    limits = name_limits()
    if len(metric) > limits.metric_max_length:
        return (
            f"metric name {_cut(metric)!r} is {len(metric)} characters long "
            f"(at most {limits.metric_max_length})"
        )
    for key, value in labels.items():
        if len(key) > limits.label_max_length:
            return (
                f"label name {_cut(key)!r} is {len(key)} characters long "
                f"(at most {limits.label_max_length})"
            )
        problem = label_value_problem(value)
        if problem is not None:
            return f"label {_cut(key)!r}: value {_cut(value)!r} {problem}"
    return None


def check_series(metric: str, labels: dict[str, str]) -> None:
    """Raise InvalidSeries if the series breaks a rule of :func:`series_problem`."""
    problem = series_problem(metric, labels)
    if problem is not None:
        raise InvalidSeries(problem, field="series")


def _cut(text: str, limit: int = 64) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def check_entry_name(name: str, field: str = "name") -> str:
    """Return ``name`` if it can be a registry key, else raise InvalidName."""
    longest = name_limits().entry_name_max_length
    if len(name) > longest or _ENTRY.fullmatch(name) is None:
        raise InvalidName(
            field,
            name,
            "letters, digits, '_', '.', ':' or '-', starting with a letter or digit, "
            f"at most {longest} characters",
        )
    return name


def to_metric_name(text: str) -> str:
    """``text`` made a metric name: characters outside the rule become ``_``."""
    name = _METRIC_BAD.sub("_", text)
    return "_" + name if name[:1].isdigit() else name


def to_label_name(text: str) -> str:
    """``text`` made a label name: characters outside the rule become ``_``."""
    name = _LABEL_BAD.sub("_", text)
    return "_" + name if name[:1].isdigit() else name
