"""The JSON push format -> samples.

One object or an array of objects::

    {"resource_id": "host:web-01",
     "time": 1714564800 | 1714564800000 | "2024-05-01T12:00:00Z",   (optional: now)
     "labels": {"env": "prod"},                                       (optional)
     "metrics": {"cpu_user": 12.5,
                 "net_rx_bytes": {"value": 123456, "kind": "counter",
                                  "labels": {"interface": "eth0"}}}}

Object labels and per-metric labels become the sample's labels (they tell
series apart). Without ``resource_id``, the token's resource template builds the
id from the object's labels (default ``{host,instance|noport,host.name}``), and
the labels it used are not labels of the samples. Values are numbers (booleans count as 1/0); a counter's value is
a non-negative integer, except a ``float_counter``'s
(a float that only grows and resets, as Prometheus counters are). Unknown keys are refused. Any invalid object rejects
the whole request (400 naming its JSON path, e.g. ``$[3].metrics.cpu_user``).
"""

from __future__ import annotations

import math
from typing import Any

import orjson

from aggregator.grant import Grant, ResourceError
from aggregator.grouping import BatchBuilder, label_key
from aggregator.names import KIND_NAMES
from aggregator.rejection import Rejection, invalid
from aggregator.settings import AggregatorSettings
from aggregator.timestamps import TimeWindow, json_time_ms
from kemi_stats.model import MetricKind
from kemi_stats.names import (
    InvalidSeries,
    is_label_name,
    is_metric_name,
    label_name_expected,
    metric_name_expected,
    resource_id_problem,
)

__all__ = ["JsonPushParser"]

_OBJECT_KEYS = frozenset({"resource_id", "time", "labels", "metrics"})
_METRIC_KEYS = frozenset({"value", "kind", "labels"})
_U64_MAX = (1 << 64) - 1
_I64_MIN = -(1 << 63)


