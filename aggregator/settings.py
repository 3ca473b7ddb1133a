"""The aggregator's own settings, from ``KEMI_AGGREGATOR_*`` environment variables.

Defaults live here and nowhere else. Durations accept ``30s``/``5m``/seconds.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BeforeValidator, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from kemi_stats.codec import MAX_RECORD_BYTES
from kemi_stats.durations import parse_duration
from kemi_stats.topics import METRICS_RAW

__all__ = ["AggregatorSettings"]

Seconds = Annotated[float, BeforeValidator(parse_duration)]

_MiB = 1 << 20


class AggregatorSettings(BaseSettings):
    """How the push endpoint parses, limits and delivers what agents send."""

    model_config = SettingsConfigDict(
        env_prefix="KEMI_AGGREGATOR_", extra="ignore", frozen=True, hide_input_in_errors=True
    )

    #: where accepted SampleBatches go (tests point this at a topic of their own)
    topic: str = METRICS_RAW
    #: line-protocol tag that sets the kind of every field of its line (gauge|counter|...)
    kind_tag: str = Field(default="kemi_kind", min_length=1)
    #: string fields in line protocol: ``drop`` them (counted) or ``reject`` the request
    string_fields: Literal["drop", "reject"] = "drop"
    #: largest request body, compressed and after gunzip (413 above)
    max_body_bytes: int = Field(default=16 * _MiB, ge=1024)
    #: encoded bytes handed to Kafka and not yet acknowledged, over all requests (429 above)
    max_inflight_bytes: int = Field(default=64 * _MiB, ge=1024)
    #: gzip members in one body (each is a decompressor started again: 413 above)
    max_gzip_members: int = Field(default=100, ge=1)
    max_labels: int = Field(default=64, ge=1)
    max_fields_per_line: int = Field(default=1000, ge=1)
    #: lines of line protocol in one request (413 above)
    max_lines: int = Field(default=1_000_000, ge=1)
    #: samples in one request, after the last value of a series and time wins (413 above)
    max_samples: int = Field(default=1_000_000, ge=1)
    #: distinct resources in one request (413 above)
    max_resources: int = Field(default=100_000, ge=1)
    #: largest Kafka record value: a resource's samples at one time are split to fit
    #: (Kafka's default record limit, ``max.message.bytes``, is 1 MiB and a bit)
    max_record_bytes: int = Field(default=MAX_RECORD_BYTES, ge=64 * 1024)
    #: bodies larger than this are decompressed and parsed on a thread, off the event loop
    inline_parse_bytes: int = Field(default=64 * 1024, ge=0)
    #: processes serving the port (SO_REUSEPORT), each a whole aggregator; above 1 the
    #: started process supervises them (:mod:`aggregator.processes`)
    processes: int = Field(default=1, ge=1, le=64)
    #: threads that decompress and parse large bodies (the rest wait for one)
    parse_threads: int = Field(default=2, ge=1)
    #: bytes of bodies that may wait for a parse thread (429 beyond, as for Kafka)
    max_parse_queue_bytes: int = Field(default=64 * _MiB, ge=1024)
    #: how far ahead of the aggregator's clock a sample time may be
    max_future: Seconds = 600.0
    #: how old a sample may be (0: no limit)
    max_age: Seconds = 7 * 86400.0
    #: how long a request waits for Kafka's acks before answering 503 (outcome unknown)
    delivery_timeout: Seconds = 10.0
    retry_after_unavailable: int = Field(default=5, ge=1)
    retry_after_busy: int = Field(default=1, ge=1)
    #: Kafka availability probe: how often, how long to wait for an answer
    probe_interval: Seconds = 1.0
    probe_timeout: Seconds = 2.0
    #: a send older than this without an ack marks Kafka unavailable
    stall_after: Seconds = 5.0
    #: idempotent producer: ``auto`` uses it when the broker supports it
    idempotence: Literal["auto", "on", "off"] = "auto"
    #: how long a record may wait for others of its partition before its batch is sent:
    #: every reader's cost (and the local broker's most) goes by batches, not records, and
    #: a push is answered only once its batch is acked, so this much is added to it
    linger_ms: int = Field(default=50, ge=0)
    #: how long remote_write metadata marks a family as a counter, per token
    metadata_ttl: Seconds = 3600.0
    #: remote_write series whose meaning is remembered per token (by their encoded labels)
    series_cache: int = Field(default=200_000, ge=0)
    #: bytes those remembered series may hold, over all tokens (about 1 KB per series)
    series_cache_bytes: int = Field(default=256 * _MiB, ge=0)
    #: HTTPS: the server's certificate (PEM, chain after it) and its key; both or
    #: neither (unset: plain HTTP). Read at start (``aggregator.service.tls_context``)
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    #: serve /metrics, /healthz, /livez and /readyz on this port alone (plain HTTP on
    #: ``KEMI_HTTP_HOST``); unset: on the push listener, as the other services do
    admin_port: int | None = Field(default=None, ge=1, le=65535)
