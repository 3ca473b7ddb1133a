"""Settings of the alerting services, from ``KEMI_ALERTING_*`` environment variables.

Topic names, consumer groups and timing knobs are here so that tests (and a second
deployment on the same cluster) can run isolated and fast; defaults live here only.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from kemi_stats.alertmanager import Links
from kemi_stats.topics import ALERTS, ALERTS_DEAD, METRICS, METRICS_RAW, sample_topics

__all__ = ["AlertingSettings"]


class AlertingSettings(BaseSettings):
    """Knobs of the alert evaluator and the notifier."""

    model_config = SettingsConfigDict(
        env_prefix="KEMI_ALERTING_", extra="ignore", frozen=True, hide_input_in_errors=True
    )

    #: the calculator's derived samples
    metrics_topic: str = METRICS
    #: the raw samples of the pollers and the aggregator, read straight from their topic
    #: ("": none, derived samples only)
    raw_topic: str = METRICS_RAW
    alerts_topic: str = ALERTS
    dead_topic: str = ALERTS_DEAD
    evaluator_group: str = "kemi-alert-evaluator"
    notifier_group: str = "kemi-notifier"
    #: how often no-data timers and repeat intervals are checked (seconds)
    evaluation_tick: float = Field(default=1.0, gt=0)
    #: how often evaluator state + consumed offsets are persisted together (seconds)
    checkpoint_interval: float = Field(default=1.0, gt=0)
    #: when set, overrides every receiver's ``group_wait`` (seconds)
    group_wait: float | None = Field(default=None, ge=0)
    #: when set, overrides every receiver's initial backoff (seconds)
    backoff_initial: float | None = Field(default=None, gt=0)
    #: when set, overrides every receiver's maximum backoff (seconds)
    backoff_max: float | None = Field(default=None, gt=0)
    #: ok-state series not seen for this long are forgotten (seconds)
    series_ttl: float = Field(default=86400.0, gt=0)
    #: transitions kept for ``kemi-stats alerts history``
    history_size: int = Field(default=10000, ge=10)
    #: records the notifier holds undelivered before it pauses fetching
    max_in_flight: int = Field(default=10000, ge=1)
    #: how long the broker may hold a fetch when there is nothing new (ms): bounds alert latency
    fetch_max_wait_ms: int = Field(default=50, ge=0, le=5000)
    #: while the evaluator keeps up, at most one fetch per this interval (ms): fewer,
    #: larger fetches cost the broker less; adds at most this much to alert latency
    fetch_interval_ms: int = Field(default=50, ge=0, le=5000)
    #: expired silences are removed from the registry this long after they ended (seconds)
    silence_retention: float = Field(default=7 * 86400.0, ge=0)
    #: where ``kemi-stats alerts`` finds the evaluator's HTTP API
    evaluator_url: str = "http://127.0.0.1:9104"
    #: ``externalURL`` of Alertmanager-format payloads (default: the evaluator's API)
    external_url: str = ""
    #: each alert's ``generatorURL`` in Alertmanager formats: ``{query}`` (the series as a
    #: URL-encoded PromQL selector), ``{rule}``, ``{fingerprint}``, ``{resource}``; default:
    #: VictoriaMetrics' vmui at the TSDB URL
    generator_url: str = ""

    @property
    def sample_topics(self) -> tuple[str, ...]:
        """The topics the evaluator reads samples from: raw first, then derived."""
        return sample_topics(self.raw_topic, self.metrics_topic)

    def links(self, tsdb_url: str) -> Links:
        """What Alertmanager-format payloads link to."""
        return Links(
            self.external_url or self.evaluator_url,
            self.generator_url or tsdb_url.rstrip("/") + "/vmui/#/?g0.expr={query}",
        )
