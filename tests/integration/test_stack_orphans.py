"""No process of the local stack outlives its supervisor, and none is left unwatched.

A supervisor killed with SIGKILL takes its children along (parent-death signal); a data
dir whose supervisor is gone but whose processes still run is reported by ``status`` and
cleaned up by ``up`` and ``down``, which stop only processes that still run the command
recorded for them.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from kemi_stats.stack.process import cmdline, pid_alive, process_start, runs, spawn, wait_until
from kemi_stats.stack.servers import free_ports
from kemi_stats.stack.state import ComponentState, StackState

pytestmark = pytest.mark.integration

SLEEP = ["/bin/sleep", "300"]


def kemi(*args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kemi_stats.cli", *args],
        capture_output=True, text=True, timeout=timeout, env=dict(os.environ),
    )  # fmt: skip


@pytest.fixture
def sleepers(tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes started the way the supervisor starts its children, but by nobody's watch."""
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for p in procs:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def test_a_child_gets_sigterm_when_its_parent_is_killed(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    parent = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from pathlib import Path; from kemi_stats.stack.process import spawn; "
         f"p = spawn({SLEEP!r}, Path({str(tmp_path / 'child.log')!r}), die_with_parent=True); "
         f"Path({str(pid_file)!r}).write_text(str(p.pid)); time.sleep(300)"],
    )  # fmt: skip
    try:
        assert wait_until(pid_file.exists, 10)
        child = int(pid_file.read_text())
        assert pid_alive(child)
        parent.kill()
        parent.wait()
        assert wait_until(lambda: not pid_alive(child), 5), "the child outlived its parent"
    finally:
        if parent.poll() is None:
            parent.kill()


def test_a_reused_pid_is_not_the_recorded_process(
    tmp_path: Path, sleepers: list[subprocess.Popen[bytes]]
) -> None:
    proc = spawn(SLEEP, tmp_path / "sleep.log")
    sleepers.append(proc)
    # until the exec is done the command line is empty, and runs() cannot tell it apart
    assert wait_until(lambda: cmdline(proc.pid), 5)
    started = process_start(proc.pid)
    assert started is not None
    assert runs(proc.pid, SLEEP, started)
    assert not runs(proc.pid, SLEEP, started - 1)  # same pid, another process's start
    assert not runs(proc.pid, ["/usr/bin/etcd"], started)  # same pid, another command
    assert runs(proc.pid, SLEEP, None)  # a state file from before start times were kept


def _orphaned_state(data: Path, sleepers: list[subprocess.Popen[bytes]]) -> tuple[int, int]:
    """A state file whose supervisor is gone, with one live orphan and one reused pid."""
    gone = subprocess.Popen(["/bin/true"])
    gone.wait()
    orphan = spawn(SLEEP, data / "logs" / "orphan.log")
    stranger = spawn(SLEEP, data / "logs" / "stranger.log")
    sleepers += [orphan, stranger]
    state = StackState(data_dir=str(data), supervisor_pid=gone.pid, supervisor_started=1)
    state.components = [
        ComponentState(name="orphan", kind="service", address="127.0.0.1:1", log="",
                       pid=orphan.pid, status="up", argv=SLEEP,
                       started=process_start(orphan.pid)),
        # the kernel gave this pid to another program since: not ours to stop
        ComponentState(name="etcd", kind="server", address="127.0.0.1:2", log="",
                       pid=stranger.pid, status="up", argv=["/usr/bin/etcd"],
                       started=process_start(stranger.pid)),
    ]  # fmt: skip
    state.save()
    return orphan.pid, stranger.pid


def test_status_says_the_supervisor_is_gone_and_what_still_runs(
    tmp_path: Path, sleepers: list[subprocess.Popen[bytes]]
) -> None:
    orphan, stranger = _orphaned_state(tmp_path, sleepers)
    table = kemi("status", "--data-dir", str(tmp_path))
    assert table.returncode == 1
    assert (
        f"the supervisor is gone but 1 of its processes still run (orphan pid {orphan}), unwatched"
    ) in table.stdout
    assert "'kemi-stats down' stops them" in table.stderr
    doc = orjson.loads(kemi("status", "--data-dir", str(tmp_path), "-o", "json").stdout)
    assert doc["supervisor"]["alive"] is False
    assert doc["orphans"] == ["orphan"]

    down = kemi("down", "--data-dir", str(tmp_path))
    assert down.returncode == 0, down.stderr
    assert down.stdout.strip() == "stopped 1 process"
    assert not pid_alive(orphan)
    assert pid_alive(stranger)
    assert (
        kemi("down", "--data-dir", str(tmp_path)).stdout.strip().startswith("nothing was running")
    )


def test_up_stops_what_a_dead_supervisor_left_before_anything_else(
    tmp_path: Path, sleepers: list[subprocess.Popen[bytes]]
) -> None:
    orphan, stranger = _orphaned_state(tmp_path, sleepers)
    with socket.socket() as taken:  # so that up stops at its port check, after the clean-up
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        kafka = taken.getsockname()[1]
        etcd, peer, vm = free_ports(3)
        up = kemi("up", "--detach", "--data-dir", str(tmp_path), "--services", "none",
                  "--kafka-port", str(kafka), "--etcd-port", str(etcd),
                  "--etcd-peer-port", str(peer), "--vm-port", str(vm))  # fmt: skip
    assert up.returncode == 1
    assert (
        f"the previous supervisor of {tmp_path} is gone but 1 of its processes still ran "
        f"(orphan pid {orphan}): stopped them"
    ) in up.stdout
    assert f"port 127.0.0.1:{kafka} is in use" in up.stderr
    assert not pid_alive(orphan)
    assert pid_alive(stranger)


def test_kill_9_of_the_supervisor_leaves_nothing_and_up_starts_cleanly(tmp_path: Path) -> None:
    data = tmp_path / "stack"
    kafka, etcd, peer, vm = free_ports(4)
    ports = ["--kafka-port", str(kafka), "--etcd-port", str(etcd),
             "--etcd-peer-port", str(peer), "--vm-port", str(vm)]  # fmt: skip
    up = kemi("up", "--detach", "--data-dir", str(data), "--services", "none", *ports)
    assert up.returncode == 0, up.stderr + up.stdout
    try:
        state = StackState.load(data)
        assert state is not None
        pids = [c.pid for c in state.components if c.pid]
        assert len(pids) == 3 and all(pid_alive(p) for p in pids)
        os.kill(state.supervisor_pid, signal.SIGKILL)
        started = time.monotonic()
        assert wait_until(lambda: not any(pid_alive(p) for p in pids), 15), [
            p for p in pids if pid_alive(p)
        ]
        print(f"every process gone {time.monotonic() - started:.1f} s after kill -9")
        again = kemi("up", "--detach", "--data-dir", str(data), "--services", "none", *ports)
        assert again.returncode == 0, again.stderr + again.stdout
        assert "healthy in" in again.stdout
    finally:
        kemi("down", "--data-dir", str(data))
