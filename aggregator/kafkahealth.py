"""Is Kafka answering? A small probe on its own client, so pushes fail fast while it is not.

Every ``probe_interval`` the probe asks the cluster for metadata and waits at
most ``probe_timeout``. A broker that is down (connection refused) or hung (the
request never answered) marks Kafka unavailable until a probe succeeds again.
With ``idempotence=auto``, the probe also says, once, whether the brokers grant
librdkafka's idempotent producer its producer id.

Its client is librdkafka's admin client, the library the aggregator produces with: the
aggregator holds no second Kafka client library. The same client makes the
aggregator's topics at start (:attr:`KafkaProbe.admin`).
"""

from __future__ import annotations

import asyncio
import logging
import time

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from kemi_stats.kafka_security import rdkafka_options
from kemi_stats.rdkafka_producer import producer_id_granted
from kemi_stats.settings import Settings
from kemi_stats.topic_admin_rdkafka import RdTopicAdmin, kafka_reason, rdkafka_admin

__all__ = ["KafkaProbe"]

log = logging.getLogger(__name__)

#: the longest wait for a producer id (librdkafka's takes ~0.5 s on a broker that answers)
_PRODUCER_ID_WAIT = 5.0


class KafkaProbe:
    """Follows Kafka's availability; ``ok`` and ``detail`` say the latest finding."""

    def __init__(
        self, settings: Settings, interval: float, timeout: float, *, idempotence: bool = True
    ) -> None:
        """``idempotence``: also find out, once, whether the brokers offer idempotence."""
        self.settings = settings
        self.bootstrap = settings.kafka_bootstrap
        self.interval = interval
        self.timeout = timeout
        self.ok = False
        self.since = time.time()
        self.detail = "not probed yet"
        #: whether the brokers grant an idempotent producer its id (None: not asked)
        self.idempotence: bool | None = None
        self._ask_idempotence = idempotence
        #: one client for the process's life: librdkafka reconnects by itself
        self._client: AdminClient = rdkafka_admin(settings, client_id="kemi-aggregator-probe")
        self._changed = asyncio.Event()
        self._probed = False

    @property
    def admin(self) -> RdTopicAdmin:
        """The topic admin calls, over the probe's client."""
        return RdTopicAdmin(self.settings, self._client)

    async def run(self) -> None:
        """Probe until cancelled."""
        while True:
            await self.probe_once()
            await asyncio.sleep(self.interval)

    async def wait_ok(self) -> None:
        while not self.ok:
            self._changed.clear()
            await self._changed.wait()

    async def probe_once(self) -> bool:
        try:
            # librdkafka waits the whole timeout for a broker that is down or hung
            await asyncio.to_thread(self._client.list_topics, timeout=self.timeout)
        except KafkaException as exc:
            self._set(False, f"kafka {self.bootstrap}: {kafka_reason(exc)}")
            return False
        if self._ask_idempotence and self.idempotence is None:
            self.idempotence = await self._idempotence()
        self._set(True, f"kafka {self.bootstrap}: answering")
        return True

    async def _idempotence(self) -> bool:
        granted, why = await asyncio.to_thread(
            producer_id_granted,
            self.bootstrap,
            wait=max(self.timeout, _PRODUCER_ID_WAIT),
            security=rdkafka_options(self.settings),
        )
        log.info(
            "kafka %s: idempotent producer %s (%s)",
            self.bootstrap,
            "supported" if granted else "NOT supported",
            why,
        )
        return granted

    def _set(self, ok: bool, detail: str) -> None:
        if ok != self.ok or not self._probed:
            log.warning("%s", detail if not ok else f"kafka {self.bootstrap}: available")
            self.since = time.time()
            self._changed.set()
        self._probed = True
        self.ok = ok
        self.detail = detail
