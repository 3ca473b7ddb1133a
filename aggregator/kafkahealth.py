"""Is Kafka answering? A small probe on its own connection, so pushes fail fast while it is not.

Every ``probe_interval`` the probe asks the cluster for metadata and waits at
most ``probe_timeout``. A broker that is down (connection refused) or hung (the
request never answered) marks Kafka unavailable until a probe succeeds again.
The probe also says, once, whether the broker supports idempotent producers
(InitProducerId), for ``idempotence=auto``.
"""

from __future__ import annotations

import asyncio
import logging
import time

from aiokafka.client import AIOKafkaClient
from aiokafka.protocol.transaction import InitProducerIdRequest

from kemi_stats.kafka_security import aiokafka_options
from kemi_stats.settings import Settings

__all__ = ["KafkaProbe"]

log = logging.getLogger(__name__)


class KafkaProbe:
    """Follows Kafka's availability; ``ok`` and ``detail`` say the latest finding."""

    def __init__(self, settings: Settings, interval: float, timeout: float) -> None:
        self.settings = settings
        self.bootstrap = settings.kafka_bootstrap
        self.interval = interval
        self.timeout = timeout
        self.ok = False
        self.since = time.time()
        self.detail = "not probed yet"
        self.idempotence: bool | None = None
        self._client: AIOKafkaClient | None = None
        self._changed = asyncio.Event()
        self._probed = False

    async def run(self) -> None:
        """Probe until cancelled."""
        try:
            while True:
                await self.probe_once()
                await asyncio.sleep(self.interval)
        finally:
            await self._close()

    async def wait_ok(self) -> None:
        while not self.ok:
            self._changed.clear()
            await self._changed.wait()

    async def probe_once(self) -> bool:
        try:
            async with asyncio.timeout(self.timeout):
                if self._client is None:
                    self._client = AIOKafkaClient(
                        bootstrap_servers=self.bootstrap,
                        client_id="kemi-aggregator-probe",
                        request_timeout_ms=max(int(self.timeout * 1000), 1000),
                        **aiokafka_options(self.settings),
                    )
                    await self._client.bootstrap()
                await self._client.fetch_all_metadata()
                if self.idempotence is None:
                    self.idempotence = await self._supports_idempotence(self._client)
        except Exception as exc:  # any failure at all means "not answering"
            await self._close()
            self._set(False, f"kafka {self.bootstrap}: {type(exc).__name__} {exc}".strip())
            return False
        self._set(True, f"kafka {self.bootstrap}: answering")
        return True

    async def _supports_idempotence(self, client: AIOKafkaClient) -> bool:
        node = client.get_random_node()
        request = InitProducerIdRequest(transactional_id=None, transaction_timeout_ms=60000)
        response = await client.send(node, request)
        supported = response.error_code == 0
        log.info(
            "kafka %s: idempotent producer %s",
            self.bootstrap,
            "supported" if supported else "NOT supported",
        )
        return supported

    def _set(self, ok: bool, detail: str) -> None:
        if ok != self.ok or not self._probed:
            log.warning("%s", detail if not ok else f"kafka {self.bootstrap}: available")
            self.since = time.time()
            self._changed.set()
        self._probed = True
        self.ok = ok
        self.detail = detail

    async def _close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:
                async with asyncio.timeout(2):
                    await client.close()
            except Exception:
                log.debug("probe client close failed", exc_info=True)
