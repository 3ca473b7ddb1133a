"""TLS and SASL for every Kafka client, from the ``KEMI_KAFKA_*`` settings.

Four client libraries talk to Kafka here (aiokafka for the services and topic admin,
kafka-python for the CLI's ``kemi-stats tail``, librdkafka for the aggregator's producer, Faust for the
calculator), and each spells the same security options differently. Every client is
built with the options of one function below, so no client can connect with less
protection than the settings ask for.

TLS and SASL failures are what the Python libraries report worst (kafka-python: a
retried "unable to bootstrap" after a logged ``SSLError``; aiokafka: a ``KeyError``
when the broker refuses a SCRAM login): :func:`connect_error` finds the reason once
(:func:`tls_problem` makes the TLS handshake itself, :func:`sasl_problem` asks
librdkafka, which names SASL failures) and says it in one line.
"""

from __future__ import annotations

import logging
import socket
import ssl
from typing import Any

from kemi_stats.settings import Settings

__all__ = [
    "aiokafka_options",
    "connect_error",
    "faust_options",
    "kafka_python_options",
    "rdkafka_options",
    "sasl_problem",
    "ssl_context",
    "tls_problem",
    "uses_sasl",
    "uses_tls",
]


def uses_tls(settings: Settings) -> bool:
    """Whether the connection to the brokers is encrypted (SSL or SASL_SSL)."""
    return settings.kafka_security_protocol in ("SSL", "SASL_SSL")


def uses_sasl(settings: Settings) -> bool:
    """Whether clients authenticate with a user and password (SASL_PLAINTEXT or SASL_SSL)."""
    return settings.kafka_security_protocol.startswith("SASL_")


def _password(settings: Settings) -> str:
    return settings.kafka_sasl_password.get_secret_value()


def ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """The client TLS context (hostname checked; no CA file: the system's CAs), None without TLS.

    Built with aiokafka's helper so aiokafka and Faust verify brokers exactly alike.
    """
    if not uses_tls(settings):
        return None
    # here, not at the top: a process that makes no aiokafka client (most CLI commands)
    # does not load aiokafka
    from aiokafka.helpers import create_ssl_context

    return create_ssl_context(
        cafile=settings.kafka_ssl_cafile or None,
        certfile=settings.kafka_ssl_certfile or None,
        keyfile=settings.kafka_ssl_keyfile or None,
    )


def _python_sasl(settings: Settings) -> dict[str, Any]:
    """SASL as both Python clients spell it (aiokafka copied kafka-python's names)."""
    return {
        "sasl_mechanism": settings.kafka_sasl_mechanism,
        "sasl_plain_username": settings.kafka_sasl_username,
        "sasl_plain_password": _password(settings),
    }


def aiokafka_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for AIOKafkaProducer, AIOKafkaConsumer and AIOKafkaClient."""
    options: dict[str, Any] = {"security_protocol": settings.kafka_security_protocol}
    context = ssl_context(settings)
    if context is not None:
        options["ssl_context"] = context
    if uses_sasl(settings):
        options.update(_python_sasl(settings))
    return options


def kafka_python_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for kafka-python's KafkaAdminClient, KafkaConsumer and KafkaProducer."""
    options: dict[str, Any] = {"security_protocol": settings.kafka_security_protocol}
    if uses_tls(settings):
        files = {
            "ssl_cafile": settings.kafka_ssl_cafile,
            "ssl_certfile": settings.kafka_ssl_certfile,
            "ssl_keyfile": settings.kafka_ssl_keyfile,
        }
        options.update({key: path for key, path in files.items() if path})
    if uses_sasl(settings):
        options.update(_python_sasl(settings))
    return options


def rdkafka_options(settings: Settings) -> dict[str, Any]:
    """librdkafka configuration properties (confluent-kafka's Producer, Consumer, AdminClient)."""
    options: dict[str, Any] = {"security.protocol": settings.kafka_security_protocol.lower()}
    if uses_tls(settings):
        files = {
            "ssl.ca.location": settings.kafka_ssl_cafile,
            "ssl.certificate.location": settings.kafka_ssl_certfile,
            "ssl.key.location": settings.kafka_ssl_keyfile,
        }
        options.update({key: path for key, path in files.items() if path})
    if uses_sasl(settings):
        options.update(
            {
                "sasl.mechanisms": settings.kafka_sasl_mechanism,
                "sasl.username": settings.kafka_sasl_username,
                "sasl.password": _password(settings),
            }
        )
    return options


