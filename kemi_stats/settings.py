"""Typed settings shared by every service and the CLI, from ``KEMI_*`` environment variables.

Flags override the environment; defaults live here and nowhere else.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from kemi_stats.errors import ConfigError

__all__ = ["Settings", "load_settings", "settings_problem"]


class Settings(BaseSettings):
    """Where the platform's servers are and how the services talk to them."""

    # an invalid setting's error never quotes what was read: it may be a password
    model_config = SettingsConfigDict(
        env_prefix="KEMI_", extra="ignore", frozen=True, hide_input_in_errors=True
    )

    kafka_bootstrap: str = "127.0.0.1:9092"
    # Short sessions make a restarted consumer's partitions move quickly; the local
    # broker also makes kafka-python's first join take half of this (docs/local-stack.md).
    kafka_session_timeout_ms: int = Field(10000, ge=1000)
    # Copies of each topic: ``kemi-stats topics ensure`` creates topics with this many
    # replicas, and every service refuses a topic with fewer (1 for one broker).
    kafka_replication_factor: int = Field(1, ge=1)
    # Replicas that must hold a record before the broker acks it (a topic config).
    kafka_min_insync_replicas: int = Field(1, ge=1)
    # partitions the sample topics (kemi.metrics.raw, kemi.metrics, kemi.metrics.groups)
    # get where a service creates them; the calculator's tables are co-partitioned with
    # them (docs/capacity.md). The local stack sets 4 (docs/local-stack.md)
    sample_partitions: int = Field(12, ge=1)
    # How every Kafka client connects (docs/security.md, Kafka): the TLS files are PEM
    # paths, empty for none (no CA file means the system's CAs).
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_ssl_cafile: str = ""
    kafka_ssl_certfile: str = ""
    kafka_ssl_keyfile: str = ""
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "PLAIN"
    kafka_sasl_username: str = ""
    kafka_sasl_password: SecretStr = SecretStr("")
    # one endpoint, or several separated by commas (the client fails over between them)
    etcd_endpoint: str = "127.0.0.1:2379"
    etcd_prefix: str = "/kemi/"
    # TLS: the CA that signed etcd's certificate; a client certificate and key if etcd
    # requires one (--client-cert-auth). Any of them set means TLS.
    etcd_ca_file: str = ""
    etcd_cert_file: str = ""
    etcd_key_file: str = ""
    # etcd's own users (--auth): every call carries a token renewed in the background
    etcd_user: str = ""
    etcd_password: SecretStr = SecretStr("")
    # the keyring that encrypts registry secrets at rest (docs/security.md): a file that
    # services re-read when it changes, or the same JSON in the environment
    secrets_keyring_file: str = ""
    secrets_keyring: SecretStr = SecretStr("")
    tsdb_url: str = "http://127.0.0.1:8428"
    tsdb_kind: str = "victoriametrics"  # victoriametrics | influxdb
    tsdb_token: SecretStr = SecretStr("")
    tsdb_org: str = "kemi"
    tsdb_bucket: str = "kemi"
    data_dir: Path = Path.home() / ".kemi-stats"
    http_host: str = "127.0.0.1"
    http_port: int | None = Field(None, ge=0, le=65535)
    # the host others reach this process's HTTP listener at, as registered in etcd
    # (docs/services.md); empty: the bind address, or the hostname
    # when that is a wildcard (0.0.0.0, ::)
    advertise_host: str = ""
    # seconds an instance's registration in etcd outlives the process (kill -9); kept
    # alive every third of it (etcd leases count whole seconds)
    registration_ttl: int = Field(15, ge=2, le=3600)
    log_level: str = "INFO"
    # seconds a service takes at most to stop after SIGTERM or SIGINT; then it exits, and
    # what it had not finished is read again by whoever takes its partitions. Above the
    # longest single wait of a stop (10 s for the last writes), under Kubernetes' 30 s
    stop_timeout: float = Field(25.0, gt=0)

    @field_validator("etcd_prefix")
    @classmethod
    def _prefix_slashes(cls, value: str) -> str:
        if not value.startswith("/"):
            value = "/" + value
        return value if value.endswith("/") else value + "/"

    @model_validator(mode="after")
    def _insync_within_replicas(self) -> Settings:
        if self.kafka_min_insync_replicas > self.kafka_replication_factor:
            raise ValueError(
                f"KEMI_KAFKA_MIN_INSYNC_REPLICAS={self.kafka_min_insync_replicas}: expected at "
                f"most KEMI_KAFKA_REPLICATION_FACTOR={self.kafka_replication_factor}"
            )
        return self

    @model_validator(mode="after")
    def _kafka_security_complete(self) -> Settings:
        """Refuse at startup what would otherwise fail later, at the first connection."""
        if self.kafka_security_protocol.startswith("SASL_"):
            for name, value in (
                ("USERNAME", self.kafka_sasl_username),
                ("PASSWORD", self.kafka_sasl_password.get_secret_value()),
            ):
                if not value:
                    raise ValueError(
                        f"KEMI_KAFKA_SASL_{name} is required with "
                        f"KEMI_KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol}"
                    )
        for name in ("cafile", "certfile", "keyfile"):
            path = getattr(self, f"kafka_ssl_{name}")
            if path and not Path(path).is_file():
                raise ValueError(f"KEMI_KAFKA_SSL_{name.upper()}={path}: no such file")
            if path and self.kafka_security_protocol in ("PLAINTEXT", "SASL_PLAINTEXT"):
                # a TLS file without TLS is a setting that looks safe and is not
                raise ValueError(
                    f"KEMI_KAFKA_SSL_{name.upper()} is set but KEMI_KAFKA_SECURITY_PROTOCOL="
                    f"{self.kafka_security_protocol} does not use TLS (SSL or SASL_SSL)"
                )
        return self

    @field_validator("kafka_security_protocol", "kafka_sasl_mechanism", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _etcd_auth_pairs(self) -> Settings:
        if bool(self.etcd_user) != bool(self.etcd_password.get_secret_value()):
            raise ValueError("KEMI_ETCD_USER and KEMI_ETCD_PASSWORD: set both or neither")
        return self

    @property
    def etcd_host_port(self) -> tuple[str, int]:
        host, _, port = self.etcd_endpoint.split(",")[0].rpartition(":")
        return (host or "127.0.0.1"), int(port)


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment, with non-None ``overrides`` (from flags) applied.

    An invalid setting is a :class:`ConfigError` in one line naming it (never its value).
    """
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})  # type: ignore[arg-type]
    except ValidationError as exc:
        raise ConfigError(settings_problem(exc, "KEMI_")) from None


def settings_problem(exc: ValidationError, prefix: str) -> str:
    """One line for the first error of a settings class: the variable and what is wrong."""
    err = exc.errors()[0]
    field = ".".join(str(p) for p in err["loc"])
    message = str(err["msg"]).removeprefix("Value error, ")
    return f"{prefix}{field.upper()}: {message}" if field else message
