"""``kemi-stats etcd setup-auth``: the users and roles of docs/security.md, then auth on."""

from __future__ import annotations

from pathlib import Path

import click

from kemi_stats.cli.context import CliContext, pass_ctx
from kemi_stats.registry.etcd import etcd_errors
from kemi_stats.registry.etcd_auth import ROLES, setup_auth

__all__ = ["register"]


@click.group()
def etcd() -> None:
    """etcd administration: users and roles for kemi-stats."""


@etcd.command("setup-auth")
@click.option(
    "--passwords-dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Where each user's password is kept (USER.password, mode 0600; made when missing).",
)
@pass_ctx
def setup_auth_cmd(obj: CliContext, passwords_dir: Path) -> None:
    """Create the root user, one role and user per writer, and enable etcd's auth.

    Roles:"""
    registry = obj.registry
    with etcd_errors(registry.endpoint, "set up auth"):
        lines = setup_auth(registry.client, registry.prefix, passwords_dir)
    for line in lines:
        click.echo(line)


setup_auth_cmd.help = (setup_auth_cmd.help or "") + ", ".join(f"{r.name} ({r.who})" for r in ROLES)


def register(cli: click.Group) -> None:
    cli.add_command(etcd)
