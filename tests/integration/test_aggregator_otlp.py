"""OpenTelemetry's own SDK and OTLP/HTTP exporter, unchanged, against the aggregator.

The real ``OTLPMetricExporter`` (protobuf, plain and gzip) posts to ``/v1/metrics`` of a
real aggregator process; what it wrote is read back from the topic. The SDK exporter
does not show the response body, so partial success (a delta counter refused) is
checked by posting the SDK's own encoding of a collection with aiohttp.
"""

from __future__ import annotations

import asyncio
import gzip
import math
import time
import uuid
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from google.protobuf import json_format
from google.rpc import status_pb2
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.sdk.metrics import Counter, MeterProvider
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    InMemoryMetricReader,
    MetricExportResult,
    MetricsData,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource

from kemi_stats.model import MetricKind
from tests.integration.test_aggregator_push import SECRET, Aggregator, aggregator

pytestmark = pytest.mark.integration
__all__ = ["aggregator"]  # the module-scoped aggregator process

PROTOBUF = "application/x-protobuf"
JSON = "application/json"


class RecordingExporter(OTLPMetricExporter):
    """The SDK's OTLP/HTTP exporter, keeping the result of each export."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.results: list[MetricExportResult] = []

    def export(
        self, metrics_data: MetricsData, timeout_millis: float | None = 10_000, **kwargs: object
    ) -> MetricExportResult:
        result = super().export(metrics_data, timeout_millis, **kwargs)
        self.results.append(result)
        return result


def _host(tag: str) -> str:
    return f"otel-{tag}-{uuid.uuid4().hex[:8]}"


def _resource(host: str) -> Resource:
    return Resource.create({"host.name": host, "service.name": "checkout"})


def _cpu(options: CallbackOptions) -> Iterator[Observation]:
    yield Observation(0.25, {"core": "0"})


def _queue(options: CallbackOptions) -> Iterator[Observation]:
    yield Observation(7, {"queue": "payments"})


@pytest.mark.parametrize("compression", [Compression.NoCompression, Compression.Gzip])
def test_sdk_exporter_writes_counter_gauge_and_histogram(
    aggregator: Aggregator, compression: Compression
) -> None:
    host = _host(compression.value)
    exporter = RecordingExporter(
        endpoint=aggregator.url + "/v1/metrics",
        headers={"Authorization": f"Bearer {SECRET}"},
        compression=compression,
    )
    # math.inf: no background thread; force_flush collects and exports exactly once
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=math.inf)
    provider = MeterProvider(resource=_resource(host), metric_readers=[reader])
    meter = provider.get_meter("checkout.instrumentation", "1.0")
    orders = meter.create_counter("checkout.orders", unit="{order}")
    orders.add(3, {"shop": "web"})
    orders.add(2, {"shop": "web"})
    meter.create_observable_gauge("checkout.cpu.utilization", callbacks=[_cpu], unit="1")
    latency = meter.create_histogram(
        "checkout.latency", unit="s", explicit_bucket_boundaries_advisory=[0.1, 0.5, 1.0]
    )
    for seconds in (0.05, 0.3, 0.7, 2.0):
        latency.record(seconds, {"route": "/pay"})
    started_ms = time.time() * 1000
    assert provider.force_flush()
    provider.shutdown()
    assert exporter.results == [MetricExportResult.SUCCESS]

    (batch,) = asyncio.run(aggregator.records({host}, 1))
    assert abs(batch.time_ms - started_ms) < 10_000
    found = {(s.metric, s.labels.get("le", "")): s for s in batch.samples}
    orders_total = found["checkout_orders_total", ""]
    assert (orders_total.value, orders_total.kind) == (5.0, MetricKind.FLOAT_COUNTER)
    # the resource attributes the template did not use are labels; host.name named the resource
    assert orders_total.labels["shop"] == "web"
    assert orders_total.labels["service_name"] == "checkout"
    assert orders_total.labels["telemetry_sdk_language"] == "python"
    assert "host_name" not in orders_total.labels
    cpu = found["checkout_cpu_utilization_ratio", ""]
    assert (cpu.value, cpu.kind, cpu.labels["core"]) == (0.25, MetricKind.GAUGE, "0")
    buckets = {
        le: s.value
        for (metric, le), s in found.items()
        if metric == "checkout_latency_seconds_bucket"
    }
    assert buckets == {"0.1": 1.0, "0.5": 2.0, "1": 3.0, "+Inf": 4.0}
    assert found["checkout_latency_seconds_count", ""].value == 4.0
    assert found["checkout_latency_seconds_sum", ""].value == pytest.approx(3.05)
    assert found["checkout_latency_seconds_sum", ""].labels["route"] == "/pay"
    assert all(
        s.kind is MetricKind.FLOAT_COUNTER
        for s in batch.samples
        if s.metric.startswith("checkout_latency")
    )
    assert {s.metric for s in batch.samples} == {
        "checkout_orders_total",
        "checkout_cpu_utilization_ratio",
        "checkout_latency_seconds_bucket",
        "checkout_latency_seconds_count",
        "checkout_latency_seconds_sum",
    }


def _delta_request(host: str) -> ExportMetricsServiceRequest:
    """What an exporter preferring delta counters sends: the SDK's encoding of one collection."""
    reader = InMemoryMetricReader(preferred_temporality={Counter: AggregationTemporality.DELTA})
    provider = MeterProvider(resource=_resource(host), metric_readers=[reader])
    meter = provider.get_meter("checkout.instrumentation", "1.0")
    meter.create_counter("checkout.refunds").add(1, {"shop": "web"})
    meter.create_observable_gauge("checkout.queue.depth", callbacks=[_queue], unit="{item}")
    data = reader.get_metrics_data()
    provider.shutdown()
    assert data is not None
    return encode_metrics(data)


