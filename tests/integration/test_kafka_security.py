"""Kafka TLS and SASL settings against the real local broker, Tansu 0.6.0.

What Tansu 0.6.0 supports, as found here (docs/security.md, Kafka):

- TLS: ``tansu broker`` has ``--cert`` and ``--key`` but declares both in one
  mutually exclusive argument group, so giving both is refused ("the argument '--cert
  <CERT>' cannot be used with '--key <KEY>'") and the broker needs both for TLS
  (:func:`test_tansu_cannot_enable_its_own_tls` notices when that changes). The clients'
  TLS is therefore tested through a TLS terminator in front of a plaintext Tansu
  (:class:`TlsProxy`, the broker advertising the proxy's port): the clients make real
  TLS connections, with certificate and hostname checks, to the proxy.
- SASL: with ``--authentication`` Tansu offers SCRAM-SHA-256 and SCRAM-SHA-512 (PLAIN:
  "NoSharedMechanism"), and refuses every request before a login. Its only storage
  engine in this build (dynostore: ``memory://``, ``s3://``) does not keep SCRAM
  credentials: ``tansu user create`` answers OK and stores nothing, so every login is
  refused with "unknown-user". A successful SASL login cannot be tested against it;
  these tests check that a refused login fails fast with a clear error.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kemi_stats.errors import BrokerError
from kemi_stats.kafka import make_consumer, make_producer
from kemi_stats.kafka_security import rdkafka_options, sasl_problem, tls_problem
from kemi_stats.rdkafka_producer import AckedProducer
from kemi_stats.settings import Settings
from kemi_stats.stack.servers import free_port, tansu_binary
from kemi_stats.topic_admin_rdkafka import RdTopicAdmin
from kemi_stats.topics import TopicSpec, ensure_topics, list_topics
from tests.servers import RunningServer, start_tansu
from tests.tls import self_signed, server_context

pytestmark = pytest.mark.integration


class TlsProxy:
    """TLS in front of a plaintext broker: every connection decrypted and piped to it."""

    def __init__(self, cert: Path, key: Path, upstream: RunningServer, port: int) -> None:
        self.port = port
        self._context = server_context(cert, key)
        self._upstream = (upstream.host, upstream.port)
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tls-proxy", daemon=True)

    def start(self) -> TlsProxy:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("TLS proxy did not start")
        return self

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(
            asyncio.start_server(self._serve, "127.0.0.1", self.port, ssl=self._context)
        )
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            server.close()
            pending = asyncio.all_tasks(self._loop)
            for task in pending:
                task.cancel()
            self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            self._loop.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._upstream)
        except OSError:
            writer.close()
            return
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError, asyncio.IncompleteReadError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    with contextlib.suppress(OSError):
        writer.close()


def _behind_tls(tmp: Path, *flags: str) -> Iterator[tuple[Settings, Path]]:
    """A Tansu with ``flags`` behind a TLS proxy: settings trusting the proxy, and the CA."""
    cert, key = self_signed(tmp)
    proxy_port = free_port()
    broker = start_tansu(tmp, *flags, advertised_port=proxy_port)
    proxy = TlsProxy(cert, key, broker, proxy_port).start()
    settings = Settings(
        kafka_bootstrap=f"127.0.0.1:{proxy_port}",
        kafka_security_protocol="SSL",
        kafka_ssl_cafile=str(cert),
    )
    try:
        yield settings, cert
    finally:
        proxy.stop()
        broker.stop()


@pytest.fixture(scope="module")
def tls_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Settings for a TLS connection to a broker (through the TLS proxy)."""
    for settings, _cert in _behind_tls(tmp_path_factory.mktemp("kafka-tls")):
        yield settings


@pytest.fixture(scope="module")
def sasl_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """Tansu requiring a SASL login (``--authentication``)."""
    broker = start_tansu(tmp_path_factory.mktemp("kafka-sasl"), "--authentication")
    try:
        yield broker
    finally:
        broker.stop()


def _topic(prefix: str) -> str:
    return f"test.security.{prefix}.{uuid.uuid4().hex[:8]}"


