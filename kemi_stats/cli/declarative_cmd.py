"""``kemi-stats apply -f DIR``, ``kemi-stats export DIR`` and ``kemi-stats target import FILE``."""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Any

import click
import yaml
from rich.progress import Progress

from kemi_stats.cli.context import CliContext, fail, pass_ctx
from kemi_stats.cli.registry_cmd import check_refs, check_secret
from kemi_stats.cli.selection import confirm
from kemi_stats.errors import KemiError, ValidationError
from kemi_stats.registry.declarative import export_registry, plan_apply, read_desired
from kemi_stats.registry.models import KINDS
from kemi_stats.registry.store import Entry, parse_doc

__all__ = ["register"]


def _current(obj: CliContext) -> dict[str, dict[str, Entry]]:
    return {k: {e.name: e for e in obj.registry.list(k)} for k in KINDS}


@click.command()
@click.option(
    "--file", "-f", "directory", required=True, type=click.Path(), help="Directory of YAML files."
)
@click.option("--dry-run", is_flag=True, help="Only validate and show the difference.")
@click.option(
    "--exit-code",
    is_flag=True,
    help="With --dry-run: exit 1 when there is a difference, 0 when none, 2 on an error, as 'diff' does.",
)
@click.option("--prune", is_flag=True, help="Remove entries the files no longer name.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask before removing (--prune).")
@pass_ctx
def apply(
    obj: CliContext, directory: str, dry_run: bool, exit_code: bool, prune: bool, yes: bool
) -> None:
    """Make the registry match the YAML files in a directory (shows the difference).

    With --prune, entries the files do not name are removed: on a terminal it asks
    first (--yes does not)."""
    if exit_code and not dry_run:
        raise click.UsageError("--exit-code goes with --dry-run")
    try:
        desired = read_desired(Path(directory))
        current = _current(obj)
        plan = plan_apply(desired, current, prune=prune)
        known = {
            k: (set(current[k]) | set(desired[k])) - {n for kk, n in plan.remove if kk == k}
            for k in KINDS
        }
        for kind, name, doc in [*plan.add, *((k, n, d) for k, n, d, _ in plan.change)]:
            check_refs(obj.registry, kind, name, doc, known)
            # what apply writes follows add/update: a weak stored secret is replaced if changed
            check_secret(kind, name, doc, "field 'secret'")
    except KemiError as exc:
        # as diff: 1 is a difference, 2 is trouble (bad files, etcd away)
        fail(str(exc), 2 if exit_code else 1)
    if plan.empty:
        click.echo("no difference")
        return
    for line in plan.lines():
        click.echo(line)
    if dry_run:
        click.echo(
            f"dry run: {len(plan.add)} to add, {len(plan.change)} to change, {len(plan.remove)} to remove"
        )
        if exit_code:
            sys.exit(1)
        return
    if plan.remove:
        confirm(f"remove {len(plan.remove)} entries the files do not name?", yes)
    puts = [(k, n, d) for k, n, d in plan.add] + [(k, n, d) for k, n, d, _ in plan.change]
    obj.registry.write_many(puts, plan.remove)
    click.echo(
        f"applied: {len(plan.add)} added, {len(plan.change)} changed, {len(plan.remove)} removed"
    )


@click.command()
@click.argument("directory", type=click.Path())
@pass_ctx
def export(obj: CliContext, directory: str) -> None:
    """Write the whole registry as YAML files (secrets masked) into DIRECTORY."""
    counts = export_registry(obj.registry, Path(directory))
    click.echo(", ".join(f"{n} {KINDS[k].plural}" for k, n in counts.items()) + f" -> {directory}")


_LIST_COLUMNS = {"profiles"}
_MAP_COLUMNS = {"labels"}


def _row_to_doc(row: dict[str, Any]) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    for key, value in row.items():
        if key is None or key == "name" or value in (None, ""):
            continue
        key = key.strip()
        if key in _LIST_COLUMNS:
            doc[key] = [p.strip() for p in str(value).replace("|", ";").split(";") if p.strip()]
        elif key in _MAP_COLUMNS:
            pairs = [p for p in str(value).replace("|", ";").split(";") if p.strip()]
            labels: dict[str, str] = {}
            for pair in pairs:
                k, _, v = pair.partition("=")
                labels[k.strip()] = v
            doc[key] = labels
        elif key.startswith("label."):
            doc.setdefault("labels", {})[key[6:]] = value
        else:
            doc[key] = value
    return doc


