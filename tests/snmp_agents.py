"""SNMP agents for tests and benchmarks: snmpsim devices and Debian snmpd, on free loopback ports.

Import the fixtures you need into a test module (``from tests.snmp_agents import snmpsim``);
they are module-scoped and stop their process by pid at the end.
"""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from kemi_stats.stack.process import spawn, wait_until
from kemi_stats.stack.servers import ServerCommand
from kemi_stats.stack.snmpsim import (
    SnmpdUser,
    snmpd_command,
    snmpd_env,
    snmpsim_command,
    snmpsim_env,
    write_device_data,
    write_snmpd_conf,
)
from tests.servers import log_tail, stop_process

__all__ = [
    "SIM_DEVICES",
    "SNMPD_USERS",
    "SnmpAgent",
    "free_udp_port",
    "snmpd_agent",
    "snmpsim",
    "start_snmpd",
    "start_snmpsim",
]

SIM_DEVICES = ("sim-a", "sim-b", "sim-c")
SNMPD_USERS = (
    SnmpdUser("kemi-sha-aes"),
    SnmpdUser("kemi-md5-des", auth="MD5", priv="DES"),
    SnmpdUser("kemi-sha256-aes", auth="SHA-256", priv="AES"),
    SnmpdUser("kemi-sha512-aes", auth="SHA-512", priv="AES"),
    SnmpdUser("kemi-auth-only", auth="SHA", priv=None, priv_key=None),
)


def free_udp_port() -> int:
    """A UDP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class SnmpAgent:
    """An SNMP agent process: its command, the community or user a probe uses, its log."""

    command: ServerCommand
    log_path: Path
    env: Mapping[str, str]
    probe_community: str
    proc: subprocess.Popen[bytes] | None = None
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def host(self) -> str:
        return self.command.address.rpartition(":")[0]

    @property
    def port(self) -> int:
        return int(self.command.address.rpartition(":")[2])

    def answers(self) -> bool:
        """Whether the agent answers a v2c GET of sysUpTime (net-snmp's snmpget)."""
        r = subprocess.run(
            ["snmpget", "-v2c", "-c", self.probe_community, "-r0", "-t0.5", "-On",
             f"{self.host}:{self.port}", "1.3.6.1.2.1.1.3.0"],
            capture_output=True, text=True, check=False, env={"MIBS": "", "PATH": "/usr/bin:/bin"},
        )  # fmt: skip
        return r.returncode == 0 and "1.3.6.1.2.1.1.3.0" in r.stdout

    def start(self, timeout: float = 30.0) -> SnmpAgent:
        self.proc = spawn(self.command.argv, self.log_path, env=self.env)
        if not wait_until(
            lambda: self.proc is None or self.proc.poll() is not None or self.answers(),
            timeout,
            0.2,
        ):
            self.stop()
            raise RuntimeError(f"{self.command.name} not answering:\n{self.log_tail()}")
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.command.name} exited:\n{self.log_tail()}")
        return self

    def log_tail(self) -> str:
        return log_tail(self.log_path, 2000)

    def stop(self) -> None:
        stop_process(self.proc)
        self.proc = None


def start_snmpsim(
    tmp: Path, devices: tuple[str, ...] = SIM_DEVICES, **options: object
) -> SnmpAgent:
    """snmpsim with one data file per device (community = device name) on a free UDP port."""
    data = tmp / "snmpsim-data"
    for name in devices:
        write_device_data(data, name, **options)
    command = snmpsim_command(data, ("127.0.0.1", free_udp_port()))
    return SnmpAgent(command, tmp / "snmpsim.log", snmpsim_env(), devices[0]).start(60.0)


def start_snmpd(
    tmp: Path, users: tuple[SnmpdUser, ...] = SNMPD_USERS, community: str = "public"
) -> SnmpAgent:
    """Debian snmpd with a read-only community and v3 users, on a free UDP port."""
    tmp.mkdir(parents=True, exist_ok=True)
    conf = write_snmpd_conf(tmp / "snmpd.conf", community=community, users=users)
    persistent = tmp / "snmpd-persist"
    command = snmpd_command(conf, free_udp_port(), persistent)
    return SnmpAgent(command, tmp / "snmpd.log", snmpd_env(persistent), community).start()


@pytest.fixture(scope="module")
def snmpsim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SnmpAgent]:
    """snmpsim serving SIM_DEVICES (4 interfaces each, moving counters)."""
    agent = start_snmpsim(tmp_path_factory.mktemp("snmpsim"))
    yield agent
    agent.stop()


@pytest.fixture(scope="module")
def snmpd_agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SnmpAgent]:
    """Debian snmpd with community ``public`` and SNMPD_USERS (password authpass123/privpass123)."""
    agent = start_snmpd(tmp_path_factory.mktemp("snmpd"))
    yield agent
    agent.stop()
