"""The CLI's config file: named contexts, each saying where one platform's servers are.

``$KEMI_CONFIG``, else ``$XDG_CONFIG_HOME/kemi-stats/config.yaml`` (``~/.config/...``)::

    current-context: staging
    contexts:
      staging:
        etcd_endpoint: etcd-1.stg:2379,etcd-2.stg:2379
        etcd_prefix: /kemi/
        etcd_ca_file: /etc/kemi/etcd-ca.pem
        etcd_user: operator
        etcd_password_file: ~/.config/kemi-stats/stg-etcd-password
        kafka_bootstrap: kafka-1.stg:9093
        tsdb_url: http://vm.stg:8428
        aggregator_url: https://push.stg:8080
        evaluator_url: http://alerts.stg:9104

A context's keys are settings (``KEMI_<KEY>`` without the prefix, ``-`` or ``_``) and
apply under a flag and a ``KEMI_*`` variable: flags, then the environment, then the
context, then the defaults. Secrets never sit in the file: ``*_password_file`` and
``*_token_file`` name files that hold them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click
import yaml

from kemi_stats.errors import ConfigError
from kemi_stats.private_file import read_secret, write_private
from kemi_stats.settings import Settings

__all__ = [
    "CLI_KEYS",
    "ConfigFile",
    "activate_context",
    "check_key",
    "check_value",
    "config_path",
    "context_environment",
]

#: keys that are no service setting: the variable each sets
CLI_KEYS = {
    "aggregator_url": "KEMI_AGENT_URL",
    "evaluator_url": "KEMI_ALERTING_EVALUATOR_URL",
}
#: keys naming a file that holds a secret: the variable its first line sets
SECRET_FILE_KEYS = {
    "etcd_password_file": "KEMI_ETCD_PASSWORD",
    "kafka_sasl_password_file": "KEMI_KAFKA_SASL_PASSWORD",
    "tsdb_token_file": "KEMI_TSDB_TOKEN",
}
_SECRET_SETTINGS = {"etcd_password", "kafka_sasl_password", "tsdb_token", "secrets_keyring"}


def config_path() -> Path:
    """Where the config file is (it need not exist)."""
    given = os.environ.get("KEMI_CONFIG")
    if given:
        return Path(given).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "kemi-stats" / "config.yaml"


def _key(text: str) -> str:
    return text.strip().lower().replace("-", "_")


def check_key(key: str, where: str) -> str:
    """The normalised key; ConfigError if a context cannot hold it."""
    k = _key(key)
    if k in _SECRET_SETTINGS:
        raise ConfigError(f"{where}: key {key!r} is a secret: name a file with '{k}_file'")
    if k in CLI_KEYS or k in SECRET_FILE_KEYS or k in Settings.model_fields:
        return k
    raise ConfigError(
        f"{where}: unknown key {key!r} (settings such as etcd_endpoint, etcd_prefix, "
        f"kafka_bootstrap, tsdb_url, or {', '.join([*CLI_KEYS, *SECRET_FILE_KEYS])})"
    )


def check_value(key: str, value: str, where: str) -> str:
    """``value`` of normalised ``key``; ConfigError for a URL that carries a password or
    a user (put a secret in a file the context names, never in the file itself)."""
    if key.endswith("url") and "@" in value:
        parts = urlsplit(value)
        if parts.username or parts.password:
            raise ConfigError(f"{where}: {key} has credentials in it: drop the user and password")
    return value


@dataclass
class ConfigFile:
    """The file's contexts and which one is current."""

    path: Path
    contexts: dict[str, dict[str, str]] = field(default_factory=dict)
    current: str | None = None

    @classmethod
    def load(cls, path: Path | None = None) -> ConfigFile:
        """The file at ``path`` (default: :func:`config_path`); empty if there is none."""
        path = path or config_path()
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except FileNotFoundError:
            return cls(path)
        except OSError as exc:
            raise ConfigError(f"{path}: {exc.strerror}") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not YAML: {str(exc).splitlines()[0]}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: expected a mapping with 'contexts'")
        unknown = set(data) - {"contexts", "current-context"}
        if unknown:
            raise ConfigError(f"{path}: unknown key {sorted(unknown)[0]!r}")
        contexts: dict[str, dict[str, str]] = {}
        raw_contexts = data.get("contexts") or {}
        if not isinstance(raw_contexts, dict):
            raise ConfigError(f"{path}: 'contexts' must map names to settings")
        for name, values in raw_contexts.items():
            where = f"{path}: context {name}"
            if not isinstance(values, dict):
                raise ConfigError(f"{where}: expected a mapping of settings")
            checked: dict[str, str] = {}
            for k, v in values.items():
                key = check_key(str(k), where)
                checked[key] = check_value(key, "" if v is None else str(v), where)
            contexts[str(name)] = checked
        current = data.get("current-context")
        return cls(path, contexts, str(current) if current else None)

    def save(self) -> None:
        """Write the file (0600: it names secret files and servers)."""
        doc: dict[str, Any] = {"current-context": self.current, "contexts": self.contexts}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_private(self.path, yaml.safe_dump(doc, sort_keys=False))

    def context(self, name: str) -> dict[str, str]:
        """The settings of context ``name``; ConfigError naming the known ones if absent."""
        if name not in self.contexts:
            known = ", ".join(sorted(self.contexts)) or "none"
            raise ConfigError(f"context {name!r} is not in {self.path} (contexts: {known})")
        return self.contexts[name]


def context_environment(values: dict[str, str], where: str) -> tuple[dict[str, str], list[str]]:
    """The ``KEMI_*`` variables a context stands for (secret files read now), and a
    warning per secret file that cannot be read (the command goes on without it)."""
    env: dict[str, str] = {}
    warnings: list[str] = []
    for key, value in values.items():
        if key in SECRET_FILE_KEYS:
            path = Path(value).expanduser()
            try:
                env[SECRET_FILE_KEYS[key]] = read_secret(path)
            except OSError as exc:
                warnings.append(f"{where}: {key} {path}: {exc.strerror}; going on without it")
        elif key in CLI_KEYS:
            env[CLI_KEYS[key]] = value
        else:
            env[f"KEMI_{key.upper()}"] = str(Path(value).expanduser()) if "file" in key else value
    return env, warnings


#: variables the active context set, so another context given later replaces them
_applied: dict[str, str] = {}


def activate_context(name: str | None) -> str | None:
    """Put context ``name`` (or the file's current one) into the environment under
    what is already there; the name of the context in force, or None."""
    config = ConfigFile.load()
    chosen = name or config.current
    for key, value in _applied.items():
        if os.environ.get(key) == value:
            del os.environ[key]
    _applied.clear()
    if not chosen:
        return None
    values = config.context(chosen)
    env, warnings = context_environment(values, f"{config.path}: context {chosen}")
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)
    for key, value in env.items():
        if key not in os.environ:
            os.environ[key] = value
            _applied[key] = value
    return chosen
