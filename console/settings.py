"""The console's own settings, from ``KEMI_CONSOLE_*`` environment variables.

Where etcd and the TSDB are comes from the shared :class:`~kemi_stats.settings.Settings`
(``KEMI_ETCD_*``, ``KEMI_TSDB_*``); this class holds what only the console reads.
Defaults live here and nowhere else.
"""

from __future__ import annotations

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from kemi_stats.catalogue import SERVICES
from kemi_stats.errors import ConfigError
from kemi_stats.settings import settings_problem

__all__ = ["ConsoleSettings", "load_console_settings"]


class ConsoleSettings(BaseSettings):
    """How the console reads the platform and serves people."""

    model_config = SettingsConfigDict(
        env_prefix="KEMI_CONSOLE_", extra="forbid", frozen=True, hide_input_in_errors=True
    )

    #: the alert evaluator's HTTP address (its ``/api/v1/alerts``)
    evaluator_url: str = f"http://127.0.0.1:{SERVICES['alert-evaluator'].port}"
    #: the service instances shown on the platform page, ``name=url`` separated by commas;
    #: empty: every service of the catalogue on 127.0.0.1 at its well-known port
    services: str = ""
    #: HTTPS for the console: a PEM certificate and its unencrypted key (both or neither)
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    #: a signed-in session ends after this many seconds without a request
    session_idle_timeout: float = Field(default=8 * 3600.0, gt=0)
    #: a signed-in session ends this many seconds after sign-in, however busy
    session_max_age: float = Field(default=24 * 3600.0, gt=0)
    #: sessions held at once (the least recently used one goes first)
    max_sessions: int = Field(default=10_000, ge=1)
    #: how often the fleet's poll status and the services' health are read again (seconds)
    refresh_interval: float = Field(default=15.0, gt=0)
    #: alerts read from the evaluator are reused for this long (seconds)
    alerts_max_age: float = Field(default=2.0, ge=0)
    #: rows per page of the targets page
    page_size: int = Field(default=50, ge=1, le=1000)
    #: the longest silence the console writes
    max_silence: float = Field(default=30 * 86400.0, gt=0)
    #: timeout of every read from the evaluator, the TSDB and the services (seconds)
    read_timeout: float = Field(default=5.0, gt=0)

    @field_validator("services")
    @classmethod
    def _services(cls, value: str) -> str:
        try:
            parse_services(value)
        except ValueError:
            # the message names no value: a URL may carry a password
            raise ValueError(
                "expected name=http(s)://host:port items separated by commas"
            ) from None
        return value

    def service_urls(self) -> dict[str, str]:
        """The services the platform page shows: name -> base URL."""
        return parse_services(self.services) or {
            spec.name: f"http://127.0.0.1:{spec.port}" for spec in SERVICES.values()
        }


def parse_services(text: str) -> dict[str, str]:
    """``name=url,name=url`` -> {name: url}; ValueError naming the bad item."""
    out: dict[str, str] = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        name, sep, url = item.partition("=")
        if not sep or not name.strip() or not url.strip().startswith(("http://", "https://")):
            raise ValueError(f"item {item!r}: expected name=http(s)://host:port")
        out[name.strip()] = url.strip().rstrip("/")
    return out


def load_console_settings() -> ConsoleSettings:
    """The settings from the environment; one-line :class:`ConfigError` if one is invalid."""
    try:
        return ConsoleSettings()
    except ValidationError as exc:
        raise ConfigError(settings_problem(exc, "KEMI_CONSOLE_")) from None
