"""``kemi-stats agent``: the /proc push agent for Linux hosts that cannot be polled."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

import click

from kemi_stats.cli.context import fail
from kemi_stats.cli.kind_options import parse_pairs
from kemi_stats.cli.secret_input import HELP, secret_value
from kemi_stats.durations import parse_duration

__all__ = ["register"]


@click.command()
@click.option("--url", required=True, envvar="KEMI_AGENT_URL", help="Aggregator base URL.")
@click.option(
    "--token",
    required=True,
    envvar="KEMI_AGENT_TOKEN",
    callback=secret_value,
    help=f"Push token (or KEMI_AGENT_TOKEN) {HELP}.",
)
@click.option("--interval", default="10s", show_default=True, help="Collection interval.")
@click.option(
    "--resource-id", default=None, help="Resource id of this host.  [default: host:<hostname>]"
)
@click.option("--label", "labels", multiple=True, help="key=value added to every sample.")
@click.option("--once", is_flag=True, help="Collect and push once, then exit (0 if accepted).")
@click.option("--max-backlog", default=360, show_default=True, help="Intervals kept while failing.")
def agent(
    url: str,
    token: str,
    interval: str,
    resource_id: str | None,
    labels: tuple[str, ...],
    once: bool,
    max_backlog: int,
) -> None:
    """Read /proc (cpu, memory, load, disk, network) every interval and push it as JSON."""
    # the agent is an application of its own; the CLI (top floor) loads it only here
    from agent import Agent, Pusher, default_resource_id

    try:
        seconds = parse_duration(interval)
    except ValueError as exc:
        fail(f"--interval: {exc}")
    if seconds <= 0:
        fail(f"--interval {interval!r}: expected a duration > 0")
    logging.basicConfig(level="INFO", format="%(asctime)s %(levelname)s agent: %(message)s")
    rid = resource_id or default_resource_id()
    extra = parse_pairs(labels, "--label")

    async def main() -> int:
        async with Pusher(url, token) as pusher:
            runner = Agent(pusher, rid, seconds, extra, max_backlog=max_backlog)
            if once:
                runner.collect()  # CPU baseline, so that the push carries CPU percentages
                await asyncio.sleep(min(seconds, 1.0))
                result = await runner.push_once()
                if not result.ok:
                    fail(f"push to {pusher.url}: {result.status or 'no answer'} {result.message}")
                click.echo(f"pushed to {pusher.url} as {rid}")
                return 0
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop.set)
            click.echo(f"pushing {rid} to {pusher.url} every {seconds:g} s", err=True)
            await runner.run(stop)
            with contextlib.suppress(Exception):
                await runner.drain(5.0)
            return 0

    raise SystemExit(asyncio.run(main()))


def register(cli: click.Group) -> None:
    cli.add_command(agent)