def _sasl(broker_address: str, mechanism: str, **extra: Any) -> Settings:
    fields: dict[str, Any] = {
        "kafka_bootstrap": broker_address,
        "kafka_security_protocol": "SASL_PLAINTEXT",
        "kafka_sasl_mechanism": mechanism,
        "kafka_sasl_username": "kemi",
        "kafka_sasl_password": "not-the-password",
    }
    return Settings(**{**fields, **extra})


def _acked_producer(settings: Settings, delivery_timeout: float = 10.0) -> AckedProducer:
    return AckedProducer(
        settings.kafka_bootstrap,
        client_id="kemi-test-security",
        idempotent=False,
        linger_ms=1,
        delivery_timeout=delivery_timeout,
        queue_bytes=1 << 20,
        security=rdkafka_options(settings),
    )


# --- TLS -------------------------------------------------------------------------------


def test_tansu_cannot_enable_its_own_tls(tmp_path: Path) -> None:
    """The reason TLS goes through a proxy here: if this fails, test Tansu's own TLS instead."""
    cert, key = self_signed(tmp_path)
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    done = subprocess.run(
        [tansu_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url,
         "--storage-engine", "memory://tansu/", "--cert", str(cert), "--key", str(key)],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert done.returncode != 0
    assert "cannot be used with '--key <KEY>'" in done.stderr


def _admin(via: str, settings: Settings) -> RdTopicAdmin | None:
    """The topic admin client ``via`` names: None for aiokafka's (the default)."""
    return RdTopicAdmin(settings) if via == "librdkafka" else None


@pytest.mark.parametrize("via", ["aiokafka", "librdkafka"])
def test_topics_ensure_and_describe_over_tls(tls_kafka: Settings, via: str) -> None:
    assert tls_problem(tls_kafka) is None
    name = _topic("ensure")
    admin = _admin(via, tls_kafka)
    assert ensure_topics(tls_kafka, (TopicSpec(name, 3),), admin=admin) == [name]
    # described: replication
    assert ensure_topics(tls_kafka, (TopicSpec(name, 3),), admin=admin) == []
    assert name in list_topics(tls_kafka)


async def test_aiokafka_round_trip_over_tls(tls_kafka: Settings) -> None:
    topic = _topic("aiokafka")
    await asyncio.to_thread(ensure_topics, tls_kafka, (TopicSpec(topic, 1),))
    producer = make_producer(tls_kafka)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"over tls", key=b"k")
    finally:
        await producer.stop()
    consumer = make_consumer(tls_kafka, topic, group_id=_topic("group"))
    await consumer.start()
    try:
        async with asyncio.timeout(60):
            record = await consumer.getone()
    finally:
        await consumer.stop()
    assert (record.key, record.value) == (b"k", b"over tls")


async def test_rdkafka_producer_over_tls(tls_kafka: Settings) -> None:
    topic = _topic("rdkafka")
    await asyncio.to_thread(ensure_topics, tls_kafka, (TopicSpec(topic, 3),))
    producer = _acked_producer(tls_kafka)
    try:
        assert await asyncio.to_thread(producer.partitions, topic) == 3
        await asyncio.wait_for(producer.send_all(topic, [(b"a", b"1"), (b"b", b"2")]), 30)
    finally:
        assert await producer.close(5.0) == 0


@pytest.mark.parametrize("via", ["aiokafka", "librdkafka"])
def test_a_wrong_ca_fails_with_one_clear_line(
    tls_kafka: Settings, tmp_path: Path, via: str
) -> None:
    other_ca, _ = self_signed(tmp_path)  # another throwaway CA: not the broker's
    wrong = tls_kafka.model_copy(update={"kafka_ssl_cafile": str(other_ca)})
    with pytest.raises(BrokerError) as raised:
        ensure_topics(wrong, (TopicSpec(_topic("wrong-ca"), 1),), admin=_admin(via, wrong))
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith(f"kafka {wrong.kafka_bootstrap}: cannot connect: TLS: ")
    assert "certificate" in message
    assert f"KEMI_KAFKA_SSL_CAFILE: {other_ca}" in message


