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

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient

from kemi_stats.kafka_security import rdkafka_options
from kemi_stats.rdkafka_producer import producer_id_granted
from kemi_stats.settings import Settings
from kemi_stats.topic_admin_rdkafka import RdTopicAdmin, kafka_reason, rdkafka_admin

__all__ = ["KafkaProbe"]

log = logging.getLogger(__name__)

#: seconds a producer id may take at least (librdkafka's takes ~0.5 s from a broker that answers)
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
        #: whether the brokers grant an idempotent producer its id (None: not known yet)
        self.idempotence: bool | None = None
        self._ask_idempotence = idempotence
        #: made by the first probe (a bad TLS file is then a finding, not a crash), then
        #: kept: librdkafka reconnects by itself
        self._client: AdminClient | None = None
        #: librdkafka's "all brokers are down" (said once, as it happens) since the last probe
        self._all_down = ""
        self._changed = asyncio.Event()
        self._probed = False

    @property
    def admin(self) -> RdTopicAdmin:
        """The topic admin calls, over the probe's client."""
        return RdTopicAdmin(self.settings, self._connected())

    def _connected(self) -> AdminClient:
        if self._client is None:
            self._client = rdkafka_admin(
                self.settings,
                client_id="kemi-aggregator-probe",
                # back within a probe interval of the broker's return (librdkafka's
                # backoff otherwise grows to 10 s)
                **{
                    "reconnect.backoff.max.ms": max(100, int(self.interval * 1000)),
                    "error_cb": self._error,
                },
            )
        return self._client

    def _error(self, err: KafkaError) -> None:
        # served by poll() in the probe's thread
        if err.code() == KafkaError._ALL_BROKERS_DOWN:
            self._all_down = err.str()

    def _ask(self, client: AdminClient) -> None:
        """One probe, blocking (in a thread): raises if Kafka does not answer."""
        client.poll(0)  # its log lines and errors since the last probe
        down, self._all_down = self._all_down, ""
        if down:
            # librdkafka saw every connection refused or lost since the last probe:
            # Kafka is not answering now, no need to wait out the timeout
            raise KafkaException(KafkaError(KafkaError._ALL_BROKERS_DOWN, down))
        try:
            client.list_topics(timeout=self.timeout)  # waits it out for a hung broker
        finally:
            client.poll(0)

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
            # made here, on the loop's thread: made in a worker thread, librdkafka's
            # allocations would open one more malloc arena (0.5 MiB idle)
            client = self._connected()
            await asyncio.to_thread(self._ask, client)
            if self._ask_idempotence and self.idempotence is None:
                self.idempotence, why = await self._idempotence()
                if self.idempotence is None:  # no broker answered in time: ask again
                    self._set(False, f"kafka {self.bootstrap}: {why}")
                    return False
        except Exception as exc:  # any failure at all means "not answering"
            reason = kafka_reason(exc) if isinstance(exc, KafkaException) else repr(exc)
            self._set(False, f"kafka {self.bootstrap}: {reason}")
            return False
        self._set(True, f"kafka {self.bootstrap}: answering")
        return True

    async def _idempotence(self) -> tuple[bool | None, str]:
        granted, why = await asyncio.to_thread(
            producer_id_granted,
            self.bootstrap,
            wait=max(self.timeout, _PRODUCER_ID_WAIT),
            security=rdkafka_options(self.settings),
        )
        if granted is not None:
            log.info(
                "kafka %s: idempotent producer %s (%s)",
                self.bootstrap,
                "supported" if granted else "NOT supported",
                why,
            )
        return granted, why

    def _set(self, ok: bool, detail: str) -> None:
        if ok != self.ok or not self._probed:
            log.warning("%s", detail if not ok else f"kafka {self.bootstrap}: available")
            self.since = time.time()
            self._changed.set()
        self._probed = True
        self.ok = ok
        self.detail = detail
