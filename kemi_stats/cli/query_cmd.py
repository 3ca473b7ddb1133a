"""``kemi-stats query METRIC``: read a metric's history back from the time-series database."""

from __future__ import annotations

import csv
import sys
import time
from datetime import UTC, datetime

import click
import orjson
from rich.console import Console
from rich.table import Table

from kemi_stats.cli.context import CliContext, fail, pass_ctx
from kemi_stats.cli.kind_options import parse_pairs
from kemi_stats.cli.output import output_option, print_document
from kemi_stats.durations import parse_duration
from kemi_stats.settings import load_settings
from kemi_stats.tsdb import RESOURCE_TAG, RangeQuery, Series, make_query_client

__all__ = ["register", "sparkline"]

_BARS = "▁▂▃▄▅▆▇█"


def sparkline(values: list[float], width: int = 40) -> str:
    """``values`` as a row of block characters, at most ``width`` wide (bucket means)."""
    if not values:
        return ""
    if len(values) > width:
        size = len(values) / width
        values = [
            sum(chunk) / len(chunk)
            for i in range(width)
            if (chunk := values[int(i * size) : max(int((i + 1) * size), int(i * size) + 1)])
        ]
    lo, hi = min(values), max(values)
    if hi == lo:
        return _BARS[0] * len(values)
    scale = (len(_BARS) - 1) / (hi - lo)
    return "".join(_BARS[round((v - lo) * scale)] for v in values)


def _fmt(value: float) -> str:
    if value == int(value) and abs(value) < 2**64:
        return str(int(value))
    return f"{value:.6g}"


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _print_table(series: list[Series], console: Console) -> None:
    table = Table(box=None, pad_edge=False, header_style="bold")
    table.add_column("resource", no_wrap=True)
    table.add_column("labels", overflow="fold")
    for col in ("points", "min", "max", "last"):
        table.add_column(col, justify="right", no_wrap=True)
    table.add_column("history", no_wrap=True)
    for s in series:
        values = s.values
        resource = s.labels.get(RESOURCE_TAG, "")
        labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()) if k != RESOURCE_TAG)
        if not values:
            table.add_row(resource, labels, "0", "", "", "", "")
            continue
        table.add_row(
            resource, labels, str(len(values)), _fmt(min(values)), _fmt(max(values)),
            _fmt(values[-1]), sparkline(values),
        )  # fmt: skip
    console.print(table)


def _print_csv(series: list[Series]) -> None:
    keys = sorted({k for s in series for k in s.labels})
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(["time", "metric", *keys, "value"])
    for s in series:
        cols = [s.labels.get(k, "") for k in keys]
        for ts, v in s.points:
            writer.writerow([_iso(ts), s.metric, *cols, repr(v)])


@click.command()
@click.argument("metric")
@click.option("--resource", "-r", help="Only this resource id (e.g. host:web-01).")
@click.option(
    "--label", "-l", "labels", multiple=True, metavar="K=V", help="Label filter (repeat)."
)
@click.option("--since", default="1h", show_default=True, help="How far back (30s, 15m, 1h, 2d).")
@click.option("--step", default="1m", show_default=True, help="Resolution: one value per step.")
@click.option("--raw", is_flag=True, help="Every stored sample instead of one value per step.")
@output_option()
@click.option("--tsdb-url", envvar="KEMI_TSDB_URL", help="TSDB base URL [env KEMI_TSDB_URL].")
@click.option(
    "--tsdb-kind", envvar="KEMI_TSDB_KIND", type=click.Choice(["victoriametrics", "influxdb"]),
    help="TSDB type [env KEMI_TSDB_KIND].",
)  # fmt: skip
@click.option(
    "--measurement", envvar="KEMI_FORWARDER_MEASUREMENT", default=None,
    help="Measurement the forwarder writes (default: its default for the TSDB kind).",
)  # fmt: skip
@pass_ctx
def query(
    obj: CliContext, metric: str, resource: str | None, labels: tuple[str, ...], since: str,
    step: str, raw: bool, output: str, tsdb_url: str | None, tsdb_kind: str | None,
    measurement: str | None,
) -> None:  # fmt: skip
    """Print the history of METRIC: a table with a sparkline per series, or JSON / CSV."""
    try:
        since_s = parse_duration(since)
        step_s = parse_duration(step)
    except ValueError as exc:
        fail(str(exc))
    if step_s <= 0:
        fail(f"--step {step!r}: expected a duration > 0")
    matchers = parse_pairs(tuple(labels), "--label")
    if RESOURCE_TAG in matchers and resource is None:
        resource = matchers.pop(RESOURCE_TAG)
    settings = obj.settings
    if tsdb_url or tsdb_kind:
        settings = load_settings(
            **{**settings.model_dump(), "tsdb_url": tsdb_url or settings.tsdb_url,
               "tsdb_kind": tsdb_kind or settings.tsdb_kind}
        )  # fmt: skip
    end = time.time()
    q = RangeQuery(metric, end - since_s, end, step_s, resource, matchers, raw)
    series = make_query_client(settings, measurement).query_range(q)
    if output == "json":  # one line: series can be long
        click.echo(orjson.dumps([s.to_dict() for s in series]).decode())
        return
    if output == "yaml":
        print_document([s.to_dict() for s in series], output)
        return
    if output == "csv":
        _print_csv(series)
        return
    if not series:
        where = ",".join(f"{k}={v}" for k, v in sorted(q.matchers().items()))
        click.echo(f"no series for {metric}{{{where}}} in the last {since}", err=True)
        return
    console = Console(width=None if sys.stdout.isatty() else 200)
    console.print(f"[bold]{metric}[/] — last {since}, step {step if not raw else 'raw'}")
    _print_table(series, console)


def register(cli: click.Group) -> None:
    cli.add_command(query)