def faust_options(settings: Settings) -> dict[str, Any]:
    """``broker`` and ``broker_credentials`` for ``faust.App``.

    Faust's ``kafka://`` scheme names its aiokafka driver and stays the same with TLS
    (Faust has no TLS scheme): the protection travels in ``broker_credentials``.
    """
    import faust  # only the calculator needs it, and it is slow to import

    broker = f"kafka://{settings.kafka_bootstrap}"
    context = ssl_context(settings)
    credentials: faust.SASLCredentials | faust.SSLCredentials | None = None
    if uses_sasl(settings):
        credentials = faust.SASLCredentials(
            username=settings.kafka_sasl_username,
            password=_password(settings),
            mechanism=settings.kafka_sasl_mechanism,
            ssl_context=context,
        )
    elif context is not None:
        credentials = faust.SSLCredentials(context)
    return {"broker": broker, "broker_credentials": credentials}


def _bootstrap_hosts(bootstrap: str) -> list[tuple[str, int]]:
    hosts = []
    for entry in bootstrap.split(","):
        host, _, port = entry.strip().rpartition(":")
        hosts.append((host.strip("[]") or "127.0.0.1", int(port or 9092)))
    return hosts


def tls_problem(settings: Settings, timeout: float = 5.0) -> str | None:
    """Why the TLS handshake with the first bootstrap broker fails, in one line (None: it works).

    The clients only log the TLS error and retry until they time out; this names the
    certificate problem and the setting to fix.
    """
    context = ssl_context(settings)
    if context is None:
        return None
    host, port = _bootstrap_hosts(settings.kafka_bootstrap)[0]
    ca = settings.kafka_ssl_cafile or "the system's CAs"
    try:
        with (
            socket.create_connection((host, port), timeout=timeout) as raw,
            context.wrap_socket(raw, server_hostname=host),
        ):
            return None
    except ssl.SSLCertVerificationError as exc:
        reason = exc.verify_message or exc.reason or str(exc)
        return f"TLS: broker certificate not trusted ({reason}; KEMI_KAFKA_SSL_CAFILE: {ca})"
    except ssl.SSLError as exc:
        protocol = settings.kafka_security_protocol
        return (
            f"TLS handshake failed: {exc.reason or exc} (KEMI_KAFKA_SECURITY_PROTOCOL={protocol})"
        )
    except OSError as exc:
        return f"{host}:{port}: {exc.strerror or exc}"


def sasl_problem(settings: Settings, timeout: float = 5.0) -> str | None:
    """librdkafka's reason the SASL login fails (None: it works, or no SASL).

    librdkafka reports the broker's SCRAM answer ("unknown-user", "invalid proof")
    where kafka-python only times out and aiokafka raises a ``KeyError``.
    """
    if not uses_sasl(settings):
        return None
    from confluent_kafka import KafkaError, KafkaException, Producer

    errors: list[str] = []

    def collect(err: KafkaError) -> None:
        errors.append(err.str())

    producer = Producer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "error_cb": collect,
            "logger": logging.getLogger(__name__ + ".probe"),
            **rdkafka_options(settings),
        }
    )
    try:
        producer.list_topics(timeout=timeout)
    except KafkaException:
        pass
    finally:
        producer.flush(0)
    refused = [e for e in errors if "SASL" in e or "uthentication" in e]
    return refused[0] if refused else None


def connect_error(settings: Settings, exc: BaseException) -> str:
    """One line saying why a client could not reach the brokers (TLS or SASL reason first)."""
    detail = tls_problem(settings) or sasl_problem(settings) or f"{type(exc).__name__}: {exc}"
    return f"kafka {settings.kafka_bootstrap}: cannot connect: {' '.join(detail.split())}"
