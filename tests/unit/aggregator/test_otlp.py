"""OTLP metrics: kinds and names as the OpenTelemetry-Prometheus rules make them, resource
ids from resource attributes, points left out and counted, and the OTLP answers."""

from __future__ import annotations

import math
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import make_mocked_request
from google.protobuf import json_format
from google.rpc import status_pb2
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import (
    AnyValue,
    ArrayValue,
    InstrumentationScope,
    KeyValue,
)
from opentelemetry.proto.metrics.v1.metrics_pb2 import (
    AGGREGATION_TEMPORALITY_CUMULATIVE,
    AGGREGATION_TEMPORALITY_DELTA,
    ExponentialHistogram,
    ExponentialHistogramDataPoint,
    Gauge,
    Histogram,
    HistogramDataPoint,
    Metric,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
    Summary,
    SummaryDataPoint,
)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from aggregator.grant import Grant
from aggregator.grouping import BatchBuilder
from aggregator.otlp import OtlpParser, otlp_refusal, otlp_response
from aggregator.rejection import Rejection
from aggregator.settings import AggregatorSettings
from aggregator.timestamps import TimeWindow
from kemi_stats.model import MetricKind, Sample, SampleBatch
from tests.unit.aggregator.support import make_grant

NOW_MS = 1_714_564_800_000
NOW_NS = NOW_MS * 1_000_000
WINDOW = TimeWindow.around(NOW_MS, 7 * 86400, 600)
GRANT = make_grant()
PROTOBUF = "application/x-protobuf"
JSON = "application/json"
HOST = {"host.name": "web-01", "service.name": "checkout"}


# -- building requests ---------------------------------------------------------------


def kvs(attrs: dict[str, Any]) -> list[KeyValue]:
    return [KeyValue(key=k, value=any_value(v)) for k, v in attrs.items()]


def any_value(v: Any) -> AnyValue:
    if isinstance(v, bool):
        return AnyValue(bool_value=v)
    if isinstance(v, int):
        return AnyValue(int_value=v)
    if isinstance(v, float):
        return AnyValue(double_value=v)
    if isinstance(v, list):
        return AnyValue(array_value=ArrayValue(values=[any_value(x) for x in v]))
    return AnyValue(string_value=v)


def number(value: float | int, t: int = NOW_NS, flags: int = 0, **attrs: Any) -> NumberDataPoint:
    point = NumberDataPoint(time_unix_nano=t, attributes=kvs(attrs), flags=flags)
    if isinstance(value, int):
        point.as_int = value
    else:
        point.as_double = value
    return point


def gauge(name: str, *points: NumberDataPoint, unit: str = "") -> Metric:
    return Metric(name=name, unit=unit, gauge=Gauge(data_points=points))


def total(
    name: str,
    *points: NumberDataPoint,
    unit: str = "",
    monotonic: bool = True,
    temporality: int = AGGREGATION_TEMPORALITY_CUMULATIVE,
) -> Metric:
    return Metric(
        name=name,
        unit=unit,
        sum=Sum(data_points=points, is_monotonic=monotonic, aggregation_temporality=temporality),
    )


def request(*metrics: Metric, resource: dict[str, Any] = HOST) -> ExportMetricsServiceRequest:
    return ExportMetricsServiceRequest(resource_metrics=[resource_metrics(resource, *metrics)])


def resource_metrics(attrs: dict[str, Any], *metrics: Metric) -> ResourceMetrics:
    return ResourceMetrics(
        resource=Resource(attributes=kvs(attrs)),
        scope_metrics=[
            ScopeMetrics(
                scope=InstrumentationScope(name="checkout.lib", version="1.2"), metrics=metrics
            )
        ],
    )


def parse(
    req: ExportMetricsServiceRequest | bytes,
    grant: Grant = GRANT,
    content_type: str = PROTOBUF,
    settings: AggregatorSettings | None = None,
) -> tuple[list[SampleBatch], BatchBuilder]:
    body = req if isinstance(req, bytes) else req.SerializeToString()
    out = BatchBuilder()
    OtlpParser(settings or AggregatorSettings()).parse(body, content_type, WINDOW, out, grant)
    return out.batches(), out


def samples(req: ExportMetricsServiceRequest, **kwargs: Any) -> dict[tuple[str, str], Sample]:
    """Every sample written, by (metric, its le/quantile label or "")."""
    batches, out = parse(req, **kwargs)
    assert not out.dropped, out.drop_notes
    found = {}
    for batch in batches:
        for s in batch.samples:
            found[s.metric, s.labels.get("le", s.labels.get("quantile", ""))] = s
    return found


