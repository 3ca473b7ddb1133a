"""The topics the alerting services use, with names from settings (overridable for isolation)."""

from __future__ import annotations

from alerting.settings import AlertingSettings
from kemi_stats.settings import Settings
from kemi_stats.topics import (
    ALERTS,
    ALERTS_DEAD,
    ALL_TOPICS,
    METRICS,
    METRICS_RAW,
    TopicSpec,
    ensure_topics_async,
    renamed_specs,
)

__all__ = ["ensure_alerting_topics"]

_DEFAULTS = {spec.name: spec for spec in ALL_TOPICS}


def _specs(settings: AlertingSettings) -> tuple[TopicSpec, ...]:
    return renamed_specs(
        {
            METRICS: settings.metrics_topic,
            **({METRICS_RAW: settings.raw_topic} if settings.raw_topic else {}),
            ALERTS: settings.alerts_topic,
            ALERTS_DEAD: settings.dead_topic,
        }
    )


async def ensure_alerting_topics(kafka: Settings | str, settings: AlertingSettings) -> list[str]:
    """Create the platform topics plus any renamed alerting topics (idempotent); ``kafka``
    is the platform settings (TLS and SASL included) or a bootstrap address."""
    specs = ALL_TOPICS + tuple(s for s in _specs(settings) if s.name not in _DEFAULTS)
    return await ensure_topics_async(kafka, specs)
