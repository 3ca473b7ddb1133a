"""Every Kafka topic of kemi-stats, with its partitions and configs, in one place.

Services and ``kemi-stats topics ensure`` create topics from this table; nothing
relies on broker auto-creation. How many copies a topic keeps is not a property of the
topic but of the deployment (:class:`Replication`, from ``KEMI_KAFKA_REPLICATION_FACTOR``
and ``KEMI_KAFKA_MIN_INSYNC_REPLICAS``): :func:`ensure_topics` creates missing topics
with it and refuses existing ones that keep fewer copies, so a service started against
under-replicated topics stops at once with the reason instead of losing acked records
when one broker fails.

The admin client connects with the TLS and SASL settings (``KEMI_KAFKA_SECURITY_*``,
:mod:`kemi_stats.kafka_security`): callers pass either a :class:`Settings` or just a
bootstrap address, whose security then comes from the environment like every service's.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from kafka.admin import ConfigResource, KafkaAdminClient, NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from kemi_stats.errors import BrokerError, ConfigError, TopicReplicationError
from kemi_stats.kafka_security import connect_error, kafka_python_options
from kemi_stats.settings import Settings, load_settings

__all__ = [
    "ALERTS",
    "ALERTS_DEAD",
    "ALL_TOPICS",
    "METRICS",
    "METRICS_GROUPS",
    "METRICS_RAW",
    "POLL_JOBS",
    "Replication",
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

log = logging.getLogger(__name__)

_MIN_INSYNC = "min.insync.replicas"


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """A topic and how it is created."""

    name: str
    partitions: int
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


@dataclass(frozen=True, slots=True)
class Replication:
    """How many copies of each topic the deployment keeps.

    ``factor`` replicas are created, and a topic with fewer is refused;
    ``min_insync`` of them must hold a record before the broker acks it.
    """

    factor: int = 1
    min_insync: int = 1

    def __post_init__(self) -> None:
        if self.factor < 1:
            raise ConfigError(f"replication factor {self.factor}: expected at least 1")
        if not 1 <= self.min_insync <= self.factor:
            raise ConfigError(
                f"min in-sync replicas {self.min_insync}: expected 1 to the replication "
                f"factor ({self.factor})"
            )

    @classmethod
    def from_settings(cls, settings: Settings) -> Replication:
        """The replication ``KEMI_KAFKA_REPLICATION_FACTOR`` and ``..._MIN_INSYNC_REPLICAS`` ask for."""
        return cls(settings.kafka_replication_factor, settings.kafka_min_insync_replicas)


def _settings(kafka: str | Settings) -> Settings:
    """``kafka`` itself, or the environment's settings with ``kafka`` as bootstrap address."""
    if isinstance(kafka, Settings):
        return kafka
    return load_settings().model_copy(update={"kafka_bootstrap": kafka})


def _admin(settings: Settings) -> KafkaAdminClient:
    try:
        return KafkaAdminClient(
            bootstrap_servers=settings.kafka_bootstrap,
            client_id="kemi-admin",
            request_timeout_ms=10000,
            **kafka_python_options(settings),
        )
    except KafkaError as exc:
        raise BrokerError(connect_error(settings, exc)) from exc


def list_topics(kafka: str | Settings) -> list[str]:
    """Names of the topics the broker knows (``kafka``: settings, or a bootstrap address)."""
    admin = _admin(_settings(kafka))
    try:
        return sorted(admin.list_topics())
    finally:
        admin.close()


