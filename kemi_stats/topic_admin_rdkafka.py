"""The Kafka admin calls of :mod:`kemi_stats.topics`, over librdkafka's admin client.

For a process whose Kafka client is librdkafka already (the aggregator): it then
needs no second client library (aiokafka: 60 modules, 2.6 MiB idle) for the calls it makes
once at start. The calls and their answers are those of
:class:`kemi_stats.topic_admin.TopicAdmin`; librdkafka's blocking calls and futures
run off the event loop.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic, ResourceType

from kemi_stats.errors import BrokerError
from kemi_stats.kafka_security import connect_error, rdkafka_options
from kemi_stats.settings import Settings
from kemi_stats.topic_spec import MIN_INSYNC, ConfigsUnreadable, TopicSpec

__all__ = ["RdTopicAdmin", "kafka_reason", "rdkafka_admin"]

log = logging.getLogger("kemi_stats.topics")

#: seconds a call waits for the broker's answer
_TIMEOUT = 10.0


def rdkafka_admin(settings: Settings, client_id: str = "kemi-admin", **extra: Any) -> AdminClient:
    """A librdkafka admin client with the settings' TLS and SASL, logging to ours.

    Its log lines and errors wait for ``poll()``: a client kept for long must be polled.
    """
    config: dict[str, Any] = {
        "bootstrap.servers": settings.kafka_bootstrap,
        "client.id": client_id,
        "logger": log,
        **rdkafka_options(settings),
        **extra,
    }
    return AdminClient(config)


def _error_of(exc: BaseException) -> KafkaError | None:
    """The ``KafkaError`` a librdkafka call raised with, if any."""
    return exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None


def kafka_reason(exc: BaseException) -> str:
    """librdkafka's own words for a failed call (its ``KafkaError``'s text)."""
    error = _error_of(exc)
    return error.str() if error is not None else (str(exc) or type(exc).__name__)


#: what a broker that cannot answer DescribeConfigs (or answers no request) makes of one
_CONFIGS_UNREADABLE = frozenset((
    KafkaError._TRANSPORT, KafkaError._TIMED_OUT, KafkaError._MSG_TIMED_OUT,
    KafkaError._UNSUPPORTED_FEATURE, KafkaError.UNSUPPORTED_VERSION,
))  # fmt: skip


class RdTopicAdmin:
    """The four admin calls :func:`kemi_stats.topics.ensure_topics` makes, over librdkafka."""

    def __init__(self, settings: Settings, client: AdminClient | None = None) -> None:
        """``client``: one the caller holds already (the probe's), else one of its own."""
        self.settings = settings
        self.bootstrap = settings.kafka_bootstrap
        self._client = client if client is not None else rdkafka_admin(settings)

    async def start(self) -> None:
        """Reach the brokers once; :class:`BrokerError` with the reason (TLS, login) if not."""
        try:
            await asyncio.to_thread(self._client.list_topics, timeout=_TIMEOUT)
        except KafkaException as exc:
            # connect_error makes a TLS handshake and a login of its own: not on the loop
            cause = ConnectionError(kafka_reason(exc))
            raise BrokerError(await asyncio.to_thread(connect_error, self.settings, cause)) from exc

    async def close(self) -> None:
        """Serve the client's pending log lines; librdkafka closes it once it is dropped."""
        await asyncio.to_thread(self._client.poll, 0)

    def _failed(self, what: str, exc: BaseException) -> BrokerError:
        return BrokerError(f"kafka {self.bootstrap}: {what}: {kafka_reason(exc)}")

    async def _metadata(self) -> Any:
        try:
            return await asyncio.to_thread(self._client.list_topics, timeout=_TIMEOUT)
        except KafkaException as exc:
            raise self._failed("list topics", exc) from exc

    async def list_topics(self) -> list[str]:
        return list((await self._metadata()).topics)

    async def create_topic(self, spec: TopicSpec, factor: int, configs: dict[str, str]) -> bool:
        """Create one topic; False when it existed already (another process made it first)."""
        new = NewTopic(spec.name, spec.partitions, factor, config=configs)
        try:
            (future,) = self._client.create_topics(
                [new], operation_timeout=_TIMEOUT, request_timeout=_TIMEOUT
            ).values()
            await asyncio.wrap_future(future)
        except KafkaException as exc:
            error = _error_of(exc)
            if error is not None and error.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                return False
            raise self._failed(f"create topic {spec.name}", exc) from exc
        return True

    async def replicas(self, names: list[str]) -> dict[str, list[list[int]]]:
        """Each topic's partitions' replica lists, as the broker's metadata reports them."""
        topics = (await self._metadata()).topics
        # a topic the metadata leaves out has no replicas reported (and is not checked)
        return {
            name: [list(p.replicas) for p in topics[name].partitions.values()]
            if name in topics
            else []
            for name in names
        }

    async def min_insync(self, names: list[str]) -> dict[str, str]:
        """Each topic's ``min.insync.replicas`` where the broker reports it.

        Raises :class:`ConfigsUnreadable` (or times out) on a broker without DescribeConfigs.
        """
        resources = [ConfigResource(ResourceType.TOPIC, name) for name in names]
        found: dict[str, str] = {}
        futures = self._client.describe_configs(resources, request_timeout=_TIMEOUT)
        for resource, future in futures.items():
            try:
                entries = await asyncio.wrap_future(future)
            except KafkaException as exc:
                error = _error_of(exc)
                if error is not None and error.code() in _CONFIGS_UNREADABLE:
                    raise ConfigsUnreadable(f"kafka {self.bootstrap}: {kafka_reason(exc)}") from exc
                log.warning("kafka %s: topic %s: configs not readable (%s); %s not checked",
                            self.bootstrap, resource.name, kafka_reason(exc), MIN_INSYNC)  # fmt: skip
                continue
            entry = entries.get(MIN_INSYNC)
            if entry is not None and entry.value:
                found[resource.name] = entry.value
        return found