def _read_rows(path: Path) -> list[tuple[str, str, dict[str, Any]]]:
    """(where, name, raw document) per row of a CSV or YAML file."""
    text = path.read_text()
    rows: list[tuple[str, str, dict[str, Any]]] = []
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(text.splitlines())
        if not reader.fieldnames or "name" not in reader.fieldnames:
            raise ValidationError(f"{path.name}: the header must have a 'name' column")
        width = len(reader.fieldnames)
        for i, row in enumerate(reader, start=2):
            if None in row:  # csv.DictReader files values past the header under None
                raise ValidationError(
                    f"{path.name} line {i}: {width + len(row[None])} fields, the header has {width}"
                )
            rows.append(
                (f"{path.name} line {i}", (row.get("name") or "").strip(), _row_to_doc(row))
            )
        return rows
    data = yaml.safe_load(text)
    if isinstance(data, dict) and "targets" in data:
        data = data["targets"]
    if isinstance(data, dict):
        return [(f"{path.name} target {n}", str(n), dict(d or {})) for n, d in data.items()]
    if isinstance(data, list):
        for i, item in enumerate(data, start=1):
            if not isinstance(item, dict):
                raise ValidationError(f"{path.name} item {i}: expected a mapping")
            item = dict(item)
            rows.append((f"{path.name} item {i}", str(item.pop("name", "")), item))
        return rows
    raise ValidationError(
        f"{path.name}: expected CSV, a YAML list of targets or a mapping name -> target"
    )


@click.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--replace", is_flag=True, help="Replace targets that exist (default: fail if any exists)."
)
@pass_ctx
def target_import(obj: CliContext, file: str, replace: bool) -> None:
    """Import targets from a CSV or YAML FILE: all rows are validated before any is written.

    \b
    CSV: a header row naming the columns, one target per row. 'name' is required;
    every other column is a target field (host, port, credential, interval, deadline,
    resource_id, ...). 'profiles' lists names separated by ';' or '|'; 'labels' is
    k=v pairs separated by ';'; a column 'label.site' sets the label 'site'.
      name,host,credential,profiles,interval,label.site
      core-sw-3,10.0.0.3,lab-v2,if-mib;system,60s,pangyo
    \b
    YAML: a list of targets each with a 'name', or a mapping name -> target (optionally
    under a top-level 'targets:' key), with the fields of 'kemi-stats target show -o yaml'.
    """
    rows = _read_rows(Path(file))
    reg = obj.registry
    known = {k: {e.name for e in reg.list(k)} for k in ("credential", "profile")}
    docs: list[tuple[str, str, Any]] = []
    seen: dict[str, str] = {}
    for where, name, raw in rows:
        if not name:
            fail(f"{where}: field 'name' is empty")
        if name in seen:
            fail(f"{where}: target {name} appears twice (first at {seen[name]})")
        seen[name] = where
        try:
            doc = parse_doc("target", name, raw)
            check_refs(reg, "target", name, doc, known)
        except ValidationError as exc:
            fail(f"{where}: {exc}")
        docs.append(("target", name, doc))
    if not replace:
        existing = {e.name for e in reg.list("target")}
        taken = [n for _, n, _ in docs if n in existing]
        if taken:
            fail(
                f"{seen[taken[0]]}: target {taken[0]} already exists ({len(taken)} in all; use --replace)"
            )
    with Progress(transient=True) as progress:
        task = progress.add_task(f"importing {len(docs)} targets", total=len(docs))
        reg.write_many(docs, create_only=not replace, progress=lambda n: progress.advance(task, n))
    click.echo(f"imported {len(docs)} targets from {file}")


def register(cli: click.Group) -> None:
    cli.add_command(apply)
    cli.add_command(export)
    target = cli.commands["target"]
    assert isinstance(target, click.Group)
    target.add_command(target_import)