async def test_aiokafka_refuses_a_broker_it_does_not_trust(
    tls_kafka: Settings, tmp_path: Path
) -> None:
    other_ca, _ = self_signed(tmp_path)
    wrong = tls_kafka.model_copy(update={"kafka_ssl_cafile": str(other_ca)})
    producer = make_producer(wrong, request_timeout_ms=5000)
    with pytest.raises(Exception, match="Unable to bootstrap"):
        async with asyncio.timeout(60):
            await producer.start()
    await producer.stop()


def test_plaintext_to_a_tls_listener_is_named(tls_kafka: Settings) -> None:
    """The other way round: TLS asked of a plaintext listener (tls_problem's SSLError case)."""
    host = tls_kafka.kafka_bootstrap.rsplit(":", 1)[0]
    with socket_server() as plain_port:
        plain = tls_kafka.model_copy(update={"kafka_bootstrap": f"{host}:{plain_port}"})
        problem = tls_problem(plain, timeout=3)
    assert problem is not None
    assert problem.startswith("TLS handshake failed") or "Connection" in problem


@contextlib.contextmanager
def socket_server() -> Iterator[int]:
    """A TCP listener that closes every connection at once (not TLS)."""
    import socket

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.settimeout(5)

        def serve() -> None:
            with contextlib.suppress(OSError):
                conn, _ = listener.accept()
                conn.sendall(b"not tls\n" * 8)
                conn.close()

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        yield int(listener.getsockname()[1])
        thread.join(6)


# --- SASL ------------------------------------------------------------------------------


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_a_refused_scram_login_is_named(sasl_broker: RunningServer, mechanism: str) -> None:
    problem = sasl_problem(_sasl(sasl_broker.address, mechanism))
    assert problem is not None
    assert "SASL authentication error" in problem
    assert "unknown-user" in problem  # Tansu 0.6.0 keeps no SCRAM users at all


def test_plain_is_not_offered_by_tansu(sasl_broker: RunningServer) -> None:
    problem = sasl_problem(_sasl(sasl_broker.address, "PLAIN"))
    assert problem is not None and "SASL" in problem


@pytest.mark.parametrize("via", ["aiokafka", "librdkafka"])
def test_topics_ensure_with_a_refused_login_fails_with_one_clear_line(
    sasl_broker: RunningServer, via: str
) -> None:
    settings = _sasl(sasl_broker.address, "SCRAM-SHA-256")
    with pytest.raises(BrokerError) as raised:
        ensure_topics(settings, (TopicSpec(_topic("sasl"), 1),), admin=_admin(via, settings))
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith(f"kafka {sasl_broker.address}: cannot connect: ")
    assert "SASL authentication error" in message


async def test_service_clients_fail_on_a_refused_login(sasl_broker: RunningServer) -> None:
    settings = _sasl(sasl_broker.address, "SCRAM-SHA-512")
    producer = make_producer(settings, request_timeout_ms=5000)
    with pytest.raises(Exception):  # noqa: B017 - aiokafka raises KeyError('v') here
        async with asyncio.timeout(30):
            await producer.start()
    await producer.stop()
    rdkafka = _acked_producer(settings)
    try:
        with pytest.raises(Exception):  # noqa: B017 - confluent_kafka.KafkaException
            await asyncio.to_thread(rdkafka.partitions, "any", 5.0)
        assert "SASL authentication error" in rdkafka.last_error
    finally:
        await rdkafka.close(0)


async def test_clients_without_a_login_are_refused(sasl_broker: RunningServer) -> None:
    producer = _acked_producer(Settings(kafka_bootstrap=sasl_broker.address))
    try:
        with pytest.raises(Exception):  # noqa: B017 - confluent_kafka.KafkaException
            await asyncio.to_thread(producer.partitions, "any", 3.0)
    finally:
        await producer.close(0)


def test_sasl_over_tls_reaches_the_login(tmp_path: Path) -> None:
    """SASL_SSL: TLS first (the proxy), then the broker's SCRAM login (refused, see above)."""
    for tls, _cert in _behind_tls(tmp_path, "--authentication"):
        settings = _sasl(
            tls.kafka_bootstrap,
            "SCRAM-SHA-256",
            kafka_security_protocol="SASL_SSL",
            kafka_ssl_cafile=tls.kafka_ssl_cafile,
        )
        assert tls_problem(settings) is None
        problem = sasl_problem(settings)
        assert problem is not None and "unknown-user" in problem
