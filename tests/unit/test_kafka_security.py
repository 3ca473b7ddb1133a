"""The KEMI_KAFKA_* security settings, validated, and mapped to each client's options."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import faust
import pytest
from pydantic import SecretStr, ValidationError

from calculator.app import create_app
from calculator.settings import CalculatorSettings
from kemi_stats import kafka
from kemi_stats.kafka import make_consumer, make_producer
from kemi_stats.kafka_security import (
    aiokafka_options,
    faust_options,
    kafka_python_options,
    rdkafka_options,
    ssl_context,
)
from kemi_stats.settings import Settings
from tests.tls import self_signed

SECRET = "s3cr3t-pw"


@pytest.fixture
def pem(tmp_path: Path) -> tuple[str, str]:
    cert, key = self_signed(tmp_path)
    return str(cert), str(key)


def _settings(**fields: Any) -> Settings:
    return Settings(kafka_bootstrap="k1:9093,k2:9093", **fields)


def _sasl_ssl(pem: tuple[str, str]) -> Settings:
    cert, key = pem
    return _settings(
        kafka_security_protocol="SASL_SSL", kafka_ssl_cafile=cert, kafka_ssl_certfile=cert,
        kafka_ssl_keyfile=key, kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="kemi", kafka_sasl_password=SecretStr(SECRET),
    )  # fmt: skip


# --- settings --------------------------------------------------------------------------


def test_defaults_are_plaintext() -> None:
    settings = _settings()
    assert settings.kafka_security_protocol == "PLAINTEXT"
    assert settings.kafka_sasl_mechanism == "PLAIN"
    assert settings.kafka_sasl_password.get_secret_value() == ""


def test_the_environment_sets_them(monkeypatch: pytest.MonkeyPatch, pem: tuple[str, str]) -> None:
    monkeypatch.setenv("KEMI_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("KEMI_KAFKA_SSL_CAFILE", pem[0])
    monkeypatch.setenv("KEMI_KAFKA_SASL_MECHANISM", "SCRAM-SHA-256")
    monkeypatch.setenv("KEMI_KAFKA_SASL_USERNAME", "kemi")
    monkeypatch.setenv("KEMI_KAFKA_SASL_PASSWORD", SECRET)
    settings = Settings()
    assert settings.kafka_security_protocol == "SASL_SSL"
    assert settings.kafka_sasl_password.get_secret_value() == SECRET


@pytest.mark.parametrize("missing", ["USERNAME", "PASSWORD"])
@pytest.mark.parametrize("protocol", ["SASL_PLAINTEXT", "SASL_SSL"])
def test_sasl_needs_a_username_and_a_password(missing: str, protocol: str) -> None:
    fields = {"kafka_sasl_username": "kemi", "kafka_sasl_password": SECRET}
    fields[f"kafka_sasl_{missing.lower()}"] = ""
    with pytest.raises(ValidationError, match=f"KEMI_KAFKA_SASL_{missing} is required with "):
        _settings(kafka_security_protocol=protocol, **fields)


@pytest.mark.parametrize("name", ["cafile", "certfile", "keyfile"])
def test_a_tls_file_that_does_not_exist_is_named(name: str, tmp_path: Path) -> None:
    path = tmp_path / "missing.pem"
    with pytest.raises(ValidationError, match=f"KEMI_KAFKA_SSL_{name.upper()}={path}: no such"):
        _settings(kafka_security_protocol="SSL", **{f"kafka_ssl_{name}": str(path)})


@pytest.mark.parametrize(
    ("field", "value"),
    [("kafka_security_protocol", "TLS"), ("kafka_sasl_mechanism", "GSSAPI")],
)
def test_unknown_protocols_and_mechanisms_are_refused(field: str, value: str) -> None:
    with pytest.raises(ValidationError, match=field):
        _settings(**{field: value})


def test_the_password_is_never_shown(pem: tuple[str, str]) -> None:
    settings = _sasl_ssl(pem)
    for text in (repr(settings), str(settings), repr(settings.kafka_sasl_password)):
        assert SECRET not in text
    assert SECRET not in settings.model_dump_json()


# --- options per client ----------------------------------------------------------------


def test_plaintext_adds_nothing_but_the_protocol() -> None:
    settings = _settings()
    assert aiokafka_options(settings) == {"security_protocol": "PLAINTEXT"}
    assert kafka_python_options(settings) == {"security_protocol": "PLAINTEXT"}
    assert rdkafka_options(settings) == {"security.protocol": "plaintext"}
    assert faust_options(settings) == {
        "broker": "kafka://k1:9093,k2:9093",
        "broker_credentials": None,
    }
    assert ssl_context(settings) is None


def test_ssl_files_go_to_each_client(pem: tuple[str, str]) -> None:
    cert = pem[0]
    settings = _settings(kafka_security_protocol="SSL", kafka_ssl_cafile=cert)
    assert kafka_python_options(settings) == {"security_protocol": "SSL", "ssl_cafile": cert}
    assert rdkafka_options(settings) == {"security.protocol": "ssl", "ssl.ca.location": cert}
    options = aiokafka_options(settings)
    assert options["security_protocol"] == "SSL"
    context = options["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.check_hostname and context.verify_mode == ssl.CERT_REQUIRED
    credentials = faust_options(settings)["broker_credentials"]
    assert isinstance(credentials, faust.SSLCredentials)


def test_sasl_ssl_goes_to_each_client(pem: tuple[str, str]) -> None:
    cert, key = pem
    settings = _sasl_ssl(pem)
    assert kafka_python_options(settings) == {
        "security_protocol": "SASL_SSL", "ssl_cafile": cert, "ssl_certfile": cert,
        "ssl_keyfile": key, "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "kemi", "sasl_plain_password": SECRET,
    }  # fmt: skip
    assert rdkafka_options(settings) == {
        "security.protocol": "sasl_ssl", "ssl.ca.location": cert,
        "ssl.certificate.location": cert, "ssl.key.location": key,
        "sasl.mechanisms": "SCRAM-SHA-512", "sasl.username": "kemi", "sasl.password": SECRET,
    }  # fmt: skip
    options = aiokafka_options(settings)
    assert {k: v for k, v in options.items() if k != "ssl_context"} == {
        "security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "kemi", "sasl_plain_password": SECRET,
    }  # fmt: skip
    assert isinstance(options["ssl_context"], ssl.SSLContext)
    faust_creds = faust_options(settings)["broker_credentials"]
    assert isinstance(faust_creds, faust.SASLCredentials)
    assert faust_creds.protocol.value == "SASL_SSL"
    assert (faust_creds.mechanism.value, faust_creds.username) == ("SCRAM-SHA-512", "kemi")
    assert SECRET not in repr(faust_creds)


def test_sasl_plaintext_has_no_tls() -> None:
    settings = _settings(
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_username="kemi",
        kafka_sasl_password=SECRET,
    )
    assert "ssl_context" not in aiokafka_options(settings)
    assert "ssl.ca.location" not in rdkafka_options(settings)
    creds = faust_options(settings)["broker_credentials"]
    assert isinstance(creds, faust.SASLCredentials)
    assert (creds.protocol.value, creds.mechanism.value) == ("SASL_PLAINTEXT", "PLAIN")


def test_the_service_clients_get_the_options(
    pem: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[dict[str, Any]] = []
    monkeypatch.setattr(kafka, "AIOKafkaProducer", lambda **kw: made.append(kw))
    monkeypatch.setattr(kafka, "AIOKafkaConsumer", lambda *topics, **kw: made.append(kw))
    settings = _sasl_ssl(pem)
    make_producer(settings)
    make_consumer(settings, "t", group_id="g")
    for options in made:
        assert options["security_protocol"] == "SASL_SSL"
        assert options["sasl_mechanism"] == "SCRAM-SHA-512"
        assert options["sasl_plain_password"] == SECRET
        assert isinstance(options["ssl_context"], ssl.SSLContext)
    assert len(made) == 2


def test_the_calculator_app_gets_the_credentials(pem: tuple[str, str], tmp_path: Path) -> None:
    settings = _sasl_ssl(pem).model_copy(update={"data_dir": tmp_path})
    app = create_app(settings, CalculatorSettings())
    assert [str(url) for url in app.conf.broker] == ["kafka://k1:9093", "kafka://k2:9093"]
    assert isinstance(app.conf.broker_credentials, faust.SASLCredentials)