# -- kinds and names -----------------------------------------------------------------


def test_gauge_names_the_resource_by_host_name_and_labels_by_the_other_attributes() -> None:
    req = request(
        gauge("system.cpu.utilization", number(0.25, cpu="0"), number(3, cpu="1"), unit="1"),
        resource={
            **HOST,
            "deployment.environment": "prod",
            "process.pid": 42,
            "up": True,
            "tags": ["a", 1],
        },
    )
    (batch,) = parse(req)[0]
    assert (batch.resource_id, batch.time_ms) == ("web-01", NOW_MS)
    by_cpu = {s.labels["cpu"]: s for s in batch.samples}
    assert by_cpu["0"] == Sample(
        "system_cpu_utilization_ratio",
        0.25,
        {
            "cpu": "0",
            "service_name": "checkout",
            "deployment_environment": "prod",
            "process_pid": "42",
            "up": "true",
            "tags": '["a",1]',
        },
        MetricKind.GAUGE,
    )
    assert by_cpu["1"].value == 3  # as_int stays an integer in a gauge


def test_monotonic_cumulative_sum_is_a_float_counter_ending_in_total() -> None:
    found = samples(
        request(
            total("http.server.requests", number(12, route="/cart")),
            total("net.io", number(1.5e9), unit="By"),
            total("jobs_total", number(3)),
            total("queue.wait", number(2.5), unit="ms"),
            total("http.requests", number(7), unit="{request}"),
        )
    )
    assert found["http_server_requests_total", ""] == Sample(
        "http_server_requests_total",
        12.0,
        {"route": "/cart", "service_name": "checkout"},
        MetricKind.FLOAT_COUNTER,
    )
    assert isinstance(found["http_server_requests_total", ""].value, float)
    assert set(found) == {
        ("http_server_requests_total", ""),
        ("net_io_bytes_total", ""),
        ("jobs_total", ""),
        ("queue_wait_milliseconds_total", ""),
        ("http_requests_total", ""),
    }
    assert all(s.kind is MetricKind.FLOAT_COUNTER for s in found.values())


def test_non_monotonic_sum_is_a_gauge() -> None:
    found = samples(request(total("db.pool.used", number(4), monotonic=False, unit="{conn}")))
    assert found["db_pool_used", ""].kind is MetricKind.GAUGE
    assert found["db_pool_used", ""].value == 4


@pytest.mark.parametrize(
    ("name", "unit", "expected"),
    [
        ("http.server.duration", "s", "http_server_duration_seconds"),
        ("http.server.duration_seconds", "s", "http_server_duration_seconds"),
        ("memory.usage", "KiBy", "memory_usage_kibibytes"),
        ("disk.io.rate", "By/s", "disk_io_rate_bytes_per_second"),
        ("weird--name..x", "", "weird_name_x"),
        ("9lives", "", "_9lives"),
        ("items", "{thing}", "items"),
        ("load", "1", "load_ratio"),
        ("temp", "Cel", "temp_Cel"),
    ],
)
def test_names_and_unit_suffixes(name: str, unit: str, expected: str) -> None:
    assert set(samples(request(gauge(name, number(1.0), unit=unit)))) == {(expected, "")}


def test_unit_one_adds_no_ratio_to_a_counter() -> None:
    assert set(samples(request(total("restarts", number(2), unit="1")))) == {("restarts_total", "")}


def test_histogram_writes_cumulative_buckets_sum_and_count() -> None:
    point = HistogramDataPoint(
        time_unix_nano=NOW_NS,
        attributes=kvs({"route": "/cart"}),
        count=10,
        sum=4.25,
        explicit_bounds=[0.005, 0.5, 1.0],
        bucket_counts=[1, 5, 3, 1],
    )
    hist = Histogram(
        data_points=[point], aggregation_temporality=AGGREGATION_TEMPORALITY_CUMULATIVE
    )
    found = samples(request(Metric(name="http.latency", unit="s", histogram=hist)))
    buckets = {le: s.value for (m, le), s in found.items() if m == "http_latency_seconds_bucket"}
    assert buckets == {"0.005": 1.0, "0.5": 6.0, "1": 9.0, "+Inf": 10.0}
    assert found["http_latency_seconds_sum", ""].value == 4.25
    assert found["http_latency_seconds_count", ""].value == 10.0
    assert all(s.kind is MetricKind.FLOAT_COUNTER for s in found.values())
    assert found["http_latency_seconds_bucket", "1"].labels == {
        "route": "/cart",
        "service_name": "checkout",
        "le": "1",
    }


