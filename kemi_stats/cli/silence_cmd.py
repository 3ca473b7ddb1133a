"""Silences the way amtool users expect them: matchers as arguments, expire, query, active list.

    kemi-stats silence add alertname=cpu-high 'resource=~host:web-.*' --duration 2h --comment swap
    kemi-stats silence query 'resource=~host:web-.*'       # the firing alerts it would silence
    kemi-stats silence list [--all]                         # active and pending, unless --all
    kemi-stats silence expire ID [ID...]                    # ends them now

``--comment`` and ``--author`` are amtool's names of ``--reason`` and ``--created-by``,
which keep working; the author defaults to the user running the command.
"""

from __future__ import annotations

import getpass
import time
from typing import Any

import click

from kemi_stats.cli.alerts_cmd import URL_OPTION, evaluator_alerts
from kemi_stats.cli.context import CliContext, fail, pass_ctx
from kemi_stats.cli.output import (
    OUTPUT_OPTION,
    legacy_json_option,
    output_option,
    print_entries,
    print_records,
)
from kemi_stats.durations import parse_duration
from kemi_stats.errors import NotFoundError
from kemi_stats.matching import Selector
from kemi_stats.registry.models import Silence, parse_matcher
from kemi_stats.registry.silencing import expired_now, new_silence, new_silence_id

__all__ = ["register"]


def _matchers(positional: tuple[str, ...], options: tuple[str, ...]) -> list[str]:
    """Every matcher given; a one-line error names the first invalid one."""
    out = []
    for text in (*positional, *options):
        try:
            parse_matcher(text)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="MATCHERS") from None
        out.append(text)
    if not out:
        raise click.UsageError("give at least one matcher, e.g. alertname=cpu-high")
    return out


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return ""


MATCH_OPTION = click.option(
    "--match", "match", multiple=True, metavar="MATCHER", help="Label matcher (repeatable)."
)


@click.command("add")
@click.argument("matchers", nargs=-1, metavar="[MATCHERS]...")
@MATCH_OPTION
@click.option("--duration", default="1h", show_default=True, help="How long it lasts, e.g. 2h.")
@click.option("--starts", help="Start this long from now (default: now).")
@click.option(
    "--comment", "--reason", "comment", default="", help="Why (shown with silenced alerts)."
)
@click.option("--author", "--created-by", "author", help="Who set it (default: the user).")
@click.option("--name", help="The silence's id (default: a new random one).")
@pass_ctx
def add(
    obj: CliContext, matchers: tuple[str, ...], match: tuple[str, ...], duration: str,
    starts: str | None, comment: str, author: str | None, name: str | None,
) -> None:  # fmt: skip
    """Silence the alerts whose labels match every MATCHER (label=value, !=, =~ or !~)."""
    try:
        starts_in = parse_duration(starts) if starts else 0.0
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--starts") from None
    try:
        length = parse_duration(duration)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--duration") from None
    try:
        silence = new_silence(
            _matchers(matchers, match), length, starts_in_s=starts_in, comment=comment,
            author=author if author is not None else _user(),
        )  # fmt: skip
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--duration") from None
    sid = name or new_silence_id()
    obj.registry.create("silence", sid, silence)
    click.echo(f"silence {sid} added")


@click.command("list")
@click.option("--all", "show_all", is_flag=True, help="Also expired silences.")
@OUTPUT_OPTION
@pass_ctx
def list_(obj: CliContext, show_all: bool, output: str | None) -> None:
    """List active and pending silences (expired ones too with --all)."""
    now = time.time()
    entries = [
        e for e in obj.registry.list("silence") if show_all or e.doc.ends_at > now
    ]  # fmt: skip
    print_entries("silence", sorted(entries, key=lambda e: e.doc.starts_at), output or "table")


@click.command("expire")
@click.argument("ids", nargs=-1, required=True, metavar="ID...")
@pass_ctx
def expire(obj: CliContext, ids: tuple[str, ...]) -> None:
    """End silences now (they are kept, expired, until the retention removes them)."""
    for sid in ids:
        try:
            doc: Silence = obj.registry.get("silence", sid).doc
        except NotFoundError:
            fail(f"silence {sid} does not exist")
        if doc.ends_at <= time.time():
            click.echo(f"silence {sid} had expired already")
            continue
        obj.registry.update("silence", sid, expired_now(doc))
        click.echo(f"silence {sid} expired")


@click.command("query")
@click.argument("matchers", nargs=-1, metavar="[MATCHERS]...")
@MATCH_OPTION
@URL_OPTION
@output_option()
@legacy_json_option
def query(
    matchers: tuple[str, ...], match: tuple[str, ...], url: str, output: str, as_json: bool
) -> None:
    """The firing alerts a silence with these MATCHERS would silence now."""
    selector = Selector.build([parse_matcher(m) for m in _matchers(matchers, match)])
    firing = [a for a in evaluator_alerts(url) if a["status"] == "firing"]
    hit = [a for a in firing if selector.matches(a["resource"], a["labels"])]
    output = "json" if as_json else output
    if output in ("json", "yaml"):
        print_records(hit, [], output)
        return
    columns = ["fingerprint", "rule", "resource", "labels"]
    print_records(
        [{**a, "labels": dict(sorted(a["labels"].items()))} for a in hit], columns, output
    )
    if output == "table":
        click.echo(f"{len(hit)} of {len(firing)} firing alert(s) match")


def register(cli: click.Group) -> None:
    group = cli.commands.get("silence")
    assert isinstance(group, click.Group)
    commands: dict[str, Any] = {"add": add, "list": list_, "expire": expire, "query": query}
    for name, command in commands.items():
        group.add_command(command, name)
