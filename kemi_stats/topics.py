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

import asyncio
import logging
from collections.abc import Coroutine, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any, Protocol, TypeVar

from kemi_stats.errors import ConfigError, TopicReplicationError
from kemi_stats.settings import Settings, load_settings
from kemi_stats.topic_spec import MIN_INSYNC, ConfigsUnreadable, TopicSpec

__all__ = [
    "ALERTS",
    "ALERTS_DEAD",
    "ALL_TOPICS",
    "METRICS",
    "METRICS_GROUPS",
    "METRICS_RAW",
    "POLL_JOBS",
    "Admin",
    "ConfigsUnreadable",
    "Replication",
    "TopicSpec",
    "ensure_topics",
    "ensure_topics_async",
    "list_topics",
    "list_topics_async",
    "renamed_specs",
    "resolved",
    "sample_topics",
]

POLL_JOBS = "kemi.poll-jobs"
METRICS_RAW = "kemi.metrics.raw"
METRICS = "kemi.metrics"
ALERTS = "kemi.alerts"
ALERTS_DEAD = "kemi.alerts.dead"
# Calculator group aggregates are repartitioned by group key through this topic.
METRICS_GROUPS = "kemi.metrics.groups"

log = logging.getLogger(__name__)

T = TypeVar("T")

#: seconds to wait for topic configs (a broker without DescribeConfigs may not answer)
_CONFIGS_WAIT = 10.0


_WEEK_MS = str(7 * 24 * 3600 * 1000)

ALL_TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec(POLL_JOBS, 12, configs={"retention.ms": "3600000"},
              description="one poll job per target per interval (key: target)"),
    TopicSpec(METRICS_RAW, 12, configs={"retention.ms": _WEEK_MS}, sample=True,
              description="raw SampleBatches from pollers and the aggregator (key: resource id)"),
    TopicSpec(METRICS, 12, configs={"retention.ms": _WEEK_MS}, sample=True,
              description="derived SampleBatches from the calculator (key: resource id)"),
    TopicSpec(METRICS_GROUPS, 12, configs={"retention.ms": "86400000"}, sample=True,
              description="derived inputs repartitioned by group key (key: group key)"),
    TopicSpec(ALERTS, 4, configs={"retention.ms": _WEEK_MS},
              description="alert state transitions (key: alert fingerprint)"),
    TopicSpec(ALERTS_DEAD, 1, configs={"retention.ms": _WEEK_MS},
              description="notifications that could not be delivered, with the reason"),
)  # fmt: skip

_STANDARD: dict[str, TopicSpec] = {spec.name: spec for spec in ALL_TOPICS}


def resolved(specs: tuple[TopicSpec, ...], settings: Settings) -> tuple[TopicSpec, ...]:
    """``specs`` with the partitions they are created with: the sample topics' from
    ``settings`` (``KEMI_SAMPLE_PARTITIONS``), so every service that creates one, at
    any time (a broker that lost its topics), creates it alike."""
    return tuple(
        replace(spec, partitions=settings.sample_partitions) if spec.sample else spec
        for spec in specs
    )


def sample_topics(raw: str, derived: str) -> tuple[str, ...]:
    """The sample topics a reader of every sample reads, raw first; ``""`` names none."""
    return tuple(dict.fromkeys(t for t in (raw, derived) if t))


def renamed_specs(names: Mapping[str, str], partitions: int | None = None) -> tuple[TopicSpec, ...]:
    """Standard topics under other names (``{standard name: actual name}``), made like them.

    Services take their topic names from settings (tests give each run its own), and
    a renamed topic must still be created with the standard configs. ``partitions``
    overrides the count (the sample topics' too), for services whose state is
    co-partitioned.
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
                sample=spec.sample and partitions is None,
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


class Admin(Protocol):
    """The admin calls :func:`ensure_topics` makes: :class:`~kemi_stats.topic_admin.TopicAdmin`
    (aiokafka, the default) or :class:`~kemi_stats.topic_admin_rdkafka.RdTopicAdmin`
    (librdkafka, for a process that holds it already)."""

    bootstrap: str

    async def start(self) -> None: ...
    async def close(self) -> None: ...
    async def list_topics(self) -> list[str]: ...
    async def create_topic(self, spec: TopicSpec, factor: int, configs: dict[str, str]) -> bool: ...
    async def replicas(self, names: list[str]) -> dict[str, list[list[int]]]: ...
    async def min_insync(self, names: list[str]) -> dict[str, str]: ...


def _admin(settings: Settings) -> Admin:
    # aiokafka's admin client comes with the first topic call: a process that never makes
    # one (most CLI commands) does not hold its 60 modules
    from kemi_stats.topic_admin import TopicAdmin

    return TopicAdmin(settings)


def _blocking(work: Coroutine[Any, Any, T]) -> T:
    """Run ``work`` to its end and return its result, blocking the caller.

    From a thread that runs an event loop too (a test, old code), as the synchronous
    client did; the work then gets a loop of its own in another thread.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(work)
    with ThreadPoolExecutor(1, thread_name_prefix="kemi-topics") as pool:
        return pool.submit(asyncio.run, work).result()


