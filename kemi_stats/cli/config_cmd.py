"""``kemi-stats config``: the config file's contexts (kubectl's words for kubectl's idea)."""

from __future__ import annotations

import click

from kemi_stats.cli.config_file import ConfigFile, check_key, check_value
from kemi_stats.cli.context import fail
from kemi_stats.cli.kind_options import parse_pairs
from kemi_stats.cli.output import output_option, print_document, print_records

__all__ = ["register"]


@click.group("config")
def config() -> None:
    """Contexts: named sets of servers (etcd, Kafka, TSDB, aggregator) to switch between.

    \b
    The file is $KEMI_CONFIG, else ~/.config/kemi-stats/config.yaml. Flags and KEMI_*
    variables override the context in force; --context NAME (or KEMI_CONTEXT) picks
    one for a single command.
    """


@config.command("get-contexts")
@output_option()
def get_contexts(output: str) -> None:
    """List the contexts; the current one is marked with *."""
    cfg = ConfigFile.load()
    rows = [
        {
            "current": "*" if name == cfg.current else "",
            "name": name,
            "etcd_endpoint": values.get("etcd_endpoint"),
            "etcd_prefix": values.get("etcd_prefix"),
            "kafka_bootstrap": values.get("kafka_bootstrap"),
            "tsdb_url": values.get("tsdb_url"),
        }
        for name, values in sorted(cfg.contexts.items())
    ]
    if output in ("json", "yaml"):
        print_document({"current-context": cfg.current, "contexts": cfg.contexts}, output)
        return
    print_records(rows, list(rows[0]) if rows else ["current", "name"], output)


@config.command("current-context")
def current_context() -> None:
    """Print the current context's name."""
    cfg = ConfigFile.load()
    if not cfg.current:
        fail(f"no current context in {cfg.path} (set one with 'kemi-stats config use-context')")
    click.echo(cfg.current)


@config.command("use-context")
@click.argument("name")
def use_context(name: str) -> None:
    """Make NAME the current context of every later command."""
    cfg = ConfigFile.load()
    cfg.context(name)
    cfg.current = name
    cfg.save()
    click.echo(f"switched to context {name}")


@config.command("set-context")
@click.argument("name")
@click.argument("settings", nargs=-1, metavar="KEY=VALUE...")
@click.option("--unset", "unset", multiple=True, metavar="KEY", help="Remove a key.")
def set_context(name: str, settings: tuple[str, ...], unset: tuple[str, ...]) -> None:
    """Create context NAME or change its settings (etcd_endpoint=..., etcd_prefix=...)."""
    cfg = ConfigFile.load()
    values = dict(cfg.contexts.get(name, {}))
    for key, value in parse_pairs(settings, "KEY=VALUE").items():
        checked = check_key(key, f"context {name}")
        values[checked] = check_value(checked, value, f"context {name}")
    for key in unset:
        values.pop(check_key(key, f"context {name}"), None)
    created = name not in cfg.contexts
    cfg.contexts[name] = values
    if cfg.current is None:
        cfg.current = name
    cfg.save()
    click.echo(f"context {name} {'created' if created else 'updated'} in {cfg.path}")


@config.command("delete-context")
@click.argument("name")
def delete_context(name: str) -> None:
    """Remove context NAME."""
    cfg = ConfigFile.load()
    cfg.context(name)
    del cfg.contexts[name]
    if cfg.current == name:
        cfg.current = None
    cfg.save()
    click.echo(f"context {name} deleted")


def register(cli: click.Group) -> None:
    cli.add_command(config)