async def _post(
    aggregator: Aggregator, body: bytes, content_type: str, token: str | None = SECRET
) -> tuple[int, dict[str, str], bytes]:
    return await aggregator.post("/v1/metrics", body, token, **{"Content-Type": content_type})


async def test_delta_counter_is_refused_in_partial_success_the_rest_written(
    aggregator: Aggregator,
) -> None:
    pb_host, json_host = _host("delta-pb"), _host("delta-json")

    status, headers, body = await _post(
        aggregator, _delta_request(pb_host).SerializeToString(), PROTOBUF
    )
    assert status == 200, body
    assert headers["Content-Type"] == PROTOBUF
    answer = ExportMetricsServiceResponse.FromString(body)
    assert answer.partial_success.rejected_data_points == 1
    assert "'checkout.refunds': delta temporality" in answer.partial_success.error_message

    as_json = json_format.MessageToJson(_delta_request(json_host), use_integers_for_enums=True)
    status, headers, body = await _post(aggregator, as_json.encode(), JSON)
    assert status == 200, body
    assert headers["Content-Type"].startswith(JSON)
    answer = json_format.Parse(body, ExportMetricsServiceResponse())
    assert answer.partial_success.rejected_data_points == 1

    batches = await aggregator.records({pb_host, json_host}, 2)
    assert sorted(b.resource_id for b in batches) == sorted([pb_host, json_host])
    for batch in batches:
        (depth,) = batch.samples  # the refunds counter is not on the topic
        assert (depth.metric, depth.value, depth.kind) == (
            "checkout_queue_depth",
            7,
            MetricKind.GAUGE,
        )
        assert depth.labels["queue"] == "payments"
        assert depth.labels["service_name"] == "checkout"


async def test_resource_without_an_id_is_refused_in_partial_success(aggregator: Aggregator) -> None:
    request = _delta_request(_host("noid"))
    for attr in request.resource_metrics[0].resource.attributes:
        if attr.key == "host.name":
            attr.key = "hostname"
    status, _, body = await _post(aggregator, request.SerializeToString(), PROTOBUF)
    assert status == 200, body
    answer = ExportMetricsServiceResponse.FromString(body)
    assert answer.partial_success.rejected_data_points == 2  # both metrics' points
    assert "no tag 'host', 'instance' or 'host.name'" in answer.partial_success.error_message


async def test_refusals_are_google_rpc_status_bodies(aggregator: Aggregator) -> None:
    status, headers, body = await _post(aggregator, b"not protobuf at all", PROTOBUF)
    assert status == 400 and headers["Content-Type"] == PROTOBUF
    refusal = status_pb2.Status.FromString(body)
    assert refusal.code == 3  # INVALID_ARGUMENT
    assert "not a protobuf OTLP ExportMetricsServiceRequest" in refusal.message

    status, headers, body = await _post(aggregator, b"{nope", JSON)
    assert status == 400 and headers["Content-Type"].startswith(JSON)
    assert orjson.loads(body)["message"].startswith("body is not JSON")

    truncated = gzip.compress(_delta_request(_host("gz")).SerializeToString())[:-8]
    status, _, body = await aggregator.post(
        "/v1/metrics", truncated, **{"Content-Type": PROTOBUF, "Content-Encoding": "gzip"}
    )
    assert status == 400
    assert "gzip" in status_pb2.Status.FromString(body).message

    status, _, body = await _post(aggregator, b"", PROTOBUF, token="wrong")
    assert status == 401
    assert status_pb2.Status.FromString(body).code == 16  # UNAUTHENTICATED

    status, _, body = await _post(aggregator, b"x", "text/plain")
    assert status == 415
    assert orjson.loads(body)["code"] == 3