def ensure_topics(
    kafka: str | Settings,
    specs: tuple[TopicSpec, ...] = ALL_TOPICS,
    replication: Replication | None = None,
) -> list[str]:
    """Create every topic in ``specs`` that does not exist; return the names created.

    Topics that existed already must keep at least ``replication.factor`` copies and,
    when more than one is asked for, a ``min.insync.replicas`` of at least
    ``replication.min_insync`` (where the broker reports topic configs):
    :class:`~kemi_stats.errors.TopicReplicationError` names the first that does not.
    ``replication`` defaults to the settings' (``KEMI_KAFKA_*``), so every service that
    ensures its topics also checks them. ``kafka`` is the settings, or a bootstrap address
    (then with the environment's settings).
    """
    settings = _settings(kafka)
    bootstrap = settings.kafka_bootstrap
    wanted = replication if replication is not None else Replication.from_settings(settings)
    admin = _admin(settings)
    try:
        created = _create_missing(admin, bootstrap, specs, wanted)
        existing = [spec.name for spec in specs if spec.name not in created]
        if existing:
            _check_replication(admin, bootstrap, existing, wanted.factor)
            if wanted.min_insync > 1:
                _check_min_insync(admin, bootstrap, existing, wanted.min_insync)
        return created
    finally:
        admin.close()


def _create_missing(
    admin: KafkaAdminClient, bootstrap: str, specs: tuple[TopicSpec, ...], wanted: Replication
) -> list[str]:
    existing = set(admin.list_topics())
    created: list[str] = []
    for spec in specs:
        if spec.name in existing:
            continue
        configs = {**spec.configs, "min.insync.replicas": str(wanted.min_insync)}
        try:
            admin.create_topics(
                [NewTopic(spec.name, spec.partitions, wanted.factor, topic_configs=configs)]
            )
            created.append(spec.name)
        except TopicAlreadyExistsError:
            pass
        except KafkaError as exc:
            raise BrokerError(f"kafka {bootstrap}: create topic {spec.name}: {exc}") from exc
    return created


def _check_replication(
    admin: KafkaAdminClient, bootstrap: str, names: list[str], minimum: int
) -> None:
    try:
        described = admin.describe_topics(names)
    except KafkaError as exc:
        raise BrokerError(f"kafka {bootstrap}: describe topics: {exc}") from exc
    for topic in described:
        replicas = _replication(topic)
        if replicas is None:
            log.warning(
                "kafka %s: topic %s: the broker reports no replicas; replication not checked",
                bootstrap, topic.get("name"),
            )  # fmt: skip
        elif replicas < minimum:
            raise TopicReplicationError(
                f"topic {topic['name']}: replication factor {replicas} is below the required "
                f"{minimum} (KEMI_KAFKA_REPLICATION_FACTOR): add replicas to it "
                "(kafka-reassign-partitions) or lower the setting"
            )


def _check_min_insync(
    admin: KafkaAdminClient, bootstrap: str, names: list[str], minimum: int
) -> None:
    """Refuse a topic whose ``min.insync.replicas`` is below ``minimum``: with ``acks=all``
    the broker would ack a record held by fewer copies than the deployment counts on."""
    resources = [ConfigResource("TOPIC", name, configs={_MIN_INSYNC: None}) for name in names]
    try:
        described = admin.describe_configs(resources, config_filter="all")
    except KafkaError as exc:  # a broker without DescribeConfigs (Tansu drops the connection)
        log.warning("kafka %s: topic configs not readable (%s); %s not checked",
                    bootstrap, exc, _MIN_INSYNC)  # fmt: skip
        return
    for name in names:
        entry = described.get("topic", {}).get(name, {}).get(_MIN_INSYNC)
        value = entry.get("value") if isinstance(entry, Mapping) else None
        if value is not None and str(value).isdigit() and int(value) < minimum:
            raise TopicReplicationError(
                f"topic {name}: {_MIN_INSYNC} {value} is below the required {minimum} "
                "(KEMI_KAFKA_MIN_INSYNC_REPLICAS): raise it (kafka-configs --alter) or lower "
                "the setting"
            )


def _replication(described: Mapping[str, Any]) -> int | None:
    """The fewest distinct brokers holding a partition of a described topic (None: not reported).

    Distinct brokers, not list entries: a single-broker development broker may list one
    broker three times for a topic created with three replicas, which is still one copy.
    """
    counts = [
        len(set(partition.get("replica_nodes") or ()))
        for partition in described.get("partitions") or ()
    ]
    counts = [n for n in counts if n > 0]
    return min(counts) if counts else None
