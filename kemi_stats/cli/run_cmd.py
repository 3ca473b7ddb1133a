"""``kemi-stats run SERVICE``: run one service in the foreground, as production does."""

from __future__ import annotations

import os
import sys

import click

from kemi_stats.catalogue import SERVICES, available_services
from kemi_stats.cli.context import CliContext, fail, pass_ctx

__all__ = ["register"]


@click.command(context_settings={"ignore_unknown_options": True})
@click.argument("service", type=click.Choice(sorted(SERVICES)))
@click.option("--http-port", type=click.IntRange(0, 65535), help="Port for /healthz and /metrics.")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@pass_ctx
def run(obj: CliContext, service: str, http_port: int | None, args: tuple[str, ...]) -> None:
    """Run SERVICE in the foreground (Ctrl-C stops it)."""
    spec = SERVICES[service]
    if spec not in available_services():
        fail(f"service {service}: module {spec.module} is not installed")
    env = dict(os.environ)
    s = obj.settings
    env.update(
        KEMI_KAFKA_BOOTSTRAP=s.kafka_bootstrap,
        KEMI_ETCD_ENDPOINT=s.etcd_endpoint,
        KEMI_ETCD_PREFIX=s.etcd_prefix,
        KEMI_ETCD_CA_FILE=s.etcd_ca_file,
        KEMI_ETCD_CERT_FILE=s.etcd_cert_file,
        KEMI_ETCD_KEY_FILE=s.etcd_key_file,
        KEMI_ETCD_USER=s.etcd_user,
        KEMI_ETCD_PASSWORD=s.etcd_password.get_secret_value(),
        KEMI_SECRETS_KEYRING_FILE=s.secrets_keyring_file,
        KEMI_DATA_DIR=str(s.data_dir),
    )
    if http_port is not None:
        env["KEMI_HTTP_PORT"] = str(http_port)
    os.execvpe(sys.executable, [sys.executable, "-m", spec.module, *args], env)


def register(cli: click.Group) -> None:
    cli.add_command(run)
