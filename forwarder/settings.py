"""The forwarder's own settings, from ``KEMI_FORWARDER_*`` environment variables.

Where the TSDB is (url, kind, token, org, bucket) comes from the shared
:class:`~kemi_stats.settings.Settings` (``KEMI_TSDB_*``); this class holds how the
forwarder reads Kafka and batches its writes. Defaults live here and nowhere else.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from kemi_stats.errors import ConfigError
from kemi_stats.settings import Settings
from kemi_stats.topics import ALERTS, METRICS, METRICS_RAW, sample_topics
from kemi_stats.tsdb.mapping import default_measurement

__all__ = ["TSDB_KINDS", "ForwarderSettings", "resolve_measurement"]

TSDB_KINDS = ("victoriametrics", "influxdb")


class ForwarderSettings(BaseSettings):
    """How the forwarder consumes the sample topics and writes to the TSDB."""

    model_config = SettingsConfigDict(
        env_prefix="KEMI_FORWARDER_", extra="forbid", frozen=True, hide_input_in_errors=True
    )

    #: the calculator's derived samples
    topic: str = METRICS
    #: the raw samples of the pollers and the aggregator, read straight from their topic
    #: ("": none, derived samples only)
    raw_topic: str = METRICS_RAW
    group_id: str = "kemi-forwarder"
    #: None: the default for the TSDB kind ("" for VictoriaMetrics, "kemi" for InfluxDB)
    measurement: str | None = None
    #: lines per write request (~5000 is where VictoriaMetrics' write rate levels off)
    batch_lines: int = Field(default=5000, ge=1, le=100_000)
    #: a partly filled batch is written after this long
    linger_ms: int = Field(default=200, ge=0, le=60_000)
    #: threads doing gzip + HTTP (zlib and sockets release the GIL)
    writers: int = Field(default=2, ge=1, le=32)
    #: batches handed to the writers and not yet accepted; past it, consumption pauses
    max_inflight: int = Field(default=4, ge=1, le=256)
    #: gzip level of request bodies; 0 sends them uncompressed (level 1 is 10x cheaper than 9)
    gzip_level: int = Field(default=1, ge=0, le=9)
    request_timeout: float = Field(default=10.0, gt=0)
    backoff_initial: float = Field(default=0.2, gt=0)
    backoff_max: float = Field(default=10.0, gt=0)
    commit_interval: float = Field(default=1.0, ge=0)
    #: /readyz (and /healthz) turn 503 when writes have failed for this long; /livez stays 200
    unhealthy_after: float = Field(default=30.0, gt=0)
    #: how often end offsets are read for the lag figure
    lag_interval: float = Field(default=5.0, gt=0)
    #: VictoriaMetrics single node: make writes searchable at once, at most this often
    #: (see forwarder.visibility); 0 turns it off
    visibility_flush: float = Field(default=1.0, ge=0)
    max_poll_records: int = Field(default=5000, ge=1)
    #: while the forwarder keeps up, at most one fetch per this interval (ms): fewer,
    #: larger fetches cost the broker less
    fetch_interval_ms: int = Field(default=100, ge=0, le=60_000)
    #: memory for the record shapes of the fast path (forwarder.shapes); 0: off
    shape_memory_mb: int = Field(default=64, ge=0, le=65_536)
    #: alert transitions, written as the ALERTS series (forwarder.alert_series)
    alerts_topic: str = ALERTS
    alerts_group_id: str = "kemi-forwarder-alerts"
    #: each pending or firing alert's ALERTS point is written again this often; 0: not at all
    alerts_interval: float = Field(default=15.0, ge=0)

    @property
    def topics(self) -> tuple[str, ...]:
        """The sample topics the forwarder reads: raw first, then derived."""
        return sample_topics(self.raw_topic, self.topic)


def resolve_measurement(settings: Settings, fwd: ForwarderSettings) -> str:
    """The measurement to write, checking ``KEMI_TSDB_KIND`` on the way."""
    if settings.tsdb_kind not in TSDB_KINDS:
        raise ConfigError(
            f"KEMI_TSDB_KIND={settings.tsdb_kind!r}: expected one of {', '.join(TSDB_KINDS)}"
        )
    if fwd.measurement is not None:
        if settings.tsdb_kind == "influxdb" and not fwd.measurement:
            raise ConfigError("KEMI_FORWARDER_MEASUREMENT='': InfluxDB needs a measurement name")
        return fwd.measurement
    return default_measurement(settings.tsdb_kind)