def test_histogram_without_sum_or_buckets() -> None:
    point = HistogramDataPoint(time_unix_nano=NOW_NS, count=3)
    hist = Histogram(
        data_points=[point], aggregation_temporality=AGGREGATION_TEMPORALITY_CUMULATIVE
    )
    found = samples(request(Metric(name="h", histogram=hist)))
    assert set(found) == {("h_bucket", "+Inf"), ("h_count", "")}


def test_summary_writes_quantile_gauges_sum_and_count() -> None:
    point = SummaryDataPoint(
        time_unix_nano=NOW_NS,
        count=100,
        sum=52.5,
        quantile_values=[
            SummaryDataPoint.ValueAtQuantile(quantile=0.5, value=0.4),
            SummaryDataPoint.ValueAtQuantile(quantile=0.99, value=1.9),
        ],
    )
    metric = Metric(name="rpc.duration", unit="s", summary=Summary(data_points=[point]))
    found = samples(request(metric))
    assert found["rpc_duration_seconds", "0.5"].value == 0.4
    assert found["rpc_duration_seconds", "0.99"].kind is MetricKind.GAUGE
    assert found["rpc_duration_seconds_sum", ""] == Sample(
        "rpc_duration_seconds_sum", 52.5, {"service_name": "checkout"}, MetricKind.FLOAT_COUNTER
    )
    assert found["rpc_duration_seconds_count", ""].kind is MetricKind.FLOAT_COUNTER


def test_scope_is_not_a_label_and_point_attributes_win_over_resource_ones() -> None:
    req = request(gauge("g", number(1.0, **{"service.name": "override", "tier": "web"})))
    (sample,) = samples(req).values()
    assert sample.labels == {"service_name": "override", "tier": "web"}


def test_otlp_json_with_camel_case_enum_ints_and_hex_exemplar_ids() -> None:
    doc = {
        "resourceMetrics": [
            {
                "resource": {
                    "attributes": [{"key": "host.name", "value": {"stringValue": "web-02"}}]
                },
                "scopeMetrics": [
                    {
                        "scope": {"name": "x"},
                        "metrics": [
                            {
                                "name": "orders",
                                "unit": "{order}",
                                "sum": {
                                    "aggregationTemporality": 2,
                                    "isMonotonic": True,
                                    "dataPoints": [
                                        {
                                            "timeUnixNano": str(NOW_NS),
                                            "asInt": "5",
                                            "attributes": [
                                                {"key": "shop", "value": {"intValue": "3"}}
                                            ],
                                            "exemplars": [
                                                {
                                                    "timeUnixNano": str(NOW_NS),
                                                    "asDouble": 1.0,
                                                    "traceId": "5b8efff798038103d269b633813fc60c",
                                                    "spanId": "eee19b7ec3c1b174",
                                                }
                                            ],
                                        }
                                    ],
                                },
                                "someFutureField": 1,
                            }
                        ],
                    }
                ],
            }
        ]
    }
    (batch,) = parse(orjson.dumps(doc), content_type=JSON)[0]
    assert batch.resource_id == "web-02"
    assert batch.samples == [Sample("orders_total", 5.0, {"shop": "3"}, MetricKind.FLOAT_COUNTER)]


def test_time_zero_is_now_and_points_at_other_times_get_their_own_batch() -> None:
    req = request(gauge("g", number(1.0, t=0), number(2.0, t=NOW_NS - 10_000_000_000)))
    batches = parse(req)[0]
    assert sorted(b.time_ms for b in batches) == [NOW_MS - 10_000, NOW_MS]


# -- points left out, counted and explained ------------------------------------------


