"""Poller-specific settings from ``KEMI_POLLER_*`` environment variables; defaults live here."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from kemi_stats.topics import METRICS_RAW, POLL_JOBS, TopicSpec, renamed_specs

__all__ = ["PollerSettings"]


class PollerSettings(BaseSettings):
    """Settings of the poll scheduler and the poll workers."""

    model_config = SettingsConfigDict(
        env_prefix="KEMI_POLLER_", extra="ignore", frozen=True, hide_input_in_errors=True
    )

    #: topic overrides (tests give each run its own topics)
    jobs_topic: str = POLL_JOBS
    raw_topic: str = METRICS_RAW
    #: the workers' consumer group: every worker in it shares the jobs
    group_id: str = "kemi-pollers"
    #: targets polled at once by one worker process
    concurrency: int = Field(default=256, ge=1, le=10_000)
    #: OIDs per GET request before the agent has said otherwise (tooBig halves it)
    max_oids_per_get: int = Field(default=40, ge=1, le=500)
    #: leader-election lease; a standby takes over at most this long after the leader dies
    lease_ttl: int = Field(default=10, ge=2, le=300)
    #: the scheduler's leader key is <etcd prefix>leader/<election>
    election: str = "poller-scheduler"

    def topic_specs(self) -> tuple[TopicSpec, ...]:
        """The jobs and raw topics under their (maybe overridden) names, made like the defaults."""
        return renamed_specs({POLL_JOBS: self.jobs_topic, METRICS_RAW: self.raw_topic})
