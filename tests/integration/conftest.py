"""Fixtures the alerting integration tests share (the helpers are in alerting_support.py)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from kemi_stats.settings import Settings
from kemi_stats.topics import TopicSpec, ensure_topics
from tests.integration.alerting_support import Alerts, Samples, service_env_for


@pytest.fixture
def topics(kafka) -> dict[str, str]:  # type: ignore[no-untyped-def]
    tag = uuid.uuid4().hex[:8]
    names = {
        "raw": f"t.raw.{tag}",
        "metrics": f"t.metrics.{tag}",
        "alerts": f"t.alerts.{tag}",
        "dead": f"t.dead.{tag}",
    }
    ensure_topics(kafka.address, tuple(TopicSpec(n, 3) for n in names.values()))
    return names


@pytest.fixture
async def alerts(settings: Settings, topics: dict[str, str]) -> AsyncIterator[Alerts]:
    a = await Alerts(settings, topics["alerts"]).start()
    yield a
    await a.stop()


@pytest.fixture
async def samples(settings: Settings, topics: dict[str, str]) -> AsyncIterator[Samples]:
    s = Samples(settings, topics["metrics"])
    await s.producer.start()
    yield s
    await s.producer.stop()


@pytest.fixture
def alerting_env(settings: Settings, topics: dict[str, str]) -> dict[str, str]:
    """Both alerting services' environment: the test's topics and groups, fast timers."""
    return service_env_for(
        settings,
        raw_topic=topics["raw"],
        metrics_topic=topics["metrics"],
        alerts_topic=topics["alerts"],
        dead_topic=topics["dead"],
        evaluator_group=f"eval-{uuid.uuid4().hex[:8]}",
        notifier_group=f"notif-{uuid.uuid4().hex[:8]}",
        evaluation_tick="0.2",
        checkpoint_interval="0.2",
        group_wait="0.2",
    )