def test_delta_sum_and_exponential_histogram_are_left_out_the_rest_written() -> None:
    exp = ExponentialHistogram(
        data_points=[ExponentialHistogramDataPoint(time_unix_nano=NOW_NS, count=1)] * 2,
        aggregation_temporality=AGGREGATION_TEMPORALITY_CUMULATIVE,
    )
    delta_hist = Histogram(
        data_points=[HistogramDataPoint(time_unix_nano=NOW_NS, count=1)],
        aggregation_temporality=AGGREGATION_TEMPORALITY_DELTA,
    )
    req = request(
        total("orders", number(1), number(2, shop="b"), temporality=AGGREGATION_TEMPORALITY_DELTA),
        Metric(name="latency", exponential_histogram=exp),
        Metric(name="size", histogram=delta_hist),
        gauge("kept", number(1.0)),
    )
    (batch,), out = parse(req)
    assert [s.metric for s in batch.samples] == ["kept"]
    assert out.dropped == {"delta_temporality": 3, "exponential_histogram": 2}
    assert out.dropped_total == 5
    notes = "; ".join(out.drop_notes)
    assert "metric 'orders': delta temporality is not accepted" in notes
    assert "(2 points)" in notes
    assert "metric 'latency': exponential histograms are not supported" in notes
    assert "metric 'size': delta" in notes


def test_resource_without_id_attributes_is_left_out_the_others_written() -> None:
    req = ExportMetricsServiceRequest(
        resource_metrics=[
            resource_metrics({"service.name": "batch-job"}, gauge("g", number(1.0), number(2.0))),
            resource_metrics(HOST, gauge("g", number(3.0))),
        ]
    )
    (batch,), out = parse(req)
    assert batch.resource_id == "web-01"
    assert out.dropped == {"no_resource_id": 2}
    (note,) = out.drop_notes
    assert note.startswith("resource {service.name=batch-job}: no tag 'host', 'instance' or")
    assert "token test" in note


def test_resource_outside_the_tokens_prefix_is_left_out() -> None:
    grant = make_grant(resource_prefix="tenant-")
    req = ExportMetricsServiceRequest(
        resource_metrics=[
            resource_metrics(HOST, gauge("g", number(1.0))),
            resource_metrics({"host.name": "tenant-a1"}, gauge("g", number(2.0))),
        ]
    )
    (batch,), out = parse(req, grant=grant)
    assert batch.resource_id == "tenant-a1"
    assert out.dropped == {"outside_prefix": 1}
    assert "may only write resources starting with 'tenant-'" in out.drop_notes[0]


def test_template_of_the_token_builds_the_id() -> None:
    grant = make_grant(resource_template="svc:{service.name}/{host.name}")
    (batch,) = parse(request(gauge("g", number(1.0))), grant=grant)[0]
    assert batch.resource_id == "svc:checkout/web-01"
    assert batch.samples[0].labels == {}


@pytest.mark.parametrize(
    ("point", "reason"),
    [
        (number(math.nan), "not_finite"),
        (number(math.inf), "not_finite"),
        (number(1.0, flags=1), "no_recorded_value"),
        (number(1.0, t=NOW_NS + 3600 * 10**9), "time_out_of_window"),
        (NumberDataPoint(time_unix_nano=NOW_NS), "no_value"),
    ],
)
def test_bad_points_are_left_out_and_counted(point: NumberDataPoint, reason: str) -> None:
    (batch,), out = parse(request(gauge("g", point, number(5.0, other="x"))))
    assert [s.value for s in batch.samples] == [5.0]
    assert out.dropped == {reason: 1}
    assert out.drop_notes[0].startswith("metric 'g': ")


def test_out_of_window_note_says_how_far() -> None:
    _, out = parse(request(gauge("g", number(1.0, t=NOW_NS + 3600 * 10**9))))
    assert out.drop_notes == ["metric 'g': time is 3600 s in the future (at most 600 s allowed)"]


def test_negative_counter_is_left_out() -> None:
    _, out = parse(request(total("c", number(-1.0))))
    assert out.dropped == {"negative_counter": 1}


def test_too_many_labels_leaves_the_point_out() -> None:
    settings = AggregatorSettings(max_labels=3)
    req = request(
        gauge("g", number(1.0, a="1"), number(2.0, a="1", b="2", c="3")),
        resource={"host.name": "h", "service.name": "s"},
    )
    (batch,), out = parse(req, settings=settings)
    assert [s.value for s in batch.samples] == [1.0]
    assert out.dropped == {"too_many_labels": 1}
    assert "4 labels (at most 3)" in out.drop_notes[0]


def test_histogram_with_mismatched_buckets_is_left_out() -> None:
    point = HistogramDataPoint(
        time_unix_nano=NOW_NS, count=3, explicit_bounds=[1.0, 2.0], bucket_counts=[1, 2]
    )
    hist = Histogram(
        data_points=[point], aggregation_temporality=AGGREGATION_TEMPORALITY_CUMULATIVE
    )
    batches, out = parse(request(Metric(name="h", histogram=hist)))
    assert batches == [] and out.dropped == {"invalid_histogram": 1}


