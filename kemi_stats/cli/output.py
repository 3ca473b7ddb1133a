"""Printing registry entries as a table, JSON or YAML, with secrets masked and receiver
URLs redacted (a webhook URL's path or userinfo is often a credential of its own)."""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

import click
import orjson
import yaml

from kemi_stats.redact import redact_url
from kemi_stats.registry.models import Receiver, Token
from kemi_stats.registry.store import MASK, Entry, masked

F = TypeVar("F", bound=Callable[..., Any])

__all__ = [
    "OUTPUT_OPTION",
    "SHOW_OUTPUT_OPTION",
    "output_option",
    "print_csv",
    "print_document",
    "print_entries",
    "print_records",
    "print_table",
    "shown",
]

#: every command that prints records takes ``-o`` with these formats (csv where tabular)
FORMATS = ("table", "json", "yaml", "csv")


def output_option(default: str | None = "table", *, csv: bool = True) -> Callable[[F], F]:
    """The ``-o/--output`` option: one spelling and one set of formats on every command."""
    formats = FORMATS if csv else FORMATS[:3]
    shown_default = default or "table for list, yaml for show"
    return click.option(
        "--output",
        "-o",
        type=click.Choice(formats),
        default=default,
        help=f"Output format: {', '.join(formats)} (default: {shown_default}).",
    )


OUTPUT_OPTION = output_option(None)


def legacy_json_option(fn: F) -> F:
    """``--json``, kept (hidden) from before ``-o``: the same as ``-o json``."""
    return click.option("--json", "as_json", is_flag=True, hidden=True)(fn)


#: ``show`` prints one document: no CSV
SHOW_OUTPUT_OPTION = output_option("yaml", csv=False)


def _plain(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def print_document(doc: Any, output: str) -> None:
    """Print one document (a mapping or a list) as indented JSON or as YAML."""
    if output == "yaml":
        click.echo(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True).rstrip())
    else:
        click.echo(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode())


def print_records(rows: Sequence[dict[str, Any]], columns: Sequence[str], output: str) -> None:
    """Print records (dicts) as a table or CSV of ``columns``, or whole as JSON/YAML."""
    if output in ("json", "yaml"):
        print_document(list(rows), output)
        return
    cells = [[_plain(r.get(c)) for c in columns] for r in rows]
    if output == "csv":
        print_csv(columns, cells)
        return
    print_table([c.upper() for c in columns], cells)


def print_csv(header: Sequence[str] | None, rows: Sequence[Sequence[str]]) -> None:
    """CSV with a header row (None: rows that follow earlier ones); an absent value (``-``
    in a table) is an empty field."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if header is not None:
        writer.writerow(header)
    writer.writerows(["" if cell == "-" else cell for cell in row] for row in rows)
    click.echo(out.getvalue(), nl=False)


def print_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Columns aligned by two spaces, the header first; written as one block (10,000
    rows in a few milliseconds, where a rich Table takes seconds)."""
    every = [header, *rows]
    click.echo(_aligned(every, _widths(every)))


def _widths(rows: Sequence[Sequence[str]]) -> list[int]:
    widths = [0] * len(rows[0])
    for row in rows:
        for i, cell in enumerate(row):
            if len(cell) > widths[i]:
                widths[i] = len(cell)
    return widths


def _aligned(rows: Sequence[Sequence[str]], widths: Sequence[int]) -> str:
    last = len(widths) - 1
    lines = (
        "  ".join(cell if i == last else cell.ljust(widths[i]) for i, cell in enumerate(row))
        for row in rows
    )
    return "\n".join(line.rstrip() for line in lines)


#: the columns `list` shows per kind (dotted paths into the stored document)
COLUMNS: dict[str, Sequence[str]] = {
    "target": (
        "host",
        "port",
        "credential",
        "profiles",
        "scrape_url",
        "interval",
        "labels",
        "enabled",
    ),
    "credential": ("version", "community", "user", "auth", "priv"),
    "profile": ("description", "scalars", "tables"),
    "derived": ("expr", "window", "group_by", "resource_prefix"),
    "rule": ("metric", "match", "condition", "for", "clear", "no_data", "severity", "receivers"),
    "receiver": ("url", "alertmanager_urls", "format", "timeout", "max_retries", "secret"),
    "token": (
        "scope",
        "resource_prefix",
        "resource_template",
        "rate_limit",
        "description",
        "created_at",
    ),
    "counters": ("metrics", "kind", "enabled", "description"),
    "silence": ("match", "starts_at", "ends_at", "reason", "created_by"),
}


