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
import contextlib
import logging
from collections.abc import Coroutine, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError, TopicAlreadyExistsError, for_code

from kemi_stats.errors import BrokerError, ConfigError, TopicReplicationError
from kemi_stats.kafka_security import aiokafka_options, connect_error
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

_MIN_INSYNC = "min.insync.replicas"
#: seconds to wait for topic configs (a broker without DescribeConfigs may not answer)
_CONFIGS_WAIT = 10.0


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """A topic and how it is created."""

    name: str
    partitions: int
    configs: dict[str, str] = field(default_factory=dict)
    description: str = ""
    #: a sample topic: created with the settings' ``sample_partitions``, not ``partitions``
    sample: bool = False


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


class _Admin:
    """The four admin calls :func:`ensure_topics` makes, over aiokafka's admin client.

    aiokafka, which every service already holds for its consumers, rather than
    kafka-python (7 MiB more in each service's memory, for calls made once at start).
    Answers come back as plain data. Whatever the client raises (aiokafka raises more
    than its ``KafkaError``: a timeout reaching the controller, a ``KeyError`` on a
    refused login) becomes a :class:`BrokerError` naming the call.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.bootstrap = settings.kafka_bootstrap
        self._client = AIOKafkaAdminClient(
            bootstrap_servers=settings.kafka_bootstrap,
            client_id="kemi-admin",
            request_timeout_ms=10000,
            **aiokafka_options(settings),
        )

    async def start(self) -> None:
        try:
            await self._client.start()
        except Exception as exc:  # aiokafka: KafkaConnectionError, or a KeyError on a refused login
            await self.close()
            # connect_error makes a TLS handshake and a login of its own: not on the loop
            reason = await asyncio.to_thread(connect_error, self.settings, exc)
            raise BrokerError(reason) from exc

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self._client.close()

    def _failed(self, what: str, exc: Exception) -> BrokerError:
        return BrokerError(f"kafka {self.bootstrap}: {what}: {str(exc) or type(exc).__name__}")

    async def list_topics(self) -> list[str]:
        try:
            return await self._client.list_topics()
        except Exception as exc:
            raise self._failed("list topics", exc) from exc

    async def create_topic(self, spec: TopicSpec, factor: int, configs: dict[str, str]) -> bool:
        """Create one topic; False when it existed already (another process made it first)."""
        try:
            response = await self._client.create_topics(
                [NewTopic(spec.name, spec.partitions, factor, topic_configs=configs)]
            )
        except Exception as exc:
            raise self._failed(f"create topic {spec.name}", exc) from exc
        for _topic, code, *message in response.topic_errors:
            if code == TopicAlreadyExistsError.errno:
                return False
            if code:
                reason = (message[0] if message else None) or for_code(code).__name__
                raise BrokerError(f"kafka {self.bootstrap}: create topic {spec.name}: {reason}")
        return True

    async def replicas(self, names: list[str]) -> dict[str, list[list[int]]]:
        """Each topic's partitions' replica lists, as the broker's metadata reports them."""
        try:
            described = await self._client.describe_topics(names)
        except Exception as exc:
            raise self._failed("describe topics", exc) from exc
        return {
            topic["topic"]: [list(p.get("replicas") or ()) for p in topic.get("partitions") or ()]
            for topic in described
        }

    async def min_insync(self, names: list[str]) -> dict[str, str]:
        """Each topic's ``min.insync.replicas`` where the broker reports it.

        Raises :class:`KafkaError` (or times out) on a broker without DescribeConfigs.
        """
        resources = [
            ConfigResource(ConfigResourceType.TOPIC, name, {_MIN_INSYNC: None}) for name in names
        ]
        found: dict[str, str] = {}
        for response in await self._client.describe_configs(resources):
            for resource in response.to_object()["resources"]:
                if resource.get("error_code"):
                    log.warning("kafka %s: topic %s: configs not readable (%s); %s not checked",
                                self.bootstrap, resource.get("resource_name"),
                                resource.get("error_message") or for_code(resource["error_code"]).__name__,
                                _MIN_INSYNC)  # fmt: skip
                    continue
                for entry in resource.get("config_entries") or ():
                    if entry.get("config_names") == _MIN_INSYNC and entry.get("config_value"):
                        found[resource["resource_name"]] = entry["config_value"]
        return found


def _admin(settings: Settings) -> _Admin:
    return _Admin(settings)


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
) -> list[str]:
    """Create every topic in ``specs`` that does not exist; return the names created.

    Topics that existed already must keep at least ``replication.factor`` copies and,
    when more than one is asked for, a ``min.insync.replicas`` of at least
    ``replication.min_insync`` (where the broker reports topic configs):
    :class:`~kemi_stats.errors.TopicReplicationError` names the first that does not.
    ``replication`` defaults to the settings' (``KEMI_KAFKA_*``), so every service that
    ensures its topics also checks them. ``kafka`` is the settings, or a bootstrap address
    (then with the environment's settings). It blocks: code on an event loop awaits
    :func:`ensure_topics_async` instead.
    """
    return _blocking(ensure_topics_async(kafka, specs, replication))


async def ensure_topics_async(
    kafka: str | Settings,
    specs: tuple[TopicSpec, ...] = ALL_TOPICS,
    replication: Replication | None = None,
) -> list[str]:
    """:func:`ensure_topics` for a running event loop."""
    settings = _settings(kafka)
    wanted = replication if replication is not None else Replication.from_settings(settings)
    admin = _admin(settings)
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
    admin: _Admin, specs: tuple[TopicSpec, ...], wanted: Replication
) -> list[str]:
    existing = set(await admin.list_topics())
    created: list[str] = []
    for spec in specs:
        if spec.name in existing:
            continue
        configs = {**spec.configs, _MIN_INSYNC: str(wanted.min_insync)}
        if await admin.create_topic(spec, wanted.factor, configs):
            created.append(spec.name)
    return created


async def _check_replication(admin: _Admin, names: list[str], minimum: int) -> None:
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


async def _check_min_insync(admin: _Admin, names: list[str], minimum: int) -> None:
    """Refuse a topic whose ``min.insync.replicas`` is below ``minimum``: with ``acks=all``
    the broker would ack a record held by fewer copies than the deployment counts on."""
    try:
        described = await asyncio.wait_for(admin.min_insync(names), _CONFIGS_WAIT)
    except (KafkaError, TimeoutError) as exc:  # a broker without DescribeConfigs (Tansu drops it)
        log.warning("kafka %s: topic configs not readable (%s); %s not checked",
                    admin.bootstrap, str(exc) or type(exc).__name__, _MIN_INSYNC)  # fmt: skip
        return
    for name in names:
        value = described.get(name)
        if value is not None and value.isdigit() and int(value) < minimum:
            raise TopicReplicationError(
                f"topic {name}: {_MIN_INSYNC} {value} is below the required {minimum} "
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
