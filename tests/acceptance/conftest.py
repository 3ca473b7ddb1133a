"""The whole platform as real processes, started once for the acceptance suite.

``kemi-stats up --detach`` on free loopback ports with its own data dir; the tests
drive it through the CLI and HTTP, as a user would, and ``kemi-stats down`` stops it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest

from kemi_stats.catalogue import available_services
from kemi_stats.stack.servers import free_ports, port_open
from tests.prom_peers import Exporter


@dataclass
class Stack:
    """A running local stack and how to talk to it."""

    data_dir: Path
    ports: dict[str, int]
    env: dict[str, str] = field(default_factory=dict)
    up_seconds: float = 0.0
    #: the tests' secrets (tokens, webhook secrets): no CLI output, log or dead letter
    #: may show one (checked on every command and when the session ends)
    secrets: set[str] = field(default_factory=set)

    def secret(self, value: str) -> str:
        """Register ``value`` as a secret of the run; returns it."""
        self.secrets.add(value)
        return value

    def leaked(self, text: str) -> list[str]:
        return sorted(s for s in self.secrets if s in text)

    def kemi(
        self, *args: str, ok: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """Run ``kemi-stats ARGS`` against this stack."""
        proc = subprocess.run(
            [sys.executable, "-m", "kemi_stats.cli", *args],
            env=self.env, capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip
        if ok:
            assert proc.returncode == 0, f"kemi-stats {' '.join(args)}:\n{proc.stderr}{proc.stdout}"
        shown = self.leaked(proc.stdout + proc.stderr)
        assert not shown, (
            f"kemi-stats {args[0]} {args[1] if len(args) > 1 else ''} printed a secret"
        )
        return proc

    def status(self) -> dict[str, Any]:
        proc = self.kemi("status", "--data-dir", str(self.data_dir), "-o", "json", ok=False)
        return dict(orjson.loads(proc.stdout))

    def component(self, name: str) -> dict[str, Any]:
        return next(c for c in self.status()["components"] if c["name"] == name)

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    @property
    def vm_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['vm']}"

    def wait_up(self, name: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.component(name)["status"] == "up":
                return
            time.sleep(0.5)
        raise AssertionError(f"{name} not up again after {timeout} s")


def _free_stack(data: Path) -> tuple[dict[str, int], dict[str, str], list[str]]:
    """Free loopback ports for a stack in ``data``, the CLI's environment for it, and the
    ``kemi-stats up --detach`` arguments that start it there."""
    names = ["kafka", "etcd", "etcd-peer", "vm"] + [s.name for s in available_services()]
    ports = dict(zip(names, free_ports(len(names)), strict=True))
    env = {
        **os.environ,
        "KEMI_KAFKA_BOOTSTRAP": f"127.0.0.1:{ports['kafka']}",
        "KEMI_ETCD_ENDPOINT": f"127.0.0.1:{ports['etcd']}",
        "KEMI_TSDB_URL": f"http://127.0.0.1:{ports['vm']}",
        "KEMI_DATA_DIR": str(data),
        # a killed service leaves `kemi-stats services` within 5 s
        "KEMI_REGISTRATION_TTL": "5",
        # the user's config file and context stay out of the tests
        "KEMI_CONFIG": os.devnull,
    }
    env.pop("KEMI_CONTEXT", None)
    if "alert-evaluator" in ports:  # where `kemi-stats alerts` and `silence query` look
        env["KEMI_ALERTING_EVALUATOR_URL"] = f"http://127.0.0.1:{ports['alert-evaluator']}"
    args = ["up", "--detach", "--data-dir", str(data), "--kafka-port", str(ports["kafka"]),
            "--etcd-port", str(ports["etcd"]), "--etcd-peer-port", str(ports["etcd-peer"]),
            "--vm-port", str(ports["vm"])]  # fmt: skip
    for s in available_services():
        args += ["--service-port", f"{s.name}={ports[s.name]}"]
    return ports, env, args


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    data = tmp_path_factory.mktemp("stack")
    ports, env, args = _free_stack(data)
    stack = Stack(data, ports, env)
    started = time.monotonic()
    proc = stack.kemi(*args, ok=False, timeout=180)
    stack.up_seconds = time.monotonic() - started
    if proc.returncode != 0:
        logs = "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-1500:]}"
                         for p in sorted((data / "logs").glob("*.log")))  # fmt: skip
        stack.kemi("down", "--data-dir", str(data), ok=False)
        pytest.fail(f"kemi-stats up failed:\n{proc.stderr}\n{proc.stdout}\n{logs}")
    try:
        yield stack
        assert_no_secret_shown(stack)
    finally:
        stack.kemi("down", "--data-dir", str(data), ok=False)


def assert_no_secret_shown(stack: Stack) -> None:
    """grep every log and every dead letter of the run for the tests' secrets."""
    dead = stack.kemi("tail", "kemi.alerts.dead", "--from-beginning", "--timeout", "3", ok=False)
    assert not stack.leaked(dead.stdout), "a dead letter shows a secret"
    logs = sorted((stack.data_dir / "logs").glob("*.log"))
    assert logs
    for path in logs:
        assert not stack.leaked(path.read_text(errors="replace")), f"{path.name} shows a secret"


@dataclass
class Demo:
    """A running ``kemi-stats up --demo`` and how to talk to it."""

    data: Path
    #: time.monotonic() when ``up`` returned
    ready: float
    ports: dict[str, int]
    env: dict[str, str]

    def kemi(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([sys.executable, "-m", "kemi_stats.cli", *args], env=self.env,
                              capture_output=True, text=True, timeout=240)  # fmt: skip
        if ok:
            assert proc.returncode == 0, f"kemi-stats {' '.join(args)}:\n{proc.stderr}"
        return proc

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """``kemi-stats up --demo`` for one test module. The demo's own devices and receiver
    use fixed loopback ports (UDP 1161 on 127.0.1.1-50, TCP 9190); the core uses free ports."""
    if port_open("127.0.0.1", 9190):
        pytest.fail("the demo receiver's port 127.0.0.1:9190 is taken (a demo already running?)")
    data = tmp_path_factory.mktemp("demo")
    ports, env, args = _free_stack(data)
    demo = Demo(data, 0.0, ports, env)
    proc = demo.kemi(*args, "--demo", ok=False)
    demo.ready = time.monotonic()
    try:
        assert proc.returncode == 0, proc.stderr + proc.stdout
        yield demo
    finally:
        demo.kemi("down", "--data-dir", str(data), ok=False)


#: requests per second the busy exporter's counter grows by
BUSY_RATE = 20


@pytest.fixture
def busy_exporter() -> Iterator[Exporter]:
    """A loopback exporter whose ``app_requests_total{path="/checkout"}`` grows BUSY_RATE/s."""
    exp = Exporter()
    stop = threading.Event()

    def serve() -> None:
        while not stop.wait(0.1):
            exp.requests.labels("/checkout").inc(BUSY_RATE / 10)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield exp
    stop.set()
    thread.join()
    exp.stop()