def _cell(kind: str, column: str, value: Any) -> str:
    if value is None:
        return "-"
    if type(value) is str:  # most cells; none of the special cases below is a string
        return value
    if kind == "profile" and column in ("scalars", "tables"):
        return str(len(value))
    if kind == "counters" and column == "metrics" and len(value) > 3:
        return ",".join(value[:3]) + f",... ({len(value)} globs)"
    if column == "condition" and isinstance(value, dict):
        return f"{value['op']} {value['threshold']:g}"
    if column == "clear" and isinstance(value, dict):
        return f"{value['op']} {value['threshold']:g}"
    if column in ("starts_at", "ends_at", "created_at") and isinstance(value, int | float):
        import datetime as dt

        return dt.datetime.fromtimestamp(value, dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)


def shown(kind: str, entry: Entry) -> dict[str, Any]:
    """What list and show print of an entry: secrets masked, receiver URLs redacted to
    scheme, host and port (``update --file`` puts the stored URLs back)."""
    data = masked(kind, entry.doc)
    if isinstance(entry.doc, Receiver):
        if data.get("url"):
            data["url"] = redact_url(data["url"])
        if data.get("alertmanager_urls"):
            data["alertmanager_urls"] = [redact_url(u) for u in data["alertmanager_urls"]]
    return data


def _secret_cell(doc: Receiver, data: dict[str, Any]) -> str | None:
    """The SECRET column of ``receiver list``: marks a secret a new receiver could not have
    (it still signs: it is replaced at the receiver's next update)."""
    if not doc.weak_secret:
        return data.get("secret")
    return f"{MASK if doc.secret else 'none'} (weak secret)"


def _prefix_cell(doc: Token) -> str | None:
    """The RESOURCE_PREFIX column of ``token list``: a token that may write anywhere says so."""
    if doc.any_resource:
        return "!! ANY RESOURCE"
    if doc.legacy_any_resource:
        return "!! ANY RESOURCE (no prefix, from before scopes: update it)"
    return doc.resource_prefix or None


def any_resource_warning(entries: list[Entry]) -> str | None:
    """The warning ``token list`` prints under tokens that may write every resource."""
    legacy = [e.name for e in entries if isinstance(e.doc, Token) and e.doc.legacy_any_resource]
    if not legacy:
        return None
    return (
        f"warning: {len(legacy)} push token(s) without a resource prefix may write every "
        f"resource, polled devices' too: {', '.join(legacy)}; give each --resource-prefix "
        "(or --any-resource) with kemi-stats token update"
    )


def print_entries(kind: str, entries: Iterable[Entry], output: str) -> None:
    """Print entries of one kind in the chosen format, a block at a time as they come (a
    list of 100,000 targets starts printing after the first page is read).

    JSON and YAML are the one mapping of name to document that a whole print gives. A
    table's columns are as wide as the first block needs (:data:`BLOCK` entries); a
    longer cell further down pushes the rest of its row right."""
    blocks = _blocks(entries, BLOCK)
    if output == "json":
        # unicode as is: a redacted URL ends in "…", labels may be in any script
        opened = False
        for block in blocks:
            items = [
                orjson.dumps({e.name: shown(kind, e)}, option=orjson.OPT_INDENT_2)[2:-2]
                for e in block
            ]
            text = (b",\n" if opened else b"{\n") + b",\n".join(items)
            click.echo(text.decode(), nl=False)
            opened = True
        click.echo("\n}" if opened else "{}")
        return
    if output == "yaml":
        empty = True
        for block in blocks:
            doc = {e.name: shown(kind, e) for e in block}
            click.echo(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True), nl=False)
            empty = False
        if empty:
            click.echo("{}")
        return
    columns = COLUMNS[kind]
    header = ["NAME", *(c.upper() for c in columns)]
    if output == "csv":
        names: list[str] | None = [h.lower() for h in header]
        for block in blocks:
            print_csv(names, [_row(kind, columns, e) for e in block])
            names = None
        if names is not None:
            print_csv(names, [])
        return
    widths: list[int] | None = None
    for block in blocks:
        rows = [_row(kind, columns, e) for e in block]
        if widths is None:
            rows.insert(0, header)
            widths = _widths(rows)
        click.echo(_aligned(rows, widths))
    if widths is None:
        click.echo(_aligned([header], _widths([header])))


#: entries printed at a time by :func:`print_entries`
BLOCK = 1000


def _blocks(items: Iterable[Entry], size: int) -> Iterator[list[Entry]]:
    it = iter(items)
    while block := list(itertools.islice(it, size)):
        yield block


def _row(kind: str, columns: Sequence[str], e: Entry) -> list[str]:
    data = shown(kind, e)
    if kind == "target" and data.get("scrape_url"):
        data["port"] = None  # the port is the URL's; 161 would mislead
    if isinstance(e.doc, Receiver):
        data["secret"] = _secret_cell(e.doc, data)
    if isinstance(e.doc, Token):
        data["resource_prefix"] = _prefix_cell(e.doc)
    return [e.name, *(_cell(kind, c, data.get(c)) for c in columns)]
