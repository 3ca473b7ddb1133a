"""Several aggregator processes on one port (``KEMI_AGGREGATOR_PROCESSES``, default 1).

One Python process parses on one core at a time. With ``processes`` above 1,
``python -m aggregator`` becomes a small supervisor that starts that many workers,
each a whole aggregator (its own producer, token view and parse threads) listening
on the same port with ``SO_REUSEPORT``: the kernel spreads new connections over them.
The supervisor gives them:

- one ``/metrics`` view: every worker writes its metrics to files in a folder of the
  run (prometheus_client's multiprocess mode) and any worker's ``/metrics`` adds them
  all up;
- one rate limit per token: the buckets live in a file every worker maps
  (:class:`aggregator.ratelimit.SharedBuckets`);
- one instance: the workers share its id; worker 0 registers it in etcd.

A worker that dies is started again (after a second, then up to 30 s while it keeps
dying quickly). SIGTERM or SIGINT stops every worker and waits for them: each finishes
its requests (every accepted request was acknowledged by Kafka before its 204). A worker
gets SIGTERM when the supervisor ends in any way, killed too: none outlives it on the
port.
Connections a dead worker held are closed; their clients retry on another.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import FrameType

from prometheus_client import multiprocess

from kemi_stats.registry.instances import instance_id
from kemi_stats.runtime import setup_logging
from kemi_stats.settings import Settings
from kemi_stats.stack.process import die_with

__all__ = ["RATE_FILE", "WORKER_VAR", "supervise", "worker_index"]

log = logging.getLogger(__name__)

#: set in a worker's environment: its index (0 to processes - 1)
WORKER_VAR = "KEMI_AGGREGATOR_WORKER"
#: set in a worker's environment: the run's folder the workers share, for prometheus_client's
#: metric files and the rate-limit file
MULTIPROC_VAR = "PROMETHEUS_MULTIPROC_DIR"
RATE_FILE = "rate-limits"
#: a worker that ran less than this before dying is restarted after a growing pause
_QUICK_DEATH = 10.0
_STOP_WAIT = 30.0


def worker_index() -> int | None:
    """This process's worker index, or None when it is not one of several."""
    value = os.environ.get(WORKER_VAR)
    return int(value) if value is not None and value.isdigit() else None


def shared_dir() -> Path | None:
    """The folder the workers of one supervisor share, or None."""
    value = os.environ.get(MULTIPROC_VAR) if worker_index() is not None else None
    return Path(value) if value else None


class _Worker:
    def __init__(self, index: int, env: dict[str, str]) -> None:
        self.index = index
        self.env = {**env, WORKER_VAR: str(index)}
        self.proc: subprocess.Popen[bytes] | None = None
        self.started = 0.0
        self.pause = 1.0
        self.restart_at = 0.0
        #: still on its first run, from the supervisor's start
        self.first = True

    def start(self) -> None:
        # SIGTERM when the supervisor ends, even killed: no worker outlives it on the port
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "aggregator"], env=self.env, preexec_fn=die_with(os.getpid())
        )
        self.started = time.monotonic()
        log.info("aggregator: worker %d started (pid %d)", self.index, self.proc.pid)


def supervise(settings: Settings, processes: int) -> int:
    """Run ``processes`` workers on the aggregator's port until SIGTERM/SIGINT.

    A worker that exits with an error status within its first seconds (a setting it
    refuses, the port taken) stops them all: the status is that worker's. One killed
    or failing later is started again.
    """
    setup_logging("aggregator", settings.log_level)
    shared = Path(tempfile.mkdtemp(prefix="kemi-aggregator-"))
    env = {**os.environ, MULTIPROC_VAR: str(shared), "KEMI_INSTANCE_ID": instance_id()}
    workers = [_Worker(i, env) for i in range(processes)]
    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    status = 0
    try:
        for worker in workers:
            worker.start()
        log.info("aggregator: %d worker processes on one port", processes)
        while not stopping and not status:
            time.sleep(0.2)
            for worker in workers:
                status = status or _tend(worker)
    finally:
        _stop_all(workers)
        shutil.rmtree(shared, ignore_errors=True)
    log.info("aggregator: stopped")
    return status


def _stop_all(workers: list[_Worker]) -> None:
    """SIGTERM every worker still running, wait for them (bounded), kill the late ones."""
    for worker in workers:
        if worker.proc is not None and worker.proc.poll() is None:
            worker.proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + _STOP_WAIT
    for worker in workers:
        if worker.proc is None:
            continue
        try:
            worker.proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log.warning("aggregator: worker %d did not stop; killing it", worker.index)
            worker.proc.kill()
            worker.proc.wait()


def _tend(worker: _Worker) -> int:
    """Start ``worker`` again once its pause after dying is over; a non-zero status if
    it failed on its first start (the supervisor then stops)."""
    proc = worker.proc
    now = time.monotonic()
    if proc is not None and proc.poll() is not None:
        ran = now - worker.started
        if worker.first and ran < _QUICK_DEATH and proc.returncode > 0:
            log.error(
                "aggregator: worker %d failed at start (status %s); stopping",
                worker.index,
                proc.returncode,
            )
            return proc.returncode
        worker.first = False
        worker.pause = 1.0 if ran >= _QUICK_DEATH else min(worker.pause * 2, 30.0)
        worker.restart_at = now + worker.pause
        log.error(
            "aggregator: worker %d (pid %d) exited with status %s after %.0f s; "
            "starting it again in %.0f s",
            worker.index,
            proc.pid,
            proc.returncode,
            ran,
            worker.pause,
        )
        multiprocess.mark_process_dead(proc.pid, worker.env[MULTIPROC_VAR])
        worker.proc = None
    if worker.proc is None and now >= worker.restart_at:
        worker.start()
    return 0
