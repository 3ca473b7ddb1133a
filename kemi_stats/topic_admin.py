"""The Kafka admin calls of :mod:`kemi_stats.topics`, over aiokafka's admin client.

A module of its own so that only a process that creates or checks topics loads
aiokafka's admin and protocol modules (:func:`kemi_stats.topics._admin` imports it at
the first call).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError, TopicAlreadyExistsError, for_code

from kemi_stats.errors import BrokerError
from kemi_stats.kafka_security import aiokafka_options, connect_error
from kemi_stats.settings import Settings
from kemi_stats.topic_spec import MIN_INSYNC, ConfigsUnreadable, TopicSpec

__all__ = ["TopicAdmin"]

log = logging.getLogger("kemi_stats.topics")


class TopicAdmin:
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

        Raises :class:`ConfigsUnreadable` (or times out) on a broker without DescribeConfigs.
        """
        resources = [
            ConfigResource(ConfigResourceType.TOPIC, name, {MIN_INSYNC: None}) for name in names
        ]
        try:
            responses = await self._client.describe_configs(resources)
        except KafkaError as exc:
            raise ConfigsUnreadable(
                f"kafka {self.bootstrap}: {str(exc) or type(exc).__name__}"
            ) from exc
        found: dict[str, str] = {}
        for response in responses:
            for resource in response.to_object()["resources"]:
                if resource.get("error_code"):
                    log.warning("kafka %s: topic %s: configs not readable (%s); %s not checked",
                                self.bootstrap, resource.get("resource_name"),
                                resource.get("error_message") or for_code(resource["error_code"]).__name__,
                                MIN_INSYNC)  # fmt: skip
                    continue
                for entry in resource.get("config_entries") or ():
                    if entry.get("config_names") == MIN_INSYNC and entry.get("config_value"):
                        found[resource["resource_name"]] = entry["config_value"]
        return found