class JsonPushParser:
    """Parses JSON push bodies into a :class:`BatchBuilder`."""

    def __init__(self, settings: AggregatorSettings) -> None:
        self.max_labels = settings.max_labels

    def parse(self, body: bytes, window: TimeWindow, out: BatchBuilder, grant: Grant) -> None:
        """Add every sample of ``body`` to ``out``; raise a 400 Rejection naming the JSON path."""
        if not body.strip():
            return
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            near = body[max(exc.pos - 20, 0) : exc.pos + 20].decode("utf-8", "replace")
            raise invalid(
                f"body is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
                line=exc.lineno,
                value=near,
                expected="a JSON object or array (no NaN or Infinity)",
            ) from None
        if isinstance(doc, dict):
            self._object(doc, "$", window, out, grant)
        elif isinstance(doc, list):
            for i, item in enumerate(doc):
                self._object(item, f"$[{i}]", window, out, grant)
        else:
            raise _bad("$", doc, "a JSON object or an array of objects")

    def _object(
        self, obj: Any, path: str, window: TimeWindow, out: BatchBuilder, grant: Grant
    ) -> None:
        if not isinstance(obj, dict):
            raise _bad(path, obj, "an object with resource_id and metrics")
        unknown = obj.keys() - _OBJECT_KEYS
        if unknown:
            key = sorted(unknown)[0]
            raise _bad(
                f"{path}.{key}", key, "only resource_id, time, labels, metrics", "unknown key"
            )
        labels = self._labels(obj.get("labels"), f"{path}.labels")
        resource = obj.get("resource_id")
        try:
            if resource is None:
                resource, used = grant.resource_from_tags(labels)
                labels = {k: v for k, v in labels.items() if k not in used}
            elif not isinstance(resource, str):
                raise _bad(f"{path}.resource_id", resource, "a string such as host:web-01")
            else:
                problem = resource_id_problem(resource)
                if problem:
                    raise _bad(
                        f"{path}.resource_id", resource, "a resource id", f"resource id {problem}"
                    )
                grant.check_resource(resource)
        except ResourceError as exc:
            where = f"{path}.resource_id"
            what = exc.what if "resource_id" in obj else f"missing, and the labels have {exc.what}"
            raise Rejection(
                exc.status,
                "forbidden" if exc.status == 403 else "invalid",
                f"{where}: {what}",
                path=where,
                value=exc.value,
                expected=exc.expected,
            ) from None
        if "time" in obj:
            try:
                time_ms = json_time_ms(obj["time"])
            except ValueError as exc:
                raise _bad(
                    f"{path}.time", obj["time"], str(exc).removeprefix("expected ")
                ) from None
            problem = window.problem(time_ms)
            if problem:
                raise _bad(f"{path}.time", obj["time"], "a time near now", f"time {problem}")
        else:
            time_ms = window.now_ms
        metrics = obj.get("metrics")
        if not isinstance(metrics, dict):
            raise _bad(f"{path}.metrics", metrics, "an object of metric name -> value")
        group = out.group(resource, time_ms)
        base_key = label_key(labels)
        for name, spec in metrics.items():
            mpath = f"{path}.metrics.{name}"
            if not is_metric_name(name):
                raise _bad(mpath, name, f"a metric name matching {metric_name_expected()}")
            kind = MetricKind.GAUGE
            sample_labels, skey = labels, base_key
            if isinstance(spec, dict):
                unknown = spec.keys() - _METRIC_KEYS
                if unknown:
                    key = sorted(unknown)[0]
                    raise _bad(f"{mpath}.{key}", key, "only value, kind, labels", "unknown key")
                if "kind" in spec:
                    kind_found = (
                        KIND_NAMES.get(spec["kind"]) if isinstance(spec["kind"], str) else None
                    )
                    if kind_found is None:
                        raise _bad(f"{mpath}.kind", spec["kind"], ", ".join(KIND_NAMES))
                    kind = kind_found
                if "labels" in spec:
                    extra = self._labels(spec["labels"], f"{mpath}.labels")
                    sample_labels = {**labels, **extra}
                    if len(sample_labels) > self.max_labels:
                        raise _bad(
                            f"{mpath}.labels",
                            len(sample_labels),
                            f"at most {self.max_labels} labels",
                        )
                    skey = label_key(sample_labels)
                if "value" not in spec:
                    raise _bad(f"{mpath}.value", None, "a number", "value is required")
                value = _number(spec["value"], f"{mpath}.value")
                vpath = f"{mpath}.value"
            else:
                value = _number(spec, mpath)
                vpath = mpath
            if kind is MetricKind.FLOAT_COUNTER:
                if value < 0:
                    raise _bad(vpath, value, "a non-negative number (a counter)")
                value = float(value)
            elif kind is not MetricKind.GAUGE:
                value = _counter(value, vpath)
            try:
                out.put(group, name, value, sample_labels, skey, kind)
            except InvalidSeries as exc:
                raise invalid(f"{mpath}: {exc}", path=mpath) from None

    def _labels(self, labels: Any, path: str) -> dict[str, str]:
        if labels is None:
            return {}
        if not isinstance(labels, dict):
            raise _bad(path, labels, "an object of label name -> string")
        if len(labels) > self.max_labels:
            raise _bad(path, len(labels), f"at most {self.max_labels} labels")
        for key, value in labels.items():
            if not is_label_name(key):
                raise _bad(f"{path}.{key}", key, f"a label name matching {label_name_expected()}")
            if not isinstance(value, str):
                raise _bad(f"{path}.{key}", value, "a string")
        return labels


def _number(value: Any, path: str) -> int | float:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        if not _I64_MIN <= value <= _U64_MAX:
            raise _bad(path, value, "an integer within int64/uint64")
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _bad(path, value, "a finite number")
        return value
    raise _bad(path, value, "a number")


def _counter(value: int | float, path: str) -> int:
    if isinstance(value, float):
        if not value.is_integer() or value > _U64_MAX:
            raise _bad(path, value, "a non-negative integer (a counter)")
        value = int(value)
    if value < 0:
        raise _bad(path, value, "a non-negative integer (a counter)")
    return value


def _bad(path: str, value: Any, expected: str, what: str | None = None) -> Rejection:
    problem = what or f"got {_brief(value)}"
    return invalid(
        f"{path}: {problem}; expected {expected}", path=path, value=value, expected=expected
    )


def _brief(value: Any) -> str:
    try:
        text = (
            orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
            if _jsonable(value)
            else repr(value)
        )
    except (TypeError, RecursionError):  # nested deeper than orjson writes
        text = f"a {type(value).__name__} nested too deep to show"
    return text if len(text) <= 80 else text[:80] + "..."


def _jsonable(value: Any) -> bool:
    return not (isinstance(value, float) and not math.isfinite(value))
