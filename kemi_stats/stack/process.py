"""Starting, identifying and stopping child processes, each in its own process group.

Children of the supervisor die with it: each is started with the parent-death signal
(Linux ``prctl(PR_SET_PDEATHSIG)``), so a supervisor killed with SIGKILL, by the OOM
killer or by a crash still takes its processes along. The kernel sends the signal when
the *thread* that forked the child ends, so the supervisor forks from its main thread.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

__all__ = [
    "cmdline",
    "die_with",
    "pid_alive",
    "process_start",
    "runs",
    "spawn",
    "stop_pid",
    "stop_pids",
    "wait_until",
]

_PR_SET_PDEATHSIG = 1
_libc_prctl: Callable[..., int] | None = None
if sys.platform == "linux":
    with contextlib.suppress(OSError, AttributeError):
        _libc_prctl = ctypes.CDLL(None, use_errno=True).prctl


def die_with(parent: int) -> Callable[[], None]:
    """A ``preexec_fn`` that makes the child receive SIGTERM when ``parent`` ends.

    It runs in the child between fork and exec; if the parent already ended in between,
    the child would never get the signal, so it exits at once instead.
    """
    prctl = _libc_prctl

    def preexec() -> None:
        if prctl is not None:
            prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM))
        if os.getppid() != parent:
            os._exit(1)

    return preexec


def spawn(
    argv: list[str],
    log_path: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    die_with_parent: bool = False,
) -> subprocess.Popen[bytes]:
    """Start ``argv`` in a new session (so its children can be stopped with it), logging to a file.

    With ``die_with_parent`` the child gets SIGTERM when the thread that called this ends
    (Linux parent-death signal): call it from a thread that lives as long as the process.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = log_path.open("ab")
    try:
        return subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
            preexec_fn=die_with(os.getpid()) if die_with_parent else None,
        )
    finally:
        log.close()


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` is a live (non-zombie) process."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def process_start(pid: int) -> int | None:
    """When ``pid`` started, in clock ticks since boot (None if it does not run or on no /proc).

    With the pid it names one process for good: a pid the kernel reuses has a later start.
    """
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rpartition(")")[2].split()
    except OSError:
        return None
    return int(fields[19]) if len(fields) > 19 else None  # field 22 of proc(5), after "(comm)"


def cmdline(pid: int) -> list[str] | None:
    """The argv ``pid`` runs, from /proc (None if it does not run or cannot be read).

    Empty for a zombie, and for a moment during ``exec``: the caller of ``vfork`` may run
    again before the new program's arguments are in place.
    """
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    return [a.decode(errors="replace") for a in raw.split(b"\0")[:-1]]


def runs(pid: int | None, argv: list[str], started: int | None) -> bool:
    """Whether ``pid`` is still the process that was started as ``argv`` at ``started``.

    A pid that the kernel handed to another program since (a later start time, or another
    command line) is not ours to stop. Without a recorded start (an older state file) the
    command line alone decides; without a recorded argv, that the pid is alive.
    """
    if not pid or not pid_alive(pid):
        return False
    if started is not None and process_start(pid) not in (None, started):
        return False
    if argv:
        running = cmdline(pid)
        # empty for a moment while the kernel sets up a fresh exec (Popen may return then)
        if running and running[: len(argv)] != argv:
            return False
    return True


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            os.kill(pid, sig)


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def stop_pids(pids: Iterable[int], timeout: float = 10.0) -> list[int]:
    """SIGTERM the process groups of ``pids`` together, SIGKILL what is left after ``timeout``.

    Returns the pids still alive at the end (none, unless a process is stuck in the kernel).
    """
    left = [p for p in pids if pid_alive(p)]
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        for pid in left:
            _signal_group(pid, sig)
        deadline = time.monotonic() + wait
        while left and time.monotonic() < deadline:
            for pid in left:
                _reap(pid)
            left = [p for p in left if pid_alive(p)]
            if left:
                time.sleep(0.05)
        if not left:
            break
    return left


def stop_pid(pid: int, timeout: float = 10.0) -> bool:
    """SIGTERM the process group of ``pid``, then SIGKILL it after ``timeout``; True if it ended."""
    return not stop_pids([pid], timeout)


def wait_until(check: Callable[[], bool], timeout: float, interval: float = 0.1) -> bool:
    """Poll ``check`` until it is true or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(interval)
    return check()
