"""``kemi-stats profile import --builtin | FILE``: seed metric definitions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import yaml

from kemi_stats.cli.context import CliContext, fail, pass_ctx
from kemi_stats.registry.store import parse_doc

__all__ = ["register"]


@click.command("import")
@click.argument("file", required=False, type=click.Path(exists=True, dir_okay=False))
@click.option("--builtin", is_flag=True, help="Import the built-in profiles (system, if-mib, ...).")
@pass_ctx
def profile_import(obj: CliContext, file: str | None, builtin: bool) -> None:
    """Create or replace profiles from FILE ({name: profile}) or the built-in set."""
    if bool(file) == builtin:
        fail("give either FILE or --builtin")
    docs: dict[str, Any]
    if builtin:
        from kemi_stats.registry.builtin import load_builtin_profiles

        docs = dict(load_builtin_profiles())
    else:
        assert file is not None
        data = yaml.safe_load(Path(file).read_text())
        if isinstance(data, dict) and "profiles" in data:
            data = data["profiles"]
        if not isinstance(data, dict):
            fail(f"{file}: expected a mapping of profile name -> profile")
        docs = {str(n): parse_doc("profile", str(n), d) for n, d in data.items()}
    obj.registry.write_many([("profile", name, doc) for name, doc in docs.items()])
    click.echo(f"imported {len(docs)} profiles: {', '.join(sorted(docs))}")


def register(cli: click.Group) -> None:
    profile = cli.commands["profile"]
    assert isinstance(profile, click.Group)
    profile.add_command(profile_import)
