"""What every CLI command shares: settings from flags/env, the registry, one-line errors."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

import click

from kemi_stats.keyring import keyring_from_settings
from kemi_stats.private_file import read_secret
from kemi_stats.registry.etcd import EtcdConfig
from kemi_stats.registry.store import Registry
from kemi_stats.settings import Settings, load_settings

__all__ = ["CliContext", "fail", "read_secret_file"]


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``error: message`` on one line to stderr and exit non-zero."""
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


@dataclass
class CliContext:
    """Flags given to the top-level command; settings and clients built on first use."""

    kafka_bootstrap: str | None = None
    etcd_endpoint: str | None = None
    etcd_prefix: str | None = None
    data_dir: str | None = None
    #: further settings from flags (None: not given)
    overrides: dict[str, object] = field(default_factory=dict)
    _settings: Settings | None = field(default=None, repr=False)
    _registry: Registry | None = field(default=None, repr=False)

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(
                kafka_bootstrap=self.kafka_bootstrap,
                etcd_endpoint=self.etcd_endpoint,
                etcd_prefix=self.etcd_prefix,
                data_dir=self.data_dir,
                **self.overrides,
            )
        return self._settings

    @property
    def registry(self) -> Registry:
        if self._registry is None:
            self._registry = Registry(
                EtcdConfig.from_settings(self.settings),
                self.settings.etcd_prefix,
                keyring=lambda: keyring_from_settings(self.settings),
            )
        return self._registry


def read_secret_file(path: str | None, flag: str) -> str | None:
    """A secret from a file (its first line), so it never sits in argv or shell history."""
    if path is None:
        return None
    try:
        return read_secret(Path(path))
    except OSError as exc:
        raise click.BadParameter(f"cannot read {path} ({exc.strerror})", param_hint=flag) from None


pass_ctx = click.make_pass_decorator(CliContext)
