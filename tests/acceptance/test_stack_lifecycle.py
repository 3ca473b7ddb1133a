"""The local stack never leaves orphans: a closed terminal or a killed supervisor ends it all.

As a new user would: ``kemi-stats up --demo`` in a terminal (tmux), then the terminal is
closed; and a detached stack whose supervisor is killed with SIGKILL. Each time, within
15 s no process of the stack remains (checked by pid), and the next ``kemi-stats up`` on
the same data dir starts cleanly.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kemi_stats.catalogue import available_services
from kemi_stats.stack.process import pid_alive, wait_until
from kemi_stats.stack.servers import free_ports, port_open
from kemi_stats.stack.state import StackState

pytestmark = pytest.mark.acceptance


def _kemi(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kemi_stats.cli", *args],
                          capture_output=True, text=True, timeout=timeout)  # fmt: skip


def _stack_pids(data: Path) -> list[int]:
    state = StackState.load(data)
    assert state is not None
    return [state.supervisor_pid] + [c.pid for c in state.components if c.pid]


def _assert_all_gone_within(pids: list[int], seconds: float) -> float:
    started = time.monotonic()
    gone = wait_until(lambda: not any(pid_alive(p) for p in pids), seconds, interval=0.1)
    left = {p: (Path(f"/proc/{p}/cmdline").read_bytes() if pid_alive(p) else b"") for p in pids}
    assert gone, f"still running {seconds:.0f} s later: { {p: c for p, c in left.items() if c} }"
    return time.monotonic() - started


def test_closing_the_terminal_or_killing_the_supervisor_leaves_no_process(
    tmp_path: Path,
) -> None:
    tmux = shutil.which("tmux")
    assert tmux, "tmux is not installed (scripts/install test adds it)"
    if port_open("127.0.0.1", 9190):
        pytest.fail("the demo receiver's port 127.0.0.1:9190 is taken (a demo already running?)")
    data = tmp_path / "stack"
    services = [s.name for s in available_services()]
    kafka, etcd, peer, vm, *ports = free_ports(4 + len(services))
    flags = ["--data-dir", str(data), "--kafka-port", str(kafka), "--etcd-port", str(etcd),
             "--etcd-peer-port", str(peer), "--vm-port", str(vm)]  # fmt: skip
    for name, port in zip(services, ports, strict=True):
        flags += ["--service-port", f"{name}={port}"]
    socket_name = f"kemi-test-{os.getpid()}"
    command = shlex.join([sys.executable, "-m", "kemi_stats.cli", "up", "--demo", *flags])
    tmux_cmd = [tmux, "-L", socket_name, "-f", "/dev/null"]
    env = {**os.environ, "TERM": os.environ.get("TERM", "xterm")}
    try:
        subprocess.run([*tmux_cmd, "new-session", "-d", "-s", "kemi", "-x", "160", "-y", "50",
                        command], check=True, env=env)  # fmt: skip

        def ready() -> bool:
            state = StackState.load(data)
            return state is not None and state.status == "ready"

        assert wait_until(ready, 180, interval=0.5), f"not ready after 180 s; see {data / 'logs'}"
        pids = _stack_pids(data)
        # the supervisor, 3 servers, every service, 3 demo processes
        assert len(pids) == 1 + 3 + len(services) + 3
        subprocess.run([*tmux_cmd, "kill-session", "-t", "kemi"], check=True, env=env)
        took = _assert_all_gone_within(pids, 15)
        print(f"terminal closed: all {len(pids)} processes gone in {took:.1f} s")
    finally:
        subprocess.run([*tmux_cmd, "kill-server"], capture_output=True, env=env)

    up = _kemi("up", "--detach", "--demo", *flags)
    assert up.returncode == 0, up.stderr + up.stdout
    assert "still ran" not in up.stdout  # nothing was left to clean up
    try:
        pids = _stack_pids(data)
        os.kill(pids[0], signal.SIGKILL)
        took = _assert_all_gone_within(pids[1:], 15)
        print(f"supervisor killed: all {len(pids) - 1} processes gone in {took:.1f} s")
        again = _kemi("up", "--detach", "--demo", *flags)
        assert again.returncode == 0, again.stderr + again.stdout
        assert "healthy in" in again.stdout
    finally:
        _kemi("down", "--data-dir", str(data), timeout=120)
