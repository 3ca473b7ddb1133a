"""Every Kafka topic of kemi-stats, with its partitions and configs, in one place.

Services and ``kemi-stats topics ensure`` create topics from this table; nothing
relies on broker auto-creation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from kemi_stats.errors import BrokerError

__all__ = [
    "ALERTS",
    "ALERTS_DEAD",
    "ALL_TOPICS",
    "METRICS",
    "METRICS_GROUPS",
    "METRICS_RAW",
    "POLL_JOBS",
    "TopicSpec",
    "ensure_topics",
    "list_topics",
    "renamed_specs",
]

POLL_JOBS = "kemi.poll-jobs"
METRICS_RAW = "kemi.metrics.raw"
METRICS = "kemi.metrics"
ALERTS = "kemi.alerts"
ALERTS_DEAD = "kemi.alerts.dead"
# Calculator group aggregates are repartitioned by group key through this topic.
METRICS_GROUPS = "kemi.metrics.groups"


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """A topic and how it is created."""

    name: str
    partitions: int
    replication: int = 1
    configs: dict[str, str] = field(default_factory=dict)
    description: str = ""


_WEEK_MS = str(7 * 24 * 3600 * 1000)

ALL_TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec(POLL_JOBS, 12, configs={"retention.ms": "3600000"},
              description="one poll job per target per interval (key: target)"),
    TopicSpec(METRICS_RAW, 12, configs={"retention.ms": _WEEK_MS},
              description="raw SampleBatches from pollers and the aggregator (key: resource id)"),
    TopicSpec(METRICS, 12, configs={"retention.ms": _WEEK_MS},
              description="raw plus derived SampleBatches from the calculator (key: resource id)"),
    TopicSpec(METRICS_GROUPS, 12, configs={"retention.ms": "86400000"},
              description="derived inputs repartitioned by group key (key: group key)"),
    TopicSpec(ALERTS, 4, configs={"retention.ms": _WEEK_MS},
              description="alert state transitions (key: alert fingerprint)"),
    TopicSpec(ALERTS_DEAD, 1, configs={"retention.ms": _WEEK_MS},
              description="notifications that could not be delivered, with the reason"),
)  # fmt: skip

_STANDARD: dict[str, TopicSpec] = {spec.name: spec for spec in ALL_TOPICS}


def renamed_specs(names: Mapping[str, str], partitions: int | None = None) -> tuple[TopicSpec, ...]:
    """Standard topics under other names (``{standard name: actual name}``), made like them.

    Services take their topic names from settings (tests give each run its own), and
    a renamed topic must still be created with the standard configs. ``partitions``
    overrides the standard count, for services whose state is co-partitioned.
    """
    specs = []
    for standard, actual in names.items():
        spec = _STANDARD.get(standard)
        if spec is None:
            raise ValueError(
                f"topic {standard!r} is not a standard topic (expected one of {', '.join(_STANDARD)})"
            )
        specs.append(
            replace(
                spec,
                name=actual,
                partitions=spec.partitions if partitions is None else partitions,
                configs=dict(spec.configs),
            )
        )
    return tuple(specs)


def _admin(bootstrap: str) -> KafkaAdminClient:
    try:
        return KafkaAdminClient(
            bootstrap_servers=bootstrap, client_id="kemi-admin", request_timeout_ms=10000
        )
    except KafkaError as exc:
        raise BrokerError(f"kafka {bootstrap}: cannot connect: {exc}") from exc


def list_topics(bootstrap: str) -> list[str]:
    """Names of the topics the broker knows."""
    admin = _admin(bootstrap)
    try:
        return sorted(admin.list_topics())
    finally:
        admin.close()


def ensure_topics(bootstrap: str, specs: tuple[TopicSpec, ...] = ALL_TOPICS) -> list[str]:
    """Create every topic in ``specs`` that does not exist; return the names created."""
    admin = _admin(bootstrap)
    try:
        existing = set(admin.list_topics())
        missing = [s for s in specs if s.name not in existing]
        created: list[str] = []
        for spec in missing:
            try:
                admin.create_topics(
                    [
                        NewTopic(
                            spec.name, spec.partitions, spec.replication, topic_configs=spec.configs
                        )
                    ]
                )
                created.append(spec.name)
            except TopicAlreadyExistsError:
                pass
            except KafkaError as exc:
                raise BrokerError(f"kafka {bootstrap}: create topic {spec.name}: {exc}") from exc
        return created
    finally:
        admin.close()
