"""``kemi-stats profile generate NAME --mib M --table T``: a profile from local MIB files."""

from __future__ import annotations

import json
from pathlib import Path

import click
import yaml

from kemi_stats.cli.context import CliContext, pass_ctx
from kemi_stats.registry.store import parse_doc

__all__ = ["register"]


@click.command("generate")
@click.argument("name")
@click.option(
    "--mib",
    "mibs",
    multiple=True,
    required=True,
    metavar="MODULE",
    help="MIB module to read, e.g. UCD-SNMP-MIB (repeatable).",
)
@click.option(
    "--table",
    "tables",
    multiple=True,
    metavar="TABLE",
    help="Conceptual table to walk, e.g. laTable (repeatable).",
)
@click.option(
    "--column",
    "columns",
    multiple=True,
    metavar="COLUMN",
    help="Column to poll (repeatable; default: every numeric column of the table).",
)
@click.option(
    "--lookup",
    "lookups",
    multiple=True,
    metavar="COLUMN",
    help="Column whose value labels the rows, e.g. laNames (repeatable).",
)
@click.option(
    "--scalar",
    "scalars",
    multiple=True,
    metavar="OBJECT",
    help="Scalar object to GET, e.g. memTotalReal (repeatable).",
)
@click.option(
    "--mib-dir",
    "mib_dirs",
    multiple=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Directory of MIB files, searched before /usr/share/snmp/mibs (repeatable).",
)
@click.option("--description", default="", help="The profile's description.")
@click.option(
    "-o",
    "--output",
    type=click.Choice(["yaml", "json"]),
    default="yaml",
    show_default=True,
    help="Document format.",
)
@click.option(
    "--output-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the document here instead of stdout.",
)
@pass_ctx
def profile_generate(
    obj: CliContext,
    name: str,
    mibs: tuple[str, ...],
    tables: tuple[str, ...],
    columns: tuple[str, ...],
    lookups: tuple[str, ...],
    scalars: tuple[str, ...],
    mib_dirs: tuple[Path, ...],
    description: str,
    output: str,
    output_file: Path | None,
) -> None:
    """Print a profile for NAME from MIB files (offline); 'profile add NAME -f' takes it."""
    # pysmi is loaded only by this command, not at every CLI start
    from kemi_stats.mibs import MibLibrary, ProfileRequest, build_profile

    library = MibLibrary.local(mib_dirs, obj.settings.data_dir)
    modules = {m: library.module(m) for m in mibs}
    request = ProfileRequest(tables, columns, lookups, scalars, description)
    fields, notes = build_profile(modules, request, library.load, library.searched())
    parse_doc("profile", name, fields)  # what 'profile add -f' will check, checked now
    doc = {name: fields}
    text = (
        json.dumps(doc, indent=2) + "\n"
        if output == "json"
        else yaml.safe_dump(doc, sort_keys=False, width=100)
    )
    for note in notes:
        click.echo(f"note: {note}", err=True)
    if output_file is None:
        click.echo(text, nl=False)
        return
    output_file.write_text(text)
    click.echo(f"profile {name} written to {output_file}", err=True)


def register(cli: click.Group) -> None:
    profile = cli.commands["profile"]
    assert isinstance(profile, click.Group)
    profile.add_command(profile_generate)
