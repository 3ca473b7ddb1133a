"""OTLP/HTTP metrics (``POST /v1/metrics``) -> samples.

The body is an ``ExportMetricsServiceRequest``: binary protobuf (``application/x-protobuf``)
or OTLP's JSON mapping (``application/json``: lowerCamelCase, enums as numbers, unknown
fields ignored). A body that does not decode is a 400 and nothing is written. Otherwise
the answer is a 200 ``ExportMetricsServiceResponse`` encoded as the request was, whose
``partial_success`` counts (``rejected_data_points``) and explains (``error_message``)
the data points left out; the rest is written. Refusals carry a ``google.rpc.Status``.

**Resources.** The resource attributes (``host.name``, ``service.name``, ...) are the
tags the token's resource template builds the resource id from (default
``{host,instance|noport,host.name}``). The attributes it used name the resource; the
others are labels of every sample of the resource, as data point attributes are
(``service.name`` -> ``service_name``; a data point attribute wins over a resource
attribute of the same label name, and attributes of one set that map to the same
name are joined with ``;``). Values: strings as they are, ``true``/``false``, numbers
in decimal, arrays and maps as JSON, bytes as base64; empty values are no labels.
Scope names and versions, exemplars and histogram min/max are not kept.

**Names**, as OpenTelemetry's Prometheus compatibility rules make them:

- characters outside ``[A-Za-z0-9_:]`` become ``_``, runs of ``_`` one ``_``;
- the unit becomes a suffix unless the name ends with it already: ``s`` seconds,
  ``ms`` milliseconds, ``us`` microseconds, ``ns`` nanoseconds, ``By`` bytes, ``KiBy``
  kibibytes, ``MiBy`` mebibytes, ``GiBy`` gibibytes, ``%`` percent; ``X/Y`` is
  ``X_per_Y`` with ``s``/``min``/``h``/``d`` as second/minute/hour/day (``By/s`` ->
  ``bytes_per_second``); ``{...}`` annotations are dropped (``{request}`` adds nothing);
  ``1`` adds ``ratio`` to a gauge and nothing to other kinds; any other unit is added as
  written (made a name);
- a monotonic cumulative sum ends in ``_total``, once (after the unit).

**Kinds**::

    Gauge                             <name>                      gauge
    Sum, monotonic, cumulative        <name>_total                float_counter
    Sum, not monotonic, cumulative    <name>                      gauge
    Histogram, cumulative             <name>_bucket{le="<bound>"} float_counter (cumulative
                                      counts, le="+Inf" too), <name>_sum, <name>_count
    Summary                           <name>{quantile="<q>"}      gauge
                                      <name>_sum, <name>_count    float_counter

Sample times are ``time_unix_nano`` (0: now). **Data points left out**, each counted
under its reason (``kemi_aggregator_points_dropped_total``) and explained in
``partial_success``::

    no_resource_id          the resource lacks the attributes its id is built from (all its points)
    outside_prefix          the resource id is outside the token's prefix (all its points)
    delta_temporality       a delta sum or histogram: export cumulative temporality instead
    unspecified_temporality a sum or histogram without temporality
    exponential_histogram   exponential histograms are not supported
    no_recorded_value       the point's NO_RECORDED_VALUE flag is set
    no_value                a number point with neither as_double nor as_int
    not_finite              a NaN or infinite value
    negative_counter        a monotonic sum below zero
    invalid_histogram       bucket counts that do not match the bounds, or a bound not finite
    time_out_of_window      too old or too far ahead (the aggregator's window)
    too_many_labels         more than KEMI_AGGREGATOR_MAX_LABELS labels
    invalid_metric_name     a name that maps to no metric name (empty or too long)
    invalid_label_name      an attribute key that maps to no label name (empty or too long)

A histogram's or summary's ``_sum`` that is negative or not finite, and a summary
quantile that is not finite, are left out of an otherwise written point: noted in
``error_message`` and counted under their reason with 0 points.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from google.rpc import status_pb2
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import (
    AGGREGATION_TEMPORALITY_CUMULATIVE,
    AGGREGATION_TEMPORALITY_DELTA,
    DataPointFlags,
    HistogramDataPoint,
    Metric,
    NumberDataPoint,
    ResourceMetrics,
    SummaryDataPoint,
)

from aggregator.grant import Grant, ResourceError
from aggregator.grouping import BatchBuilder, Group, LabelKey, label_key
from aggregator.otlp_names import metric_name, number_label
from aggregator.rejection import Rejection, invalid
from aggregator.settings import AggregatorSettings
from aggregator.timestamps import TimeWindow
from kemi_stats.model import MetricKind
from kemi_stats.names import (
    InvalidSeries,
    is_label_name,
    is_metric_name,
    label_value_problem,
    name_limits,
    to_label_name,
)

__all__ = ["OtlpParser", "otlp_refusal", "otlp_response"]

PROTOBUF = "application/x-protobuf"
JSON = "application/json"

_NO_RECORDED_VALUE = DataPointFlags.DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK
_GAUGE = MetricKind.GAUGE
_COUNTER = MetricKind.FLOAT_COUNTER
_CACHE_MAX = 100_000

#: HTTP status of a refusal -> the google.rpc.Code of its Status body
_GRPC_CODES = {
    400: 3,  # INVALID_ARGUMENT
    401: 16,  # UNAUTHENTICATED
    403: 7,  # PERMISSION_DENIED
    413: 8,  # RESOURCE_EXHAUSTED
    415: 3,  # INVALID_ARGUMENT
    429: 8,  # RESOURCE_EXHAUSTED
    503: 14,  # UNAVAILABLE
}
_UNKNOWN, _INTERNAL = 2, 13


class OtlpParser:
    """Parses OTLP metrics export requests into a :class:`BatchBuilder`."""

    def __init__(self, settings: AggregatorSettings) -> None:
        #: longer names and units cannot make a metric name: refused before any cache
        self.max_name_chars = 2 * name_limits().metric_max_length
        self.max_labels = settings.max_labels
        #: attribute key -> label name, or None when the key makes no valid label name
        self._label_names: dict[str, str | None] = {}

    def parse(
        self, body: bytes, content_type: str, window: TimeWindow, out: BatchBuilder, grant: Grant
    ) -> None:
        """Add the samples of ``body`` to ``out``; points left out are counted in ``out.dropped``.

        Raise a 400 Rejection when the body is not an ExportMetricsServiceRequest.
        """
        request = _decode(body, content_type)
        for resource_metrics in request.resource_metrics:
            self._resource(resource_metrics, window, out, grant)

    def _resource(
        self, rm: ResourceMetrics, window: TimeWindow, out: BatchBuilder, grant: Grant
    ) -> None:
        attrs = _attributes(rm.resource.attributes)
        try:
            resource, used = grant.resource_from_tags(attrs)
        except ResourceError as exc:
            reason = "outside_prefix" if exc.status == 403 else "no_resource_id"
            out.drop(reason, f"resource {_describe(attrs)}: {exc.what}", _count_points(rm))
            return
        try:
            labels = self._labels((k, v) for k, v in attrs.items() if k not in used)
        except _Dropped as exc:
            out.drop(exc.reason, f"resource {_describe(attrs)}: {exc.why}", _count_points(rm))
            return
        target = _Target(resource, labels, window, out)
        for scope in rm.scope_metrics:
            for metric in scope.metrics:
                drops = _Drops()
                try:
                    self._metric(metric, target, drops)
                except InvalidSeries as exc:  # the parser's own checks should come first
                    drops.add("invalid_series", str(exc))
                drops.report(metric.name, out)

    def _metric(self, metric: Metric, target: _Target, drops: _Drops) -> None:
        data = metric.WhichOneof("data")
        if len(metric.name) + len(metric.unit) > self.max_name_chars:
            # refused before the name cache keeps it
            drops.add("invalid_metric_name", f"name and unit of {len(metric.name)} and "
                      f"{len(metric.unit)} characters",
                      len(getattr(metric, data).data_points) if data else 0)  # fmt: skip
            return
        if data == "gauge":
            points = metric.gauge.data_points
            name = metric_name(metric.name, metric.unit, gauge=True)
            if _names_valid(name, points, drops):
                self._numbers(points, name, _GAUGE, target, drops)
        elif data == "sum":
            points = metric.sum.data_points
            if _cumulative(metric.sum.aggregation_temporality, points, drops):
                counter = metric.sum.is_monotonic
                name = metric_name(metric.name, metric.unit, counter=counter)
                if _names_valid(name, points, drops):
                    self._numbers(points, name, _COUNTER if counter else _GAUGE, target, drops)
        elif data == "histogram":
            hpoints = metric.histogram.data_points
            if _cumulative(metric.histogram.aggregation_temporality, hpoints, drops):
                name = metric_name(metric.name, metric.unit)
                if _names_valid(name + "_bucket", hpoints, drops):
                    self._histograms(hpoints, name, target, drops)
        elif data == "summary":
            spoints = metric.summary.data_points
            name = metric_name(metric.name, metric.unit)
            if _names_valid(name + "_count", spoints, drops):
                self._summaries(spoints, name, target, drops)
        elif data == "exponential_histogram":
            drops.add(
                "exponential_histogram",
                "exponential histograms are not supported; export explicit bucket histograms",
                len(metric.exponential_histogram.data_points),
            )

    def _numbers(
        self,
        points: Iterable[NumberDataPoint],
        name: str,
        kind: MetricKind,
        target: _Target,
        drops: _Drops,
    ) -> None:
        out = target.out
        for point in points:
            try:
                time_ms, labels = self._point(point, target, 0)
                value = _number(point)
                if kind is _COUNTER:
                    if value < 0:
                        raise _Dropped("negative_counter", f"counter value {value} is negative")
                    value = float(value)
            except _Dropped as exc:
                drops.add(exc.reason, exc.why)
                continue
            out.put(
                out.group(target.resource, time_ms), name, value, labels, label_key(labels), kind
            )

    def _histograms(
        self, points: Iterable[HistogramDataPoint], name: str, target: _Target, drops: _Drops
    ) -> None:
        out = target.out
        bucket = name + "_bucket"
        for point in points:
            try:
                time_ms, labels = self._point(point, target, 1)
                _check_buckets(point)
            except _Dropped as exc:
                drops.add(exc.reason, exc.why)
                continue
            group = out.group(target.resource, time_ms)
            cumulative = 0
            for bound, count in zip(point.explicit_bounds, point.bucket_counts, strict=False):
                cumulative += count
                le = {**labels, "le": number_label(bound)}
                out.put(group, bucket, float(cumulative), le, label_key(le), _COUNTER)
            le = {**labels, "le": "+Inf"}
            out.put(group, bucket, float(point.count), le, label_key(le), _COUNTER)
            key = label_key(labels)
            out.put(group, name + "_count", float(point.count), labels, key, _COUNTER)
            if point.HasField("sum"):
                _put_sum(out, group, name, point.sum, labels, key, drops)

    def _summaries(
        self, points: Iterable[SummaryDataPoint], name: str, target: _Target, drops: _Drops
    ) -> None:
        out = target.out
        for point in points:
            try:
                time_ms, labels = self._point(point, target, 1)
            except _Dropped as exc:
                drops.add(exc.reason, exc.why)
                continue
            group = out.group(target.resource, time_ms)
            for q in point.quantile_values:
                if not math.isfinite(q.value):
                    drops.add("not_finite", f"quantile {q.quantile:g} is {q.value} (left out)", 0)
                    continue
                ql = {**labels, "quantile": number_label(q.quantile)}
                out.put(group, name, q.value, ql, label_key(ql), _GAUGE)
            key = label_key(labels)
            out.put(group, name + "_count", float(point.count), labels, key, _COUNTER)
            _put_sum(out, group, name, point.sum, labels, key, drops)

    def _point(self, point: Any, target: _Target, extra: int) -> tuple[int, dict[str, str]]:
        """The time and labels of a data point (``extra`` labels to come); :class:`_Dropped`."""
        if point.flags & _NO_RECORDED_VALUE:
            raise _Dropped("no_recorded_value", "flagged no recorded value")
        nanos = point.time_unix_nano
        time_ms = nanos // 1_000_000 if nanos else target.window.now_ms
        problem = target.window.problem(time_ms)
        if problem:
            raise _Dropped("time_out_of_window", f"time {problem}")
        labels = target.labels
        if point.attributes:
            labels = {**labels, **self._labels(_attribute_items(point.attributes))}
        if len(labels) + extra > self.max_labels:
            raise _Dropped(
                "too_many_labels", f"{len(labels) + extra} labels (at most {self.max_labels})"
            )
        return time_ms, labels

    def _labels(self, items: Iterable[tuple[str, str]]) -> dict[str, str]:
        """Attributes as labels; :class:`_Dropped` for a key that makes no label name."""
        labels: dict[str, str] = {}
        for key, value in items:
            name = self._label_name(key)
            if name is None:
                raise _Dropped("invalid_label_name", f"attribute {key[:80]!r} is no label name")
            labels[name] = f"{labels[name]};{value}" if name in labels else value
        for name, value in labels.items():
            problem = label_value_problem(value)
            if problem is not None:
                raise _Dropped("invalid_label_value", f"label {name!r}: value {problem}")
        return labels

    def _label_name(self, key: str) -> str | None:
        if key in self._label_names:
            return self._label_names[key]
        name: str | None = to_label_name(key)
        if not is_label_name(name or ""):
            return None  # not cached: a long key would hold its bytes
        if len(self._label_names) >= _CACHE_MAX:
            self._label_names.clear()
        self._label_names[key] = name
        return name


@dataclass(frozen=True, slots=True)
class _Target:
    """Where the points of one resource go."""

    resource: str
    labels: dict[str, str]
    window: TimeWindow
    out: BatchBuilder


class _Dropped(Exception):
    """One data point left out for ``reason``; ``why`` explains it."""

    def __init__(self, reason: str, why: str) -> None:
        super().__init__(why)
        self.reason = reason
        self.why = why


class _Drops:
    """The points of one metric left out, by reason, with the first explanation of each.

    One note per metric and reason keeps ``partial_success`` readable when a whole
    metric is refused.
    """

    __slots__ = ("reasons",)

    def __init__(self) -> None:
        self.reasons: dict[str, tuple[int, str]] = {}

    def add(self, reason: str, why: str, count: int = 1) -> None:
        known = self.reasons.get(reason)
        self.reasons[reason] = (count, why) if known is None else (known[0] + count, known[1])

    def report(self, metric: str, out: BatchBuilder) -> None:
        for reason, (count, why) in self.reasons.items():
            points = f" ({count} points)" if count > 1 else ""
            out.drop(reason, f"metric {metric[:200]!r}: {why}{points}", count)


def _decode(body: bytes, content_type: str) -> ExportMetricsServiceRequest:
    request = ExportMetricsServiceRequest()
    if content_type == JSON:
        if not body.strip():
            return request
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise invalid(
                f"body is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
                line=exc.lineno,
                expected="an OTLP ExportMetricsServiceRequest in JSON",
            ) from None
        if not isinstance(doc, dict):
            raise invalid(
                "body is not a JSON object",
                value=body[:80].decode("utf-8", "replace"),
                expected="an OTLP ExportMetricsServiceRequest in JSON",
            )
        try:
            json_format.ParseDict(doc, request, ignore_unknown_fields=True)
        except (json_format.ParseError, RecursionError) as exc:
            raise invalid(
                f"body is not an OTLP ExportMetricsServiceRequest: {_cut(str(exc))}",
                expected="an OTLP ExportMetricsServiceRequest in JSON",
            ) from None
        if doc and not ({"resourceMetrics", "resource_metrics"} & doc.keys()):
            raise invalid(
                "body has no resourceMetrics (keys: "
                f"{_cut(', '.join(sorted(doc)))}); is it an OTLP metrics export?",
                expected="an OTLP ExportMetricsServiceRequest in JSON",
            )
        return request
    try:
        request.ParseFromString(body)
    except DecodeError as exc:
        raise invalid(
            f"body is not a protobuf OTLP ExportMetricsServiceRequest: {exc}",
            expected="an OTLP ExportMetricsServiceRequest (protobuf)",
        ) from None
    if body and not request.resource_metrics:
        # only fields it does not know: something else was sent here
        raise invalid(
            f"body ({len(body)} bytes) decodes to no resource_metrics; "
            "is it an OTLP metrics export?",
            expected="an OTLP ExportMetricsServiceRequest (protobuf)",
        )
    return request


def _check_buckets(point: HistogramDataPoint) -> None:
    bounds, counts = point.explicit_bounds, point.bucket_counts
    if counts and len(counts) != len(bounds) + 1:
        raise _Dropped(
            "invalid_histogram",
            f"{len(counts)} bucket counts for {len(bounds)} bounds (expected {len(bounds) + 1})",
        )
    if not all(math.isfinite(b) for b in bounds):
        raise _Dropped("invalid_histogram", "a bucket bound is not finite")


def _put_sum(
    out: BatchBuilder,
    group: Group,
    name: str,
    value: float,
    labels: dict[str, str],
    key: LabelKey,
    drops: _Drops,
) -> None:
    """``<name>_sum``, a counter: left out (and noted, 0 points) when negative or not finite."""
    if not math.isfinite(value):
        drops.add("not_finite", f"sum is {value} (the sum left out)", 0)
    elif value < 0:
        drops.add("negative_counter", f"sum {value} is negative (the sum left out)", 0)
    else:
        out.put(group, name + "_sum", float(value), labels, key, _COUNTER)


def _cumulative(temporality: int, points: Sequence[Any], drops: _Drops) -> bool:
    """Whether points of ``temporality`` are accepted; if not, all are counted as dropped."""
    if temporality == AGGREGATION_TEMPORALITY_CUMULATIVE:
        return True
    if temporality == AGGREGATION_TEMPORALITY_DELTA:
        drops.add(
            "delta_temporality",
            "delta temporality is not accepted; configure the exporter for cumulative",
            len(points),
        )
    else:
        drops.add("unspecified_temporality", "aggregation temporality unspecified", len(points))
    return False


def _names_valid(name: str, points: Sequence[Any], drops: _Drops) -> bool:
    if is_metric_name(name):
        return True
    drops.add("invalid_metric_name", f"maps to {name[:80]!r}, no metric name", len(points))
    return False


def _number(point: NumberDataPoint) -> int | float:
    which = point.WhichOneof("value")
    if which == "as_double":
        value = point.as_double
        if not math.isfinite(value):
            raise _Dropped("not_finite", f"value is {value}")
        return value
    if which == "as_int":
        return point.as_int
    raise _Dropped("no_value", "a data point has neither as_double nor as_int")


def _count_points(rm: ResourceMetrics) -> int:
    total = 0
    for scope in rm.scope_metrics:
        for metric in scope.metrics:
            data = metric.WhichOneof("data")
            if data is not None:
                total += len(getattr(metric, data).data_points)
    return total


def _attribute_items(kvs: Iterable[KeyValue]) -> Iterable[tuple[str, str]]:
    for kv in kvs:
        text = _any_text(kv.value)
        if text:
            yield kv.key, text


def _attributes(kvs: Iterable[KeyValue]) -> dict[str, str]:
    """Resource attributes as tags: dotted keys, values as text (empty ones left out)."""
    return dict(_attribute_items(kvs))


def _any_text(value: AnyValue) -> str:
    which = value.WhichOneof("value")
    if which == "string_value":
        return value.string_value
    if which == "bool_value":
        return "true" if value.bool_value else "false"
    if which == "int_value":
        return str(value.int_value)
    if which == "double_value":
        return repr(value.double_value)
    if which == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    if which in ("array_value", "kvlist_value"):
        return orjson.dumps(_any_json(value)).decode()
    return ""


def _any_json(value: AnyValue) -> Any:
    which = value.WhichOneof("value")
    if which == "array_value":
        return [_any_json(v) for v in value.array_value.values]
    if which == "kvlist_value":
        return {kv.key: _any_json(kv.value) for kv in value.kvlist_value.values}
    if which == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    return getattr(value, which) if which else None


def _describe(attrs: dict[str, str]) -> str:
    return "{" + _cut(", ".join(f"{k}={v}" for k, v in attrs.items())) + "}"


def _cut(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def _wants_protobuf(request: web.Request) -> bool:
    return request.content_type == PROTOBUF


def otlp_response(request: web.Request, out: BatchBuilder) -> web.Response:
    """200 with an ExportMetricsServiceResponse; ``partial_success`` says what was left out."""
    response = ExportMetricsServiceResponse()
    if out.dropped or out.drop_notes:
        response.partial_success.rejected_data_points = out.dropped_total
        response.partial_success.error_message = "; ".join(out.drop_notes)
    if _wants_protobuf(request):
        return web.Response(body=response.SerializeToString(), content_type=PROTOBUF)
    return web.Response(text=json_format.MessageToJson(response, indent=None), content_type=JSON)


def otlp_refusal(request: web.Request, rejection: Rejection) -> web.Response:
    """The rejection's status and headers with a ``google.rpc.Status`` body, encoded as the request."""
    response = rejection.response()  # status, Retry-After, WWW-Authenticate
    code = _GRPC_CODES.get(rejection.status, _INTERNAL if rejection.status >= 500 else _UNKNOWN)
    if _wants_protobuf(request):
        status = status_pb2.Status(code=code, message=rejection.message)
        response.body = status.SerializeToString()
        response.content_type = PROTOBUF
    else:
        response.body = orjson.dumps({"code": code, "message": rejection.message})
        response.content_type = JSON
    return response