def test_summary_nan_quantile_is_left_out_with_a_note_the_rest_written() -> None:
    point = SummaryDataPoint(
        time_unix_nano=NOW_NS,
        count=0,
        sum=0.0,
        quantile_values=[SummaryDataPoint.ValueAtQuantile(quantile=0.5, value=math.nan)],
    )
    (batch,), out = parse(request(Metric(name="s", summary=Summary(data_points=[point]))))
    assert sorted(s.metric for s in batch.samples) == ["s_count", "s_sum"]
    assert out.dropped_total == 0 and out.dropped == {"not_finite": 0}
    assert "quantile 0.5 is nan" in out.drop_notes[0]


# -- bodies that are not OTLP --------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "content_type", "says"),
    [
        (b"not protobuf at all", PROTOBUF, "not a protobuf OTLP ExportMetricsServiceRequest"),
        (b"\x92\x01\x00", PROTOBUF, "decodes to no resource_metrics"),
        (b"{nope", JSON, "body is not JSON"),
        (b"[1, 2]", JSON, "not a JSON object"),
        (b'{"metrics": {"cpu": 1}}', JSON, "no resourceMetrics"),
        (b'{"resourceMetrics": 5}', JSON, "not an OTLP ExportMetricsServiceRequest"),
    ],
)
def test_a_body_that_is_not_an_export_request_is_a_400(
    body: bytes, content_type: str, says: str
) -> None:
    out = BatchBuilder()
    with pytest.raises(Rejection) as info:
        OtlpParser(AggregatorSettings()).parse(body, content_type, WINDOW, out, GRANT)
    assert info.value.status == 400
    assert says in info.value.message
    assert out.batches() == [] and not out.dropped


@pytest.mark.parametrize("content_type", [PROTOBUF, JSON])
def test_an_empty_body_is_an_empty_export(content_type: str) -> None:
    assert parse(b"", content_type=content_type)[0] == []


# -- answers -------------------------------------------------------------------------


def http_request(content_type: str) -> Any:
    return make_mocked_request("POST", "/v1/metrics", headers={"Content-Type": content_type})


def test_response_in_protobuf_reports_partial_success() -> None:
    out = BatchBuilder()
    out.drop("delta_temporality", "metric 'a': delta", 3)
    out.drop("not_finite", "metric 'b': nan")
    response = otlp_response(http_request(PROTOBUF), out)
    assert response.status == 200 and response.content_type == PROTOBUF
    assert isinstance(response.body, bytes)
    decoded = ExportMetricsServiceResponse.FromString(response.body)
    assert decoded.partial_success.rejected_data_points == 4
    assert decoded.partial_success.error_message == "metric 'a': delta; metric 'b': nan"


def test_response_in_json_without_drops_is_empty() -> None:
    response = otlp_response(http_request("application/json; charset=utf-8"), BatchBuilder())
    assert response.status == 200 and response.content_type == JSON
    assert response.text is not None
    assert orjson.loads(response.text) == {}


def test_response_in_json_reports_partial_success() -> None:
    out = BatchBuilder()
    out.drop("no_resource_id", "resource {}: no tag", 2)
    response = otlp_response(http_request(JSON), out)
    assert response.text is not None
    decoded = json_format.Parse(response.text, ExportMetricsServiceResponse())
    assert decoded.partial_success.rejected_data_points == 2


def test_refusal_is_a_google_rpc_status_in_the_requests_encoding() -> None:
    rejection = Rejection(429, "rate_limited", "slow down", retry_after=3)
    response = otlp_refusal(http_request(PROTOBUF), rejection)
    assert (response.status, response.headers["Retry-After"]) == (429, "3")
    assert response.content_type == PROTOBUF
    assert isinstance(response.body, bytes)
    status = status_pb2.Status.FromString(response.body)
    assert (status.code, status.message) == (8, "slow down")  # RESOURCE_EXHAUSTED

    response = otlp_refusal(http_request(JSON), Rejection(400, "invalid", "body is not JSON"))
    assert response.status == 400 and response.content_type == JSON
    assert isinstance(response.body, bytes)
    assert orjson.loads(response.body) == {"code": 3, "message": "body is not JSON"}
    assert "Retry-After" not in response.headers
