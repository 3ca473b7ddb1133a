"""``kemi-stats up|down|status``: the whole platform on this machine, on loopback."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from kemi_stats.cli.context import CliContext, fail, pass_ctx
from kemi_stats.cli.output import output_option, print_document
from kemi_stats.errors import KemiError, StackError
from kemi_stats.stack.launcher import LOCAL_PARTITIONS, StackConfig, Supervisor, stop_in_order
from kemi_stats.stack.process import pid_alive, spawn, stop_pid, wait_until
from kemi_stats.stack.servers import http_ok, port_open
from kemi_stats.stack.state import ComponentState, StackState

F = TypeVar("F", bound=Callable[..., Any])

__all__ = ["register"]


def _data_dir(obj: CliContext, data_dir: str | None) -> Path:
    return (
        Path(data_dir).expanduser().resolve()
        if data_dir
        else obj.settings.data_dir.expanduser().resolve()
    )


def _progress_line(comp: ComponentState, seconds: float) -> str:
    if comp.status == "failed":
        return f"  {comp.name:<18} FAILED  {comp.detail}  (log: {comp.log})"
    return f"  {comp.name:<18} up      {comp.address:<20} pid {comp.pid}  ({seconds:.1f} s)"


def _print_progress(comp: ComponentState, seconds: float) -> None:
    click.echo(_progress_line(comp, seconds), err=comp.status == "failed")


def _stop_orphans(sup: Supervisor) -> None:
    """Stop, in one line, what a dead supervisor of the same data dir left running."""
    stopped = sup.stop_orphans()
    if stopped:
        click.echo(
            f"the previous supervisor of {sup.config.data_dir} is gone but "
            f"{len(stopped)} of its processes still ran ({_names(stopped)}): stopped them"
        )


def _names(comps: list[ComponentState]) -> str:
    return ", ".join(f"{c.name} pid {c.pid}" for c in comps)


def _port_option(flag: str, default: int, envvar: str) -> Callable[[F], F]:
    """A loopback port of the local stack: a flag, an environment variable, a default."""
    return click.option(
        flag, type=click.IntRange(1, 65535), default=default, envvar=envvar, show_default=True
    )


@click.command()
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False),
    help="Where data and logs go (default ~/.kemi-stats).",
)
@click.option("--detach", is_flag=True, help="Run in the background; 'kemi-stats down' stops it.")
@click.option(
    "--demo",
    is_flag=True,
    help="Also start simulated devices, a push agent and a webhook receiver.",
)
@_port_option("--kafka-port", 9092, "KEMI_KAFKA_PORT")
@_port_option("--etcd-port", 2379, "KEMI_ETCD_PORT")
@_port_option("--etcd-peer-port", 2380, "KEMI_ETCD_PEER_PORT")
@_port_option("--vm-port", 8428, "KEMI_VM_PORT")
@click.option(
    "--service-port",
    "service_ports",
    multiple=True,
    metavar="SERVICE=PORT",
    help="Override a service's HTTP port.",
)
@click.option("--services", "only", help="Comma-separated services to start (default: all).")
@click.option(
    "--partitions",
    type=click.IntRange(1, 64),
    default=LOCAL_PARTITIONS,
    show_default=True,
    help="Partitions of the sample topics: the most workers of a stage that share its work.",
)
@click.option("--supervise", is_flag=True, hidden=True)
@click.option(
    "--no-live", is_flag=True, help="With --demo in the foreground: no live view, just logs."
)
@pass_ctx
def up(
    obj: CliContext, data_dir: str | None, detach: bool, demo: bool, kafka_port: int, etcd_port: int,
    etcd_peer_port: int, vm_port: int, service_ports: tuple[str, ...], only: str | None,
    partitions: int, supervise: bool, no_live: bool,
) -> None:  # fmt: skip
    """Start the platform on loopback: broker, etcd, VictoriaMetrics and every service."""
    ports: dict[str, int] = {}
    for item in service_ports:
        name, _, port = item.partition("=")
        if not port.isdigit() or not 0 < int(port) < 65536:
            fail(f"--service-port {item!r}: expected SERVICE=PORT with a port 1-65535")
        ports[name] = int(port)
    config = StackConfig(
        data_dir=_data_dir(obj, data_dir), kafka_port=kafka_port, etcd_port=etcd_port,
        etcd_peer_port=etcd_peer_port, vm_port=vm_port, prefix=obj.settings.etcd_prefix,
        service_ports=ports, only_services=only.split(",") if only else None, partitions=partitions,
    )  # fmt: skip
    if detach and not supervise:
        _up_detached(config, demo)
        return
    sup = Supervisor(config, progress=None if supervise else _print_progress)
    if demo:
        from demo.setup import attach_demo

        attach_demo(sup, live=not (supervise or no_live))
    if not supervise:
        _stop_orphans(sup)
        sup.check()
        click.echo(
            f"starting kemi-stats in {config.data_dir} "
            "(Ctrl-C or closing the terminal stops everything)"
        )

    def ready() -> None:
        if not supervise:
            _print_ready(config)

    try:
        sup.run(on_ready=ready)
    except KemiError as exc:
        if not supervise:
            fail(str(exc))
        sys.exit(1)
    if not supervise:
        with contextlib.suppress(OSError):  # the terminal may be gone (SIGHUP)
            click.echo("stopped")


def _print_ready(config: StackConfig) -> None:
    click.echo(
        f"ready: kafka {config.kafka}, etcd {config.etcd}, VictoriaMetrics {config.tsdb_url} "
        f"(graphs: {config.tsdb_url}/vmui)"
    )
    console = next((s for s in config.services() if s.name == "console"), None)
    if console is not None:
        click.echo(
            f"console: http://{config.host}:{config.service_port(console)}/ "
            "(to silence alerts: kemi-stats token add NAME --scope console)"
        )
    click.echo(
        f"env for the CLI: export KEMI_KAFKA_BOOTSTRAP={config.kafka} KEMI_ETCD_ENDPOINT={config.etcd}"
    )


def _up_detached(config: StackConfig, demo: bool) -> None:
    argv = [sys.executable, "-m", "kemi_stats.cli", "up", "--supervise", "--data-dir", str(config.data_dir),
            "--kafka-port", str(config.kafka_port), "--etcd-port", str(config.etcd_port),
            "--etcd-peer-port", str(config.etcd_peer_port), "--vm-port", str(config.vm_port),
            "--partitions", str(config.partitions)]  # fmt: skip
    for name, port in config.service_ports.items():
        argv += ["--service-port", f"{name}={port}"]
    if config.only_services is not None:
        argv += ["--services", ",".join(config.only_services)]
    if demo:
        argv.append("--demo")
    # fail fast with the same one-line checks the supervisor makes
    sup = Supervisor(config)
    _stop_orphans(sup)
    sup.check()
    started = time.monotonic()
    state_path = StackState.path(config.data_dir)
    state_path.unlink(missing_ok=True)
    proc = spawn(argv, config.data_dir / "logs" / "supervisor.log", env=dict(os.environ))
    click.echo(f"starting kemi-stats in {config.data_dir} (supervisor pid {proc.pid})")
    shown: set[str] = set()
    while True:
        time.sleep(0.2)
        state = StackState.load(config.data_dir)
        if state is not None and state.supervisor_pid == proc.pid:
            for comp in state.components:
                if comp.status in ("up", "failed") and comp.name not in shown:
                    shown.add(comp.name)
                    _print_progress(comp, time.monotonic() - started)
            if state.status == "ready":
                _print_ready(config)
                click.echo(
                    f"all {len(state.components)} components healthy in {time.monotonic() - started:.1f} s"
                )
                return
            if state.status in ("failed", "stopped", "stopping"):
                wait_until(lambda: not pid_alive(proc.pid), 15)
                fail(state.detail or "the stack stopped during start-up")
        if proc.poll() is not None:
            log = config.data_dir / "logs" / "supervisor.log"
            last = log.read_text(errors="replace").strip().splitlines()[-1:] if log.exists() else []
            fail(f"supervisor exited ({proc.returncode}): {' '.join(last) or 'see ' + str(log)}")


@click.command()
@click.option("--data-dir", type=click.Path(file_okay=False), help="The stack's data directory.")
@pass_ctx
def down(obj: CliContext, data_dir: str | None) -> None:
    """Stop everything 'kemi-stats up' started, children included (by pid)."""
    path = _data_dir(obj, data_dir)
    state = StackState.load(path)
    if state is None:
        fail(f"no stack state in {path} (nothing started there)")
    running = [c for c in state.components if c.running()]
    stopped = len(running)
    if state.supervisor_running():
        stopped += 1
        stop_pid(state.supervisor_pid, timeout=30)  # it stops its components in order
    stuck = stop_in_order([c for c in running if c.running()])
    if stuck:
        fail(f"processes still alive after stop: {_names(stuck)}")
    state = StackState.load(path) or state
    state.status = "stopped"
    for comp in state.components:
        comp.status = "stopped"
    state.save()
    if not stopped:
        click.echo(f"nothing was running from {path}")
    else:
        click.echo(f"stopped {stopped} process" + ("es" if stopped > 1 else ""))


@click.command()
@click.option("--data-dir", type=click.Path(file_okay=False), help="The stack's data directory.")
@output_option(csv=False)
@pass_ctx
def status(obj: CliContext, data_dir: str | None, output: str) -> None:
    """Show each component of the local stack: up/down, pid, address."""
    from rich.console import Console
    from rich.table import Table

    path = _data_dir(obj, data_dir)
    state = StackState.load(path)
    if state is None:
        fail(f"no stack in {path} (start one with 'kemi-stats up')")
    supervised = state.supervisor_running()
    rows = []
    for comp in state.components:
        alive = comp.running()
        if alive and comp.health_url:
            healthy = http_ok(comp.health_url)
        elif comp.kind == "demo":
            healthy = alive  # UDP agents and the push agent have no TCP port to probe
        else:
            host, _, port = comp.address.rpartition(":")
            healthy = alive and port.isdigit() and port_open(host, int(port))
        rows.append((comp, "up" if healthy else ("unhealthy" if alive else "down")))
    orphans = [c for c, s in rows if s != "down"] if not supervised else []
    topics: list[str] = []
    broker = state.component("broker")
    if broker and any(c is broker and s == "up" for c, s in rows):
        from kemi_stats.topics import list_topics

        try:
            topics = list_topics(broker.address)
        except KemiError:
            topics = []
    if output in ("json", "yaml"):
        doc = {
            "data_dir": state.data_dir,
            "supervisor": {"pid": state.supervisor_pid, "alive": supervised},
            "components": [
                {"name": c.name, "kind": c.kind, "status": s, "pid": c.pid, "address": c.address,
                 "health_url": c.health_url, "restarts": c.restarts, "log": c.log}
                for c, s in rows
            ],
            "topics": topics,
            "orphans": [c.name for c in orphans],
        }  # fmt: skip
        print_document(doc, output)
    else:
        table = Table(box=None, header_style="bold", pad_edge=False)
        for col in ("COMPONENT", "STATUS", "PID", "ADDRESS", "RESTARTS", "LOG"):
            table.add_column(col)
        for c, s in rows:
            style = "green" if s == "up" else "red"
            table.add_row(
                c.name, f"[{style}]{s}[/]", str(c.pid or "-"), c.address, str(c.restarts), c.log
            )
        console = Console(soft_wrap=True)
        if not console.is_terminal:
            console = Console(soft_wrap=True, width=300)
        sup = "running" if supervised else "not running"
        console.print(f"stack {state.data_dir}: supervisor pid {state.supervisor_pid} {sup}")
        if orphans:
            console.print(
                f"[red]the supervisor is gone but {len(orphans)} of its processes still run "
                f"({_names(orphans)}), unwatched: 'kemi-stats down' stops them, "
                "'kemi-stats up' stops them and starts afresh[/]"
            )
        console.print(table)
        if topics:
            console.print("topics: " + ", ".join(topics))
    if orphans:
        raise StackError(
            f"supervisor pid {state.supervisor_pid} is gone but {len(orphans)} of its processes "
            "still run; 'kemi-stats down' stops them"
        )
    if any(s != "up" for _, s in rows) or not supervised:
        raise StackError("not every component is up")


def register(cli: click.Group) -> None:
    cli.add_command(up)
    cli.add_command(down)
    cli.add_command(status)
