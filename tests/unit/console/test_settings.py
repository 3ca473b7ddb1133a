"""The console's settings: the service list and the one-line ConfigError."""

from __future__ import annotations

import pytest

from console.settings import ConsoleSettings, load_console_settings, parse_services
from kemi_stats.catalogue import SERVICES
from kemi_stats.errors import ConfigError


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("KEMI_CONSOLE_"):
            monkeypatch.delenv(key)


def test_parse_services() -> None:
    assert parse_services("a=http://x:1, b=https://y:2") == {"a": "http://x:1", "b": "https://y:2"}
    assert parse_services("") == {}
    assert parse_services(" a = http://x:1/ ,") == {"a": "http://x:1"}


@pytest.mark.parametrize("item", ["a", "a=ftp://x", "=http://x"])
def test_parse_services_names_the_bad_item(item: str) -> None:
    with pytest.raises(ValueError, match="item") as err:
        parse_services(f"ok=http://h:1,{item}")
    assert repr(item) in str(err.value)


def test_service_urls_default_to_every_catalogue_service_on_loopback() -> None:
    urls = ConsoleSettings().service_urls()
    assert urls == {spec.name: f"http://127.0.0.1:{spec.port}" for spec in SERVICES.values()}
    assert set(urls) == {spec.name for spec in SERVICES.values()}


def test_service_urls_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEMI_CONSOLE_SERVICES", "poller=http://10.0.0.5:9101")
    assert load_console_settings().service_urls() == {"poller": "http://10.0.0.5:9101"}


# a URL may carry a password: the error names the variable, never the value
def test_invalid_services_is_a_one_line_config_error_without_the_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    value = "hunter2-not-a-url"
    monkeypatch.setenv("KEMI_CONSOLE_SERVICES", value)
    with pytest.raises(ConfigError) as err:
        load_console_settings()
    message = str(err.value)
    assert message.startswith("KEMI_CONSOLE_SERVICES")
    assert "\n" not in message
    assert value not in message
