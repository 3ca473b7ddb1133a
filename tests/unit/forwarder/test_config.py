"""The forwarder's settings: defaults, env, and the measurement rule per TSDB kind."""

from __future__ import annotations

import pytest

from forwarder.settings import ForwarderSettings, resolve_measurement
from kemi_stats.errors import ConfigError
from kemi_stats.settings import Settings


def test_measurement_defaults_per_kind() -> None:
    fwd = ForwarderSettings()
    assert resolve_measurement(Settings(tsdb_kind="victoriametrics"), fwd) == ""
    assert resolve_measurement(Settings(tsdb_kind="influxdb"), fwd) == "kemi"


def test_measurement_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEMI_FORWARDER_MEASUREMENT", "kemi")
    monkeypatch.setenv("KEMI_FORWARDER_BATCH_LINES", "100")
    fwd = ForwarderSettings()
    assert fwd.batch_lines == 100
    assert resolve_measurement(Settings(), fwd) == "kemi"


def test_bad_kind_and_empty_influx_measurement_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="KEMI_TSDB_KIND='prometheus'"):
        resolve_measurement(Settings(tsdb_kind="prometheus"), ForwarderSettings())
    with pytest.raises(ConfigError, match="InfluxDB needs a measurement"):
        resolve_measurement(Settings(tsdb_kind="influxdb"), ForwarderSettings(measurement=""))


def test_unknown_keys_rejected() -> None:
    with pytest.raises(ValueError, match="batch_size"):
        ForwarderSettings(batch_size=5)  # type: ignore[call-arg]
