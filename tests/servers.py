"""Real servers for tests: started on free loopback ports, stopped by pid."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from kemi_stats.stack.process import spawn, stop_pid, wait_until
from kemi_stats.stack.servers import (
    ServerCommand,
    broker_command,
    etcd_command,
    free_port,
    free_ports,
    http_ok,
    port_open,
    victoria_command,
)


def log_tail(path: Path, n: int = 3000) -> str:
    """The last ``n`` characters of a process's log (empty if there is none)."""
    try:
        return path.read_text(errors="replace")[-n:]
    except OSError:
        return ""


def stop_process(proc: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM by pid (then SIGKILL if it lingers) and reap it."""
    if proc is not None:
        stop_pid(proc.pid)
        proc.wait(timeout=10)


@dataclass
class RunningServer:
    """A server process started by a fixture."""

    command: ServerCommand
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def address(self) -> str:
        return self.command.address

    @property
    def host(self) -> str:
        return self.address.rpartition(":")[0]

    @property
    def port(self) -> int:
        return int(self.address.rpartition(":")[2])

    def start(self, timeout: float = 30.0) -> RunningServer:
        self.proc = spawn(self.command.argv, self.log_path)
        ok = wait_until(self.healthy, timeout)
        if not ok:
            self.stop()
            tail = log_tail(self.log_path, 2000)
            raise RuntimeError(f"{self.command.name} did not become healthy:\n{tail}")
        return self

    def healthy(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            return False
        if self.command.health_url:
            return http_ok(self.command.health_url)
        return port_open(self.host, self.port)

    def stop(self) -> None:
        stop_process(self.proc)
        self.proc = None

    def restart(self, timeout: float = 30.0) -> None:
        self.stop()
        self.start(timeout)


def start_broker(tmp: Path) -> RunningServer:
    return RunningServer(broker_command(free_port()), tmp / "broker.log").start()


def start_etcd(tmp: Path) -> RunningServer:
    data = tmp / "etcd-data"
    return RunningServer(etcd_command(data, *free_ports(2)), tmp / "etcd.log").start()


def start_victoria(tmp: Path) -> RunningServer:
    data = tmp / "vm-data"
    return RunningServer(victoria_command(data, free_port()), tmp / "vm.log").start()


def service_env(**settings: str) -> dict[str, str]:
    """The environment for a kemi service process pointed at test servers."""
    env = dict(os.environ)
    # the test broker (Tansu) grants producer ids but fences an idempotent producer that
    # bumps its epoch after a timeout, as the local stack's does (docs/local-stack.md)
    env.setdefault("KEMI_AGGREGATOR_IDEMPOTENCE", "off")
    env.update({f"KEMI_{k.upper()}": v for k, v in settings.items()})
    return env


@dataclass
class ServiceProcess:
    """A kemi service started as ``python -m module`` with its own HTTP port."""

    module: str
    env: Mapping[str, str]
    log_path: Path
    args: list[str] = field(default_factory=list)
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> ServiceProcess:
        env = dict(self.env)
        env["KEMI_HTTP_PORT"] = str(self.port)
        self.proc = spawn([sys.executable, "-m", self.module, *self.args], self.log_path, env=env)
        if not wait_until(
            lambda: (
                self.proc is not None
                and (self.proc.poll() is not None or http_ok(self.url + "/healthz"))
            ),
            timeout,
        ):
            self.stop()
            raise RuntimeError(f"{self.module} not healthy in {timeout}s:\n{self.log_tail()}")
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.module} exited {self.proc.returncode}:\n{self.log_tail()}")
        return self

    def log_tail(self, n: int = 3000) -> str:
        return log_tail(self.log_path, n)

    def stop(self) -> None:
        stop_process(self.proc)
        self.proc = None

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc = None


def stopping(*servers: RunningServer) -> Iterator[None]:
    try:
        yield
    finally:
        for s in servers:
            s.stop()


def start_tansu(
    tmp: Path, *flags: str, advertised_port: int | None = None, name: str = "broker"
) -> RunningServer:
    """Tansu with extra ``flags`` (e.g. ``--authentication``), memory storage, a free port.

    ``advertised_port``: the port the broker tells clients to use instead of its own, for
    a proxy in front of it (a TLS terminator: Tansu 0.6.0 cannot enable its own TLS).
    """
    port = free_port()
    command = broker_command(port)
    if advertised_port is not None:
        argv = list(command.argv)
        argv[argv.index("--advertised-listener-url") + 1] = f"tcp://127.0.0.1:{advertised_port}"
        command = ServerCommand(command.name, argv, command.address)
    command = ServerCommand(command.name, [*command.argv, *flags], command.address)
    return RunningServer(command, tmp / f"{name}.log").start()
