"""The forwarder's self-metrics (prometheus_client default registry, prefix ``kemi_forwarder_``)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

__all__ = [
    "BATCHES_INFLIGHT",
    "LAG_RECORDS",
    "LAG_SECONDS",
    "MALFORMED",
    "POINTS_REJECTED",
    "POINTS_WRITTEN",
    "RECORDS",
    "RECORDS_SHAPED",
    "SAMPLES_SKIPPED",
    "SHAPES",
    "SHAPES_COMPILED",
    "SHAPE_BYTES",
    "TSDB_UP",
    "WRITE_ERRORS",
    "WRITE_SECONDS",
]

RECORDS = Counter("kemi_forwarder_records_total", "Kafka records consumed")
RECORDS_SHAPED = Counter(
    "kemi_forwarder_records_shaped_total",
    "Records written from their bytes by a known shape (the fast path, forwarder.shapes)",
)
SHAPES = Gauge("kemi_forwarder_shapes", "Record shapes kept for the fast path")
SHAPE_BYTES = Gauge(
    "kemi_forwarder_shape_bytes",
    "About the bytes the record shapes hold (bounded by KEMI_FORWARDER_SHAPE_MEMORY_MB)",
)
SHAPES_COMPILED = Counter("kemi_forwarder_shapes_compiled_total", "Record shapes compiled")
MALFORMED = Counter(
    "kemi_forwarder_malformed_records_total", "Records skipped because they do not decode"
)
SAMPLES_SKIPPED = Counter(
    "kemi_forwarder_samples_skipped_total", "Samples left out of the TSDB write", ["reason"]
)
POINTS_WRITTEN = Counter(
    "kemi_forwarder_points_written_total", "Points (field values) the TSDB accepted"
)
POINTS_REJECTED = Counter(
    "kemi_forwarder_points_rejected_total",
    "Points the TSDB refused as invalid (4xx on a single line), after bisecting the batch",
)
WRITE_ERRORS = Counter(
    "kemi_forwarder_write_errors_total", "Failed write requests (retried or bisected)", ["reason"]
)
WRITE_SECONDS = Histogram(
    "kemi_forwarder_write_seconds",
    "Duration of one successful write request (gzip + HTTP)",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
BATCHES_INFLIGHT = Gauge(
    "kemi_forwarder_batches_inflight", "Batches handed to the writers and not yet accepted"
)
TSDB_UP = Gauge("kemi_forwarder_tsdb_up", "1 if the last write request reached the TSDB, else 0")
LAG_RECORDS = Gauge(
    "kemi_forwarder_lag_records",
    "Records of the partition not yet accepted by the TSDB: max(end offset, high watermark,"
    " last record seen + 1) - committed position (a lower bound on brokers that under-report"
    " end offsets)",
    ["topic", "partition"],
)
LAG_SECONDS = Gauge(
    "kemi_forwarder_lag_seconds",
    "Age (by Kafka timestamp) of the oldest record consumed but not yet accepted by the TSDB",
)
