"""The aggregator's self-metrics (prometheus_client, ``kemi_aggregator_*``), served at /metrics."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

__all__ = [
    "BATCHES_ACCEPTED",
    "DELIVERY_SECONDS",
    "FIELDS_DROPPED",
    "INFLIGHT_BYTES",
    "KAFKA_AVAILABLE",
    "POINTS_DROPPED",
    "REQUESTS",
    "REQUESTS_REJECTED",
    "REQUESTS_THROTTLED",
    "REQUEST_SECONDS",
    "SAMPLES_ACCEPTED",
]

REQUESTS = Counter(
    "kemi_aggregator_requests_total",
    "Push requests answered, by endpoint and status",
    ["endpoint", "status"],
)
SAMPLES_ACCEPTED = Counter(
    "kemi_aggregator_samples_accepted_total",
    "Samples acknowledged by Kafka and answered 204",
    ["token"],
)
BATCHES_ACCEPTED = Counter(
    "kemi_aggregator_batches_accepted_total", "SampleBatch records acknowledged by Kafka"
)
REQUESTS_REJECTED = Counter(
    "kemi_aggregator_requests_rejected_total",
    "Requests refused with a 4xx, by reason and token (empty when unauthenticated)",
    ["reason", "token"],
)
REQUESTS_THROTTLED = Counter(
    "kemi_aggregator_requests_throttled_total",
    "Requests answered 429/503 with Retry-After, by cause",
    ["cause", "token"],
)
FIELDS_DROPPED = Counter(
    "kemi_aggregator_fields_dropped_total",
    "Line-protocol fields dropped (string fields)",
    ["token"],
)
POINTS_DROPPED = Counter(
    "kemi_aggregator_points_dropped_total",
    "Points or series left out of an accepted request (the rest was written), by reason",
    ["endpoint", "reason", "token"],
)
# with several worker processes: bytes in flight add up; Kafka counts as available
# while any worker of the instance reaches it
INFLIGHT_BYTES = Gauge(
    "kemi_aggregator_inflight_bytes",
    "Encoded bytes handed to Kafka and not yet acknowledged",
    multiprocess_mode="livesum",
)
KAFKA_AVAILABLE = Gauge(
    "kemi_aggregator_kafka_available",
    "1 while Kafka answers, else 0",
    multiprocess_mode="livemax",
)
REQUEST_SECONDS = Histogram(
    "kemi_aggregator_request_seconds",
    "Push request latency, body read to response",
    ["endpoint"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
DELIVERY_SECONDS = Histogram(
    "kemi_aggregator_delivery_seconds",
    "Time from handing a request's records to Kafka until every ack",
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
