"""Calculator settings, from ``KEMI_CALCULATOR_*`` environment variables (defaults live here)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from kemi_stats import topics
from kemi_stats.settings import Settings

__all__ = ["PORT", "CalculatorSettings"]

#: default port of the Faust worker's web server (/healthz, /metrics); KEMI_HTTP_PORT overrides it
#: (here, not in service.py, because the app is built with it)
PORT = 9103


class CalculatorSettings(BaseSettings):
    """What only the calculator needs; shared settings (Kafka, etcd, ports) are in ``Settings``."""

    model_config = SettingsConfigDict(
        env_prefix="KEMI_CALCULATOR_", extra="ignore", frozen=True, hide_input_in_errors=True
    )

    #: Faust application id: the consumer group and the prefix of the changelog topics
    app_id: str = "kemi-calculator"
    input_topic: str = topics.METRICS_RAW
    output_topic: str = topics.METRICS
    groups_topic: str = topics.METRICS_GROUPS
    #: partitions of the input and groups topics (tables are co-partitioned with them);
    #: unset: the platform's ``KEMI_SAMPLE_PARTITIONS``
    partitions: int | None = Field(default=None, ge=1)

    def table_partitions(self, settings: Settings) -> int:
        """The partitions of the topics and tables: this setting's, or the platform's."""
        return self.partitions if self.partitions is not None else settings.sample_partitions

    #: rates above this are dropped and counted, for every definition without its own max_rate
    max_rate: float | None = Field(default=None, gt=0)
    #: group aggregates of definitions without a window use buckets of this many seconds
    group_interval: float = Field(default=60.0, gt=0)
    #: a window or group bucket closes this long after its end (late inputs are dropped)
    grace: float = Field(default=10.0, ge=0)
    #: how often open windows and group buckets are checked against the wall clock
    close_check_interval: float = Field(default=5.0, gt=0)
    #: counter state of a series not seen for this long is forgotten
    series_ttl: float = Field(default=86400.0, gt=0)
    #: Faust refuses to start when a local table store is ahead of its changelog's end offset.
    #: Real Kafka: keep True. The local broker's end offsets are wrong (docs/local-stack.md), so the
    #: local stack and tests set KEMI_CALCULATOR_RECOVERY_CONSISTENCY_CHECK=false.
    recovery_consistency_check: bool = True
    #: raw records processed together (a resource's state is read and written once per take).
    #: A take is also the unit of waiting: near capacity, a record waits for the take in
    #: hand and then its own, so larger takes cost latency (2,000: p50 2 s at 80 % of the
    #: pipeline's capacity; 500: 0.24 s) and save almost no CPU (bench/pipeline)
    take_max: int = Field(default=500, ge=1)
    #: seconds a take waits for more records before it is processed (latency it may add)
    take_within: float = Field(default=0.1, gt=0)
    #: group contributions folded together: a group's state is read and written once per
    #: take, and it holds every member of its open buckets (aggregates wait for their
    #: bucket to close anyway, so a second here delays none by more than that)
    group_take_max: int = Field(default=1000, ge=1)
    group_take_within: float = Field(default=1.0, gt=0)
    #: librdkafka's linger for the records of a take (latency it may add)
    linger_ms: float = Field(default=2.0, ge=0)
    #: how long a take's record may wait for Kafka's ack before it is sent again
    delivery_timeout: float = Field(default=30.0, gt=0)
    #: longest a fetch of the raw topic waits for data (Faust's fixed 1,500 ms otherwise;
    #: a broker may hold a fetch that long on a quiet stream: latency up to this much)
    fetch_max_wait_ms: int = Field(default=100, ge=1, le=5000)
    #: while the calculator keeps up, it takes records from its fetcher at most once per
    #: this interval (ms): fewer, larger fetches cost the broker less; 0: at once
    fetch_interval_ms: int = Field(default=100, ge=0, le=5000)
    #: seconds between offset commits (at-least-once: a crash repeats at most this much)
    commit_interval: float = Field(default=2.0, gt=0)
