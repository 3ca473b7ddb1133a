"""``kemi-stats services``: the service instances registered in etcd, each one's health asked."""

from __future__ import annotations

import asyncio
import datetime as dt
import ssl
from typing import Any

import aiohttp
import click

from kemi_stats.assignments import Partitions
from kemi_stats.cli.context import CliContext, pass_ctx
from kemi_stats.cli.output import output_option, print_document, print_records
from kemi_stats.registry.instances import Instance, list_instances

__all__ = ["register"]

#: seconds each health page may take: a hung instance must not hold the listing up
HEALTH_TIMEOUT = 2.0


async def _health(session: aiohttp.ClientSession, doc: Instance) -> str:
    """``ok``, ``failing: <reason>`` or ``unreachable``, from one GET of the health URL."""
    try:
        # a health page answers itself: a redirect leads somewhere no instance registered
        async with session.get(doc.health_url, allow_redirects=False) as resp:
            try:
                body = await resp.json(content_type=None)
            except ValueError:
                body = None
    except (aiohttp.ClientError, TimeoutError, OSError):
        return "unreachable"
    body = body if isinstance(body, dict) else {}
    other = body.get("instance")
    if other is not None and other != doc.instance:
        # a killed instance's port answered by its successor (a restart), until its lease ends
        return f"unreachable (its port answers as {other})"
    if resp.status == 200:
        return "ok"
    return f"failing: {_reason(body, resp.status)}"


def _reason(body: dict[str, Any], status: int) -> str:
    """The failed checks a readiness page names, else its HTTP status."""
    checks = body.get("checks")
    failed = [
        f"{name}: {c.get('detail', '')}".rstrip(": ")
        for name, c in (checks.items() if isinstance(checks, dict) else ())
        if isinstance(c, dict) and not c.get("ok")
    ]
    return "; ".join(failed) or f"HTTP {status}"


async def _all_health(instances: list[Instance]) -> list[str]:
    """Every instance's health, asked concurrently."""
    # a health page sends nothing secret and the answer is only shown: a console with a
    # private CA's certificate is still asked rather than called unreachable
    insecure = ssl.create_default_context()
    insecure.check_hostname = False
    insecure.verify_mode = ssl.CERT_NONE
    timeout = aiohttp.ClientTimeout(total=HEALTH_TIMEOUT)
    connector = aiohttp.TCPConnector(ssl=insecure)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        return list(await asyncio.gather(*(_health(session, i) for i in instances)))


def partitions_cell(partitions: Partitions) -> str:
    """``topic[0-2,5] other[1]``, or ``-`` for an instance that consumes nothing."""
    if not partitions:
        return "-"
    return " ".join(f"{topic}[{_ranges(parts)}]" for topic, parts in sorted(partitions.items()))


def _ranges(numbers: list[int]) -> str:
    """``0,1,2,5`` -> ``0-2,5``."""
    runs: list[list[int]] = []
    for n in sorted(set(numbers)):
        if runs and runs[-1][1] == n - 1:
            runs[-1][1] = n
        else:
            runs.append([n, n])
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


def uptime_cell(seconds: float) -> str:
    """The two largest units: ``2d3h``, ``4h5m``, ``6m7s``, ``8s``."""
    rest = int(seconds)
    parts: list[str] = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if rest >= size or (unit == "s" and not parts):
            parts.append(f"{rest // size}{unit}")
            rest %= size
    return "".join(parts[:2])


def _row(doc: Instance, health: str, now: dt.datetime) -> dict[str, Any]:
    data = doc.model_dump(mode="json")
    data["uptime_seconds"] = round(doc.uptime(now), 1)
    data["health"] = health
    return data


@click.command("services")
@output_option()
@click.option("--service", "service", metavar="NAME", help="Only the instances of this service.")
@pass_ctx
def services(obj: CliContext, output: str, service: str | None) -> None:
    """List the running service instances registered in etcd, with each one's health."""
    settings = obj.settings
    # etcd unreachable: BackendUnavailable, one line from the CLI's main
    listing = list_instances(obj.registry, service)
    for problem in listing.problems:
        click.echo(f"warning: {problem}", err=True)
    health = asyncio.run(_all_health(listing.instances)) if listing.instances else []
    now = dt.datetime.now(dt.UTC)
    rows = [_row(d, h, now) for d, h in zip(listing.instances, health, strict=True)]
    if output in ("json", "yaml"):
        print_document(rows, output)
        return
    if not rows and output == "table":
        which = f"of {service} " if service else ""
        click.echo(f"no service instances {which}registered under {settings.etcd_prefix}services/")
        return
    cells = [
        {"service": doc.name, "instance": doc.instance, "host": doc.host, "pid": doc.pid,
         "version": doc.version, "uptime": uptime_cell(row["uptime_seconds"]),
         "health": row["health"], "partitions": partitions_cell(doc.partitions)}
        for doc, row in zip(listing.instances, rows, strict=True)
    ]  # fmt: skip
    print_records(cells, list(_COLUMNS), output)


_COLUMNS = ("service", "instance", "host", "pid", "version", "uptime", "health", "partitions")


def register(cli: click.Group) -> None:
    cli.add_command(services)
