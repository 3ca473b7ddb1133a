"""The CLI's config file: contexts, their keys, and how they reach the settings."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kemi_stats.cli.config_file import ConfigFile, activate_context, context_environment
from kemi_stats.errors import ConfigError
from kemi_stats.settings import load_settings


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "config.yaml"
    monkeypatch.setenv("KEMI_CONFIG", str(path))
    for name in ("KEMI_ETCD_PREFIX", "KEMI_ETCD_ENDPOINT", "KEMI_ETCD_PASSWORD", "KEMI_AGENT_URL"):
        monkeypatch.delenv(name, raising=False)
    return path


def test_no_file_is_no_context(config: Path) -> None:
    cfg = ConfigFile.load()
    assert (cfg.contexts, cfg.current) == ({}, None)
    assert activate_context(None) is None


def test_keys_are_normalised_and_checked(config: Path) -> None:
    config.write_text(
        "current-context: a\ncontexts:\n  a:\n    etcd-prefix: /a/\n    TSDB_URL: x\n"
    )
    assert ConfigFile.load().contexts == {"a": {"etcd_prefix": "/a/", "tsdb_url": "x"}}
    config.write_text("contexts:\n  a:\n    etcd_prefx: /a/\n")
    with pytest.raises(ConfigError, match="context a: unknown key 'etcd_prefx'"):
        ConfigFile.load()
    config.write_text("contexts:\n  a:\n    etcd_password: hunter2\n")
    with pytest.raises(ConfigError, match="etcd_password_file") as caught:
        ConfigFile.load()
    assert "hunter2" not in str(caught.value)
    config.write_text("contexts: [a]\n")
    with pytest.raises(ConfigError, match="'contexts' must map names"):
        ConfigFile.load()
    config.write_text("contexts: {\n")
    with pytest.raises(ConfigError, match="not YAML"):
        ConfigFile.load()


def test_save_is_private_and_round_trips(config: Path) -> None:
    cfg = ConfigFile(config, {"a": {"etcd_prefix": "/a/"}}, "a")
    cfg.save()
    assert config.stat().st_mode & 0o777 == 0o600
    assert ConfigFile.load().contexts == {"a": {"etcd_prefix": "/a/"}}


def test_environment_of_a_context(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("s3cret\n")
    env, warnings = context_environment(
        {"etcd_prefix": "/p/", "etcd_password_file": str(secret), "aggregator_url": "http://a"},
        "ctx",
    )
    assert env == {"KEMI_ETCD_PREFIX": "/p/", "KEMI_ETCD_PASSWORD": "s3cret",
                   "KEMI_AGENT_URL": "http://a"}  # fmt: skip
    assert warnings == []
    # an unreadable secret file is a warning: the command goes on (and may not need it)
    env, warnings = context_environment({"etcd_password_file": str(tmp_path / "gone")}, "ctx")
    assert env == {}
    assert warnings == [f"ctx: etcd_password_file {tmp_path / 'gone'}: No such file or directory; "
                        "going on without it"]  # fmt: skip


def test_urls_with_credentials_are_refused(config: Path) -> None:
    config.write_text("contexts:\n  a:\n    tsdb_url: http://u:pw@vm:8428\n")
    with pytest.raises(ConfigError, match="tsdb_url has credentials in it") as caught:
        ConfigFile.load()
    assert "pw" not in str(caught.value).replace("password", "")


def test_flags_then_environment_then_context(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ConfigFile(config, {"a": {"etcd_prefix": "/a/"}, "b": {"etcd_prefix": "/b/"}}, "a").save()
    assert activate_context(None) == "a"
    assert load_settings().etcd_prefix == "/a/"
    assert activate_context("b") == "b"  # another context replaces what the first set
    assert load_settings().etcd_prefix == "/b/"
    assert load_settings(etcd_prefix="/flag/").etcd_prefix == "/flag/"
    activate_context(None)
    monkeypatch.setenv("KEMI_ETCD_PREFIX", "/env/")
    activate_context("b")
    assert load_settings().etcd_prefix == "/env/"
    assert os.environ["KEMI_ETCD_PREFIX"] == "/env/"
    with pytest.raises(ConfigError, match=r"context 'c' is not in .* \(contexts: a, b\)"):
        activate_context("c")
