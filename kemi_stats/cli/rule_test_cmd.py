"""``kemi-stats rule test NAME|-f rule.yaml [--since 24h]``: would the rule have fired?

Reads the rule's metric from the time-series database and replays it through the
evaluator's own engine (:mod:`alerting.backtest`), then prints, per series, when the rule
would have fired and resolved, and a summary line. Exit 0 whatever it finds.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import click

from kemi_stats.cli.context import CliContext, fail, pass_ctx
from kemi_stats.cli.output import output_option, print_document
from kemi_stats.cli.registry_cmd import load_fields
from kemi_stats.durations import format_duration, parse_duration
from kemi_stats.errors import NotFoundError
from kemi_stats.registry.models import Rule
from kemi_stats.registry.store import parse_doc

__all__ = ["register"]


def _when(ms: int) -> str:
    if not ms:
        return "-"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


@click.command("test")
@click.argument("name", required=False)
@click.option("--file", "-f", "file", type=click.Path(), help="A rule document not registered yet.")
@click.option("--since", default="24h", show_default=True, help="How far back to replay.")
@output_option(csv=False)
@pass_ctx
def rule_test(
    obj: CliContext, name: str | None, file: str | None, since: str, output: str
) -> None:  # fmt: skip
    """Replay the stored history of a rule's metric: when would it have fired and resolved?"""
    from alerting.backtest import backtest
    from kemi_stats.tsdb.query import make_query_client
    from kemi_stats.tsdb.range_query import RangeQuery

    if (name is None) == (file is None):
        fail("give a rule NAME or --file rule.yaml")
    try:
        since_s = parse_duration(since)
    except ValueError as exc:
        fail(f"--since: {exc}")
    rule: Rule
    if file is not None:
        name = name or Path(file).stem
        rule = parse_doc("rule", name, load_fields(file, "rule"))
    else:
        assert name is not None
        try:
            rule = obj.registry.get("rule", name).doc
        except NotFoundError:
            fail(f"rule {name} does not exist")
    end = time.time()
    query = RangeQuery(rule.metric, end - since_s, end, raw=True)
    series = make_query_client(obj.settings).query_range(query)
    result = backtest(name, rule, series, int((end - since_s) * 1000), int(end * 1000))
    if output in ("json", "yaml"):
        doc = {
            "rule": name, "since_ms": result.start_ms, "until_ms": result.end_ms,
            "series": result.series, "samples": result.samples,
            "episodes": [e.to_dict() for e in result.episodes],
            "summary": result.summary(),
        }  # fmt: skip
        print_document(doc, output)
        return
    click.echo(f"rule {name} over the last {format_duration(since_s)} "
               f"({_when(result.start_ms)} to {_when(result.end_ms)} UTC)")  # fmt: skip
    if result.episodes:
        header = ["FIRED (UTC)", "RESOLVED (UTC)", "FOR", "RESOURCE", "KIND", "LABELS"]
        rows = []
        for e in sorted(result.episodes, key=lambda e: (e.resource, e.fired_ms)):
            lasted = format_duration((e.resolved_ms - e.fired_ms) / 1000) if e.resolved_ms else "-"
            labels = ",".join(f"{k}={v}" for k, v in sorted(e.labels.items()))
            rows.append(
                [_when(e.fired_ms), _when(e.resolved_ms), lasted, e.resource, e.kind, labels]
            )
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
        for line in (header, *rows):
            click.echo("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())
    click.echo(result.summary())


def register(cli: click.Group) -> None:
    group = cli.commands.get("rule")
    assert isinstance(group, click.Group)
    group.add_command(rule_test, "test")
