"""``kemi-stats up --detach`` / ``status`` / ``down`` on free loopback ports, as a user runs them."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from kemi_stats.stack.process import pid_alive
from kemi_stats.stack.servers import free_ports

pytestmark = pytest.mark.integration


def kemi(*args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kemi_stats.cli", *args],
        capture_output=True, text=True, timeout=timeout, env=dict(os.environ),
    )  # fmt: skip


def _port_flags() -> list[str]:
    kafka, etcd, peer, vm = free_ports(4)
    return ["--kafka-port", str(kafka), "--etcd-port", str(etcd),
            "--etcd-peer-port", str(peer), "--vm-port", str(vm)]  # fmt: skip


def test_up_status_down_leaves_no_process(tmp_path: Path) -> None:
    data = tmp_path / "stack"
    up = kemi("up", "--detach", "--data-dir", str(data), "--services", "none", *_port_flags())
    assert up.returncode == 0, up.stderr + up.stdout
    for name in ("broker", "etcd", "victoriametrics"):
        assert f"  {name}" in up.stdout
    assert "healthy in" in up.stdout
    try:
        status = kemi("status", "--data-dir", str(data), "-o", "json")
        assert status.returncode == 0, status.stderr
        doc = orjson.loads(status.stdout)
        assert {c["name"]: c["status"] for c in doc["components"]} == {
            "broker": "up", "etcd": "up", "victoriametrics": "up"}  # fmt: skip
        assert "kemi.metrics.raw" in doc["topics"]
        pids = [doc["supervisor"]["pid"]] + [c["pid"] for c in doc["components"]]
    finally:
        down = kemi("down", "--data-dir", str(data))
    assert down.returncode == 0, down.stderr
    assert down.stdout.strip() == "stopped 4 processes"  # the supervisor and its 3 servers
    assert not [p for p in pids if pid_alive(p)]
    after = kemi("status", "--data-dir", str(data))
    assert after.returncode == 1 and "down" in after.stdout


def test_port_in_use_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        flags = _port_flags()
        flags[1] = str(port)
        proc = kemi("up", "--detach", "--data-dir", str(tmp_path / "s"), *flags)
    assert proc.returncode == 1
    assert (
        proc.stderr.strip()
        == f"error: broker: port 127.0.0.1:{port} is in use (pick another with --kafka-port)"
    )


def test_unwritable_data_dir_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    proc = kemi("up", "--data-dir", str(blocker / "data"), *_port_flags())
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "not writable" in lines[0] and "Traceback" not in proc.stderr


def test_unknown_flag_is_one_line() -> None:
    proc = kemi("up", "--no-such-flag")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: No such option: --no-such-flag (see 'kemi-stats up --help')"]  # fmt: skip