def list_topics(kafka: str | Settings) -> list[str]:
    """Names of the topics the broker knows (``kafka``: settings, or a bootstrap address)."""
    return _blocking(list_topics_async(kafka))


async def list_topics_async(kafka: str | Settings) -> list[str]:
    """:func:`list_topics` for a running event loop."""
    admin = _admin(_settings(kafka))
    await admin.start()
    try:
        return sorted(await admin.list_topics())
    finally:
        await admin.close()


def ensure_topics(
    kafka: str | Settings,
    specs: tuple[TopicSpec, ...] = ALL_TOPICS,
    replication: Replication | None = None,
    admin: Admin | None = None,
) -> list[str]:
    """Create every topic in ``specs`` that does not exist; return the names created.

    Topics that existed already must keep at least ``replication.factor`` copies and,
    when more than one is asked for, a ``min.insync.replicas`` of at least
    ``replication.min_insync`` (where the broker reports topic configs):
    :class:`~kemi_stats.errors.TopicReplicationError` names the first that does not.
    ``replication`` defaults to the settings' (``KEMI_KAFKA_*``), so every service that
    ensures its topics also checks them. ``kafka`` is the settings, or a bootstrap address
    (then with the environment's settings); ``admin``, the client to make the calls with
    (aiokafka's by default). It blocks: code on an event loop awaits
    :func:`ensure_topics_async` instead.
    """
    return _blocking(ensure_topics_async(kafka, specs, replication, admin))


async def ensure_topics_async(
    kafka: str | Settings,
    specs: tuple[TopicSpec, ...] = ALL_TOPICS,
    replication: Replication | None = None,
    admin: Admin | None = None,
) -> list[str]:
    """:func:`ensure_topics` for a running event loop; ``admin``: the client to make the
    calls with (aiokafka's by default), closed at the end."""
    settings = _settings(kafka)
    wanted = replication if replication is not None else Replication.from_settings(settings)
    admin = admin if admin is not None else _admin(settings)
    await admin.start()
    try:
        created = await _create_missing(admin, resolved(specs, settings), wanted)
        existing = [spec.name for spec in specs if spec.name not in created]
        if existing:
            await _check_replication(admin, existing, wanted.factor)
            if wanted.min_insync > 1:
                await _check_min_insync(admin, existing, wanted.min_insync)
        return created
    finally:
        await admin.close()


async def _create_missing(
    admin: Admin, specs: tuple[TopicSpec, ...], wanted: Replication
) -> list[str]:
    existing = set(await admin.list_topics())
    created: list[str] = []
    for spec in specs:
        if spec.name in existing:
            continue
        configs = {**spec.configs, MIN_INSYNC: str(wanted.min_insync)}
        if await admin.create_topic(spec, wanted.factor, configs):
            created.append(spec.name)
    return created


async def _check_replication(admin: Admin, names: list[str], minimum: int) -> None:
    for name, partitions in (await admin.replicas(names)).items():
        replicas = _replication(partitions)
        if replicas is None:
            log.warning(
                "kafka %s: topic %s: the broker reports no replicas; replication not checked",
                admin.bootstrap, name,
            )  # fmt: skip
        elif replicas < minimum:
            raise TopicReplicationError(
                f"topic {name}: replication factor {replicas} is below the required "
                f"{minimum} (KEMI_KAFKA_REPLICATION_FACTOR): add replicas to it "
                "(kafka-reassign-partitions) or lower the setting"
            )


async def _check_min_insync(admin: Admin, names: list[str], minimum: int) -> None:
    """Refuse a topic whose ``min.insync.replicas`` is below ``minimum``: with ``acks=all``
    the broker would ack a record held by fewer copies than the deployment counts on."""
    try:
        described = await asyncio.wait_for(admin.min_insync(names), _CONFIGS_WAIT)
    except (
        ConfigsUnreadable,
        TimeoutError,
    ) as exc:  # a broker without DescribeConfigs (Tansu drops it)
        log.warning("kafka %s: topic configs not readable (%s); %s not checked",
                    admin.bootstrap, str(exc) or type(exc).__name__, MIN_INSYNC)  # fmt: skip
        return
    for name in names:
        value = described.get(name)
        if value is not None and value.isdigit() and int(value) < minimum:
            raise TopicReplicationError(
                f"topic {name}: {MIN_INSYNC} {value} is below the required {minimum} "
                "(KEMI_KAFKA_MIN_INSYNC_REPLICAS): raise it (kafka-configs --alter) or lower "
                "the setting"
            )


def _replication(partitions: list[list[int]]) -> int | None:
    """The fewest distinct brokers holding a partition of a topic (None: not reported).

    Distinct brokers, not list entries: a single-broker development broker may list one
    broker three times for a topic created with three replicas, which is still one copy.
    """
    counts = [n for n in (len(set(replicas)) for replicas in partitions) if n > 0]
    return min(counts) if counts else None
