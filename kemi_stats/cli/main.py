"""The ``kemi-stats`` command: one click group; each command family lives in its own module."""

from __future__ import annotations

import importlib
import sys

import click

from kemi_stats.cli.config_file import activate_context
from kemi_stats.cli.context import CliContext, fail, read_secret_file
from kemi_stats.errors import KemiError

__all__ = ["cli", "main"]

#: modules that each define ``register(cli: click.Group) -> None``
COMMAND_MODULES = (
    "kemi_stats.cli.run_cmd",
    "kemi_stats.cli.stack_cmd",
    "kemi_stats.cli.topics_cmd",
    "kemi_stats.cli.registry_cmd",
    "kemi_stats.cli.target_probe_cmd",
    "kemi_stats.cli.declarative_cmd",
    "kemi_stats.cli.profile_import_cmd",
    "kemi_stats.cli.profile_generate_cmd",
    "kemi_stats.cli.query_cmd",
    "kemi_stats.cli.agent_cmd",
    "kemi_stats.cli.alerts_cmd",
    "kemi_stats.cli.silence_cmd",
    "kemi_stats.cli.rule_test_cmd",
    "kemi_stats.cli.etcd_cmd",
    "kemi_stats.cli.secrets_cmd",
    "kemi_stats.cli.services_cmd",
    "kemi_stats.cli.config_cmd",
)


#: commands no context applies to: the local stack's (its own servers; a production
#: context's users and TLS files must not reach it) and the config file's own (a broken
#: context must not stop anyone from switching away from it)
WITHOUT_CONTEXT = frozenset({"up", "down", "status", "config"})


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--kafka", "kafka_bootstrap", envvar="KEMI_KAFKA_BOOTSTRAP", help="Kafka bootstrap host:port."
)
@click.option(
    "--etcd",
    "etcd_endpoint",
    envvar="KEMI_ETCD_ENDPOINT",
    help="etcd host:port, or several separated by commas.",
)
@click.option("--prefix", "etcd_prefix", envvar="KEMI_ETCD_PREFIX", help="Registry prefix in etcd.")
@click.option(
    "--etcd-ca-file", envvar="KEMI_ETCD_CA_FILE", help="CA (PEM) of etcd's TLS certificate."
)
@click.option("--etcd-cert-file", envvar="KEMI_ETCD_CERT_FILE", help="Client certificate (PEM).")
@click.option("--etcd-key-file", envvar="KEMI_ETCD_KEY_FILE", help="Client certificate's key.")
@click.option("--etcd-user", envvar="KEMI_ETCD_USER", help="etcd user (auth enabled).")
@click.option(
    "--etcd-password-file",
    type=click.Path(dir_okay=False),
    help="File holding the etcd user's password (or KEMI_ETCD_PASSWORD; never a flag value).",
)
@click.option(
    "--secrets-keyring-file",
    envvar="KEMI_SECRETS_KEYRING_FILE",
    help="Keyring that encrypts registry secrets (docs/security.md).",
)
@click.option(
    "--data-dir", type=click.Path(), envvar="KEMI_DATA_DIR", help="Local stack data directory."
)
@click.option(
    "--context",
    "context_name",
    envvar="KEMI_CONTEXT",
    help="Context of the config file to use (default: its current-context).",
)
@click.version_option(package_name="kemi-stats")
@click.pass_context
def cli(
    ctx: click.Context,
    kafka_bootstrap: str | None,
    etcd_endpoint: str | None,
    etcd_prefix: str | None,
    etcd_ca_file: str | None,
    etcd_cert_file: str | None,
    etcd_key_file: str | None,
    etcd_user: str | None,
    etcd_password_file: str | None,
    secrets_keyring_file: str | None,
    data_dir: str | None,
    context_name: str | None,
) -> None:
    """kemi-stats: collect, compute, store and alert on metrics of thousands of targets.

    Settings come from flags, then KEMI_* variables, then the config file's context
    (kemi-stats config --help), then defaults."""
    if ctx.invoked_subcommand not in WITHOUT_CONTEXT:
        activate_context(context_name)
    ctx.obj = CliContext(
        kafka_bootstrap=kafka_bootstrap,
        etcd_endpoint=etcd_endpoint,
        etcd_prefix=etcd_prefix,
        data_dir=data_dir,
        overrides={
            "etcd_ca_file": etcd_ca_file,
            "etcd_cert_file": etcd_cert_file,
            "etcd_key_file": etcd_key_file,
            "etcd_user": etcd_user,
            "etcd_password": read_secret_file(etcd_password_file, "--etcd-password-file"),
            "secrets_keyring_file": secrets_keyring_file,
        },
    )


for _name in COMMAND_MODULES:
    importlib.import_module(_name).register(cli)


def _context_option(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value is not None:
        activate_context(value)


def _add_context_option(command: click.Command) -> None:
    """``--context`` after any command as before it (``target list --context prod``)."""
    if command.name in WITHOUT_CONTEXT:
        return
    if command is not cli and not any("--context" in p.opts for p in command.params):
        command.params.append(
            click.Option(
                ["--context", "cli_context"],
                expose_value=False,
                is_eager=True,  # before other options read their KEMI_* variables
                callback=_context_option,
                help="Context of the config file to use.",
            )
        )
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            _add_context_option(sub)


_add_context_option(cli)


def main() -> None:
    """Entry point: run the CLI, turning every KemiError into one line and exit code 1."""
    try:
        cli.main(prog_name="kemi-stats", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.UsageError as exc:
        # one line, naming the flag and the value; --help shows the usage
        hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx else ""
        click.echo(f"error: {exc.format_message()}{hint}", err=True)
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        click.echo(f"error: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    except KemiError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        sys.exit(130)
